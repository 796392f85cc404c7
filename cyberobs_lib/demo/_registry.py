"""Synthetic registry: establishments sampled from the FINESS population frame, with valid-looking
FINESS numbers from a range no real number uses."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.demo import _world as W
from cyberobs_lib.finess_key import check_digits
from cyberobs_lib.registry import load_departments


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
    The rule is :func:`cyberobs_lib.finess_key.check_digits` (the package's one Luhn implementation).

    References
    ----------
    ISO/IEC 7812-1 Annex B (Luhn formula).

    Examples
    --------
    >>> luhn_key(pd.Series(["01000002", "2A000021"])).tolist()  # published FINESS 010000024, 2A0000212
    ['4', '2']
    """
    keys = check_digits(body.astype(str).to_numpy(dtype=object))
    return pd.Series(keys.astype(str), index=body.index)


def synthetic_finess(rng: np.random.Generator, prefix: pd.Series) -> pd.Series:
    """Unique synthetic FINESS numbers: ``prefix + synthetic digit + random digits + Luhn key``.

    Parameters
    ----------
    rng : numpy.random.Generator
    prefix : pandas.Series
        FINESS prefix of each number: the 2-character department in metropolitan France, the 4-character
        territory prefix overseas (``9701`` … ``9704``).

    Returns
    -------
    pandas.Series
        9-character numbers, unique, with a valid check key. The character after the prefix is one of
        :data:`~cyberobs_lib.demo._world.SYNTHETIC_DIGITS` (``9`` metropolitan; ``4``, ``7``, ``8``, ``9``
        overseas), which no number of the FINESS extraction of 2021 carries there: a synthetic number is
        never a real one. Collisions are redrawn.

    Raises
    ------
    ValueError
        More numbers asked for one prefix than the synthetic range holds (10^5 metropolitan, 4,000 overseas).

    Examples
    --------
    >>> n = synthetic_finess(np.random.default_rng(0), pd.Series(["01", "2A", "9704"]))
    >>> [x[:3] for x in n[:2]], n.iloc[2][4] in "4789", len(set(n))
    (['019', '2A9'], True, 3)
    """
    prefix = prefix.astype(str)
    if not prefix.str.len().isin([2, 4]).all():
        raise ValueError(
            f"FINESS prefixes must have 2 or 4 characters: {sorted(set(prefix[~prefix.str.len().isin([2, 4])]))}"
        )
    overseas = (prefix.str.len() == 4).to_numpy()
    marks = {False: W.SYNTHETIC_DIGITS["metropolitan"], True: W.SYNTHETIC_DIGITS["overseas"]}
    width = {False: 5, True: 3}  # random digits after the mark
    capacity = {o: len(marks[o]) * 10 ** width[o] for o in (False, True)}
    demand = prefix.value_counts()
    over = [(p, int(n)) for p, n in demand.items() if n > capacity[len(p) == 4]]
    if over:
        raise ValueError(
            f"too many synthetic FINESS numbers for prefixes {over}: the synthetic range holds "
            f"{capacity[False]:,} numbers per department, {capacity[True]:,} per overseas territory"
        )
    body = pd.Series("", index=prefix.index)
    todo = np.ones(len(prefix), dtype=bool)
    while todo.any():
        out = []
        for o in (False, True):
            rows = todo & (overseas == o)
            if not rows.any():
                continue
            x = rng.integers(0, capacity[o], size=int(rows.sum()))
            mark = np.array(list(marks[o]))[x // 10 ** width[o]]
            digits = pd.Series(x % 10 ** width[o]).astype(str).str.zfill(width[o]).to_numpy()
            out.append(pd.Series(prefix[rows].to_numpy() + mark + digits, index=prefix.index[rows]))
        new = pd.concat(out)
        body[new.index] = new
        todo = body.duplicated().to_numpy()
    return body + luhn_key(body)


def sample_frame(rng: np.random.Generator, counts: pd.Series) -> pd.DataFrame:
    """Category code and department of each structure: a stratified sample of the population frame.

    Within each family the frame's establishments (one unit per establishment of a category × department
    cell) are drawn without replacement, so every cell is represented in proportion (hypergeometric
    counts, never above the frame's) and a family asked in full is the frame itself; asking more than the
    frame holds takes whole copies of the family plus a sample of the remainder.

    Parameters
    ----------
    counts : pandas.Series
        Structures per family (:meth:`DemoScale.family_counts`).

    Returns
    -------
    pandas.DataFrame
        ``fam``, ``category_code``, ``department``: ``counts.sum()`` rows, families in ``counts`` order,
        units in random order within a family.

    Raises
    ------
    ValueError
        A family asked for has no establishment in the frame.
    """
    frame = W.load_frame()
    frame = frame.loc[frame["in_demo"]]
    parts = []
    for family, n in counts.items():
        if n == 0:
            continue
        cells = frame.loc[frame["family"] == family]
        if cells.empty:
            raise ValueError(f"family {family!r} has no establishment in {W.FRAME_PATH.name}")
        units = cells.loc[cells.index.repeat(cells["count"]), ["category_code", "department"]]
        total = len(units)
        copies, rest = divmod(int(n), total)
        pick = np.concatenate(
            [np.tile(np.arange(total), copies), rng.choice(total, size=rest, replace=False)]
        )
        parts.append(units.iloc[rng.permutation(pick)].assign(fam=family))
    cols = ["fam", "category_code", "department"]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def make_establishments(rng: np.random.Generator, scale: W.DemoScale) -> pd.DataFrame:
    """Draw the registry frame.

    Returns
    -------
    pandas.DataFrame
        Contract columns of ``establishments.csv`` (finess, finess_ej, name, category_code,
        legal_status, department, region, beds, family) plus internal ``est`` (0-based index, the order
        of generation), ``fam`` (the planted family) and ``key_ok`` (False for the planted failing keys).
    """
    drawn = sample_frame(rng, scale.family_counts())
    fam = drawn["fam"].to_numpy()
    n = len(fam)
    params = W.FAMILY_TABLE.set_index("family").loc[fam].reset_index()
    deps = load_departments().set_index("department")
    unknown = sorted(set(drawn["department"]) - set(deps.index))
    if unknown:
        raise ValueError(f"{W.FRAME_PATH.name}: departments {unknown} are not in departments.csv")
    dep = deps.loc[drawn["department"]]
    prefix = pd.Series(
        np.where(dep["finess_prefix"] != "", dep["finess_prefix"], drawn["department"]), index=drawn.index
    )
    finess = synthetic_finess(rng, prefix)
    ej = synthetic_finess(rng, prefix)
    # CHU/CHR sites of one department belong to one legal entity (a CHU is one EJ with many ET sites)
    chu = fam == "CHU/CHR"
    first_ej = ej.where(chu).groupby(drawn["department"].where(chu)).transform("first")
    ej = ej.where(~chu, first_ej)
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
            "finess": finess.to_numpy(),
            "finess_ej": ej.to_numpy(),
            "name": [f"Établissement fictif {i + 1:05d}" for i in range(n)],
            "category_code": drawn["category_code"].to_numpy(),
            "legal_status": legal,
            "department": drawn["department"].to_numpy(),
            "region": dep["region_code"].to_numpy(),
            "beds": beds,
            "family": family_col,
            "fam": fam,
            "key_ok": ~bad,
        }
    )
    return est
