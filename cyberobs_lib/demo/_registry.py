"""Synthetic registry frame: establishments with valid-looking (never real) FINESS numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.demo import _world as W

_LETTER_VALUE = {"A": "1", "B": "2"}


def luhn_key(body: pd.Series) -> pd.Series:
    """Check digit that makes ``body + key`` pass the Luhn mod-10 check.

    Parameters
    ----------
    body : pandas.Series
        The first 8 characters of FINESS numbers (digits; ``2A``/``2B`` count ``A = 1``, ``B = 2``).

    Returns
    -------
    pandas.Series
        One-character strings ``"0"``..``"9"``.

    Notes
    -----
    With the key as the rightmost of 9 characters, the characters at even positions from the right
    (indices 7, 5, 3, 1 of the body) are doubled and reduced (``2d - 9`` above 9); the key is
    ``(10 - sum mod 10) mod 10`` (domain.md: this holds for every number of the FINESS hospital extract).

    References
    ----------
    ISO/IEC 7812-1 Annex B (Luhn formula).

    Examples
    --------
    >>> luhn_key(pd.Series(["01000002", "2A000021"])).tolist()  # published FINESS 010000024, 2A0000212
    ['4', '2']
    """
    s = body.astype(str).str.slice(0, 2).replace(_LETTER_VALUE, regex=True) + body.astype(str).str.slice(2)
    mat = np.frombuffer("".join(s).encode("ascii"), dtype=np.uint8).reshape(-1, 8).astype(np.int16) - ord("0")
    doubled = mat[:, 7::-2] * 2
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = doubled.sum(axis=1) + mat[:, 6::-2].sum(axis=1)
    return pd.Series(((10 - total % 10) % 10).astype(str), index=body.index)


def _finess(rng: np.random.Generator, prefix: pd.Series) -> pd.Series:
    """Unique numbers: prefix + random digits up to 8 characters + Luhn key (collisions are redrawn)."""
    width = 8 - prefix.str.len()
    body = pd.Series("", index=prefix.index)
    todo = np.ones(len(prefix), dtype=bool)
    while todo.any():
        digits = pd.Series(rng.integers(0, 10**6, size=int(todo.sum())).astype(str), index=prefix.index[todo])
        digits = digits.str.zfill(6)
        body[todo] = prefix[todo] + digits.where(width[todo] == 6, digits.str.slice(2))
        todo = body.duplicated().to_numpy()
    return body + luhn_key(body)


def make_establishments(rng: np.random.Generator, scale: W.DemoScale) -> pd.DataFrame:
    """Draw the registry frame.

    Returns
    -------
    pandas.DataFrame
        Contract columns of ``establishments.csv`` (finess, finess_ej, name, category_code,
        legal_status, department, region, beds, family) plus internal ``est`` (0-based index, the order
        of generation), ``fam`` (the planted family) and ``key_ok`` (False for the planted failing keys).
    """
    counts = scale.family_counts()
    fam = np.repeat(counts.index.to_numpy(), counts.to_numpy())
    n = len(fam)
    params = W.FAMILY_TABLE.set_index("family").loc[fam].reset_index()
    cats = W.read_commented_csv(W.CATEGORIES_PATH).set_index("category_code")["family"]
    missing = set(W.CATEGORY_WEIGHTS) - set(cats.index)
    if missing:
        raise ValueError(f"category codes {sorted(missing)} are not in {W.CATEGORIES_PATH.name}")
    weights = pd.Series(W.CATEGORY_WEIGHTS)
    codes = np.empty(n, dtype=object)
    for family, idx in pd.Series(np.arange(n)).groupby(fam):  # one draw per family (14 groups)
        pool = weights.index[cats.loc[weights.index].to_numpy() == family].to_numpy()
        if len(pool) == 0:
            raise ValueError(f"no category code of family {family!r} in CATEGORY_WEIGHTS")
        w = weights.loc[pool].to_numpy()
        codes[idx.to_numpy()] = rng.choice(pool, size=len(idx), p=w / w.sum())
    deps = W.DEPARTMENTS
    dw = np.where(deps["finess_prefix"].str.len() == 4, W.OVERSEAS_WEIGHT, 1.0)
    dep_idx = rng.choice(len(deps), size=n, p=dw / dw.sum())
    # CHU/CHR sites share a legal entity by groups of three, in the same department
    chu = fam == "CHU/CHR"
    group = np.where(chu, np.cumsum(chu) - 1, -1) // 3
    first_of_group = pd.Series(np.arange(n)).where(chu).groupby(group).transform("min")
    dep_idx = np.where(chu, dep_idx[first_of_group.fillna(0).astype(int).to_numpy()], dep_idx)
    dep = deps.iloc[dep_idx].reset_index(drop=True)
    finess = _finess(rng, dep["finess_prefix"])
    ej = _finess(rng, dep["finess_prefix"])
    ej = ej.where(~chu, ej.iloc[first_of_group.fillna(0).astype(int).to_numpy()].to_numpy())
    # the planted failing keys (exactly max(1, round(1 % of n)) numbers): shift the key by 1..9
    bad = np.isin(np.arange(n), rng.permutation(n)[: max(1, round(W.FAILING_KEY_SHARE * n))])
    shifted = (finess.str[8].astype(int) + rng.integers(1, 10, size=n)) % 10
    finess = finess.where(~bad, finess.str[:8] + shifted.astype(str))
    beds = (
        np.rint(params["beds_median"] * np.exp(rng.normal(0.0, params["beds_sigma"]))).clip(5).astype("int64")
    )
    u = rng.random(n)
    cum_public = params["public"].to_numpy()
    cum_nonprofit = cum_public + params["private_nonprofit"].to_numpy()
    legal = np.where(
        u < cum_public, "public", np.where(u < cum_nonprofit, "private_nonprofit", "private_forprofit")
    )
    family_col = np.full(n, "", dtype=object)
    family_col[np.flatnonzero(chu)[: W.FAMILY_OVERRIDE_ROWS]] = "CHU/CHR"
    est = pd.DataFrame(
        {
            "est": np.arange(n),
            "finess": finess,
            "finess_ej": ej,
            "name": [f"Établissement fictif {i + 1:05d}" for i in range(n)],
            "category_code": codes.astype(str),
            "legal_status": legal,
            "department": dep["department"],
            "region": dep["region"],
            "beds": beds,
            "family": family_col,
            "fam": fam,
            "key_ok": ~bad,
        }
    )
    return est
