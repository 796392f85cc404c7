"""Synthetic audits of one chunk of establishments: schedule, perimeter (hosts) and findings lifecycle.

Vectorized over establishments; the only Python loop is over audit rounds (k-th audit of every
establishment), at most ``audits_per_establishment[1]`` iterations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.demo import _world as W

_LN2 = np.log(2.0)
_NO_REMEDIATION_STATUSES = ("new", "persistent", "reopened")


def schedule(rng: np.random.Generator, est: pd.DataFrame, scale: W.DemoScale) -> pd.DataFrame:
    """Audit dates of the audited establishments of a chunk.

    Returns
    -------
    pandas.DataFrame
        ``est`` (int), ``k`` (0-based audit rank), ``date`` (datetime64[D]), ``gap`` (days since the
        previous audit, 0 for the first); sorted by ``est``, ``k``.
    """
    lo, hi = scale.audits_per_establishment
    sub = est.loc[est["audited"]]
    m = len(sub)
    pilot = sub["pilot"].to_numpy()
    n = np.where(pilot, 2, rng.integers(lo, hi + 1, size=m))
    kmax = max(int(hi), 2)
    gaps = rng.integers(W.GAP_DAYS[0], W.GAP_DAYS[1] + 1, size=(m, kmax - 1))
    pilot_gap = W.PILOT_GAP_DAYS + rng.integers(-W.PILOT_GAP_JITTER, W.PILOT_GAP_JITTER + 1, size=m)
    gaps[:, 0] = np.where(pilot, pilot_gap, gaps[:, 0])
    start = np.datetime64(f"{scale.years[0]}-01-01")
    end = min(np.datetime64(f"{scale.years[-1]}-12-31"), np.datetime64(scale.end_date))
    total = int((end - start).astype(int))
    cum = np.concatenate([np.zeros((m, 1), dtype=np.int64), np.cumsum(gaps, axis=1)], axis=1)
    needed = cum[np.arange(m), n - 1]
    first = np.floor(rng.random(m) * (np.maximum(total - needed, 0) + 1)).astype(np.int64)
    k = np.tile(np.arange(kmax), m)
    rows = pd.DataFrame(
        {
            "est": np.repeat(sub["est"].to_numpy(), kmax),
            "k": k,
            "offset": (first[:, None] + cum).ravel(),
            "n": np.repeat(n, kmax),
        }
    )
    rows = rows.loc[(rows["k"] < rows["n"]) & (rows["offset"] <= total)]
    rows = rows.assign(
        date=start + rows["offset"].to_numpy().astype("timedelta64[D]"),
        gap=rows.groupby("est")["offset"].diff().fillna(0).astype("int64"),
    )
    return rows[["est", "k", "date", "gap"]].reset_index(drop=True)


def _negbin(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    k = W.DISPERSION
    mean = np.asarray(mean, dtype=float)
    return np.where(mean > 0, rng.negative_binomial(k, k / (k + np.maximum(mean, 1e-12))), 0)


def _draw_findings(rng, ests, counts, hosts, items_p) -> pd.DataFrame:
    """``counts[i]`` findings for establishment ``ests[i]``, on hosts drawn uniformly among its hosts."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.sum() == 0:
        return pd.DataFrame({"est": [], "h": [], "item": []}, dtype="int64")
    g = hosts.groupby("est", sort=True)["h"]
    start = g.cumcount().eq(0)
    first_pos = pd.Series(np.flatnonzero(start.to_numpy()), index=hosts.loc[start, "est"].to_numpy())
    size = g.size()
    est_rep = np.repeat(np.asarray(ests), counts)
    pos = first_pos.loc[est_rep].to_numpy() + np.floor(
        rng.random(len(est_rep)) * size.loc[est_rep].to_numpy()
    ).astype(np.int64)
    item = rng.choice(len(items_p), size=len(est_rep), p=items_p)
    return pd.DataFrame({"est": est_rep, "h": hosts["h"].to_numpy()[pos], "item": item})


def _replace(rng, gone: pd.DataFrame, taken: pd.DataFrame, items_p: np.ndarray) -> pd.DataFrame:
    """One new item on the host of each row of ``gone``, distinct from ``taken`` items of that host."""
    out = gone[["est", "h"]].assign(item=rng.choice(len(items_p), size=len(gone), p=items_p))
    for _ in range(50):
        both = pd.concat([taken[["est", "h", "item"]], out], ignore_index=True)
        clash = both.duplicated(["est", "h", "item"], keep="first").to_numpy()[len(taken) :]
        if not clash.any():
            break
        out.loc[clash, "item"] = rng.choice(len(items_p), size=int(clash.sum()), p=items_p)
    both = pd.concat([taken[["est", "h", "item"]], out], ignore_index=True)
    return out.loc[~both.duplicated(["est", "h", "item"], keep="first").to_numpy()[len(taken) :]]


def _key(df: pd.DataFrame) -> np.ndarray:
    return df["est"].to_numpy(np.int64) * 1_000_000 + df["h"].to_numpy(np.int64)


def simulate(
    rng: np.random.Generator,
    est: pd.DataFrame,
    audits: pd.DataFrame,
    catalog: pd.DataFrame,
    *,
    scale: W.DemoScale,
    plant_remediation: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Perimeter and findings of every audit of a chunk, round by round.

    Returns
    -------
    (hosts, findings) : tuple of pandas.DataFrame
        hosts: ``est``, ``k``, ``h`` (host index within the establishment). findings: ``est``, ``k``,
        ``h``, ``item`` (catalog row), ``status`` (``new``, ``persistent``, ``reopened``), ``retitled``
        (bool). Also in ``findings.attrs["transitions"]``: counts of ``fixed`` and ``out_of_scope``.
    """
    e = est.set_index("est")
    rate_ratio = W.FAMILY_TABLE.set_index("family")["rate_ratio"]
    per_host = (
        W.BASE_RATE_PER_HOST
        * rate_ratio.loc[e["fam"]].to_numpy()
        * (e["beds"].to_numpy() / W.SIZE_REFERENCE_BEDS) ** W.SIZE_BETA
        * scale.findings_per_host
    )
    per_host = pd.Series(per_host, index=e.index)
    items_p = catalog["weight"].to_numpy() / catalog["weight"].sum()
    median = catalog["severity"].map(W.MEDIAN_FIX_DAYS).to_numpy(dtype=float)
    reopen_p = W.REOPEN_PROBABILITY if plant_remediation else 0.0
    hosts_out, find_out = [], []
    fixed_n = out_scope_n = 0
    hosts = found = fixed_prev = None
    next_h = pd.Series(0, index=e.index, dtype=np.int64)
    for k, rnd in audits.groupby("k", sort=True):
        ests = rnd["est"].to_numpy()
        gap = pd.Series(rnd["gap"].to_numpy(), index=ests)
        if k == 0:
            lam = W.HOSTS_COEF * e.loc[ests, "beds"].to_numpy() ** W.HOSTS_EXPONENT
            lam = lam * np.exp(rng.normal(-(W.HOSTS_SIGMA**2) / 2, W.HOSTS_SIGMA, size=len(ests)))
            n_h = np.maximum(rng.poisson(lam), 1)
            hosts = pd.DataFrame(
                {
                    "est": np.repeat(ests, n_h),
                    "h": np.arange(n_h.sum()) - np.repeat(np.cumsum(n_h) - n_h, n_h),
                }
            )
            next_h.loc[ests] = n_h
            new = _draw_findings(rng, ests, _negbin(rng, n_h * per_host.loc[ests].to_numpy()), hosts, items_p)
            found = new.assign(status="new", retitled=False)
        else:
            prev_hosts = hosts.loc[hosts["est"].isin(ests)]
            kept = prev_hosts.loc[rng.random(len(prev_hosts)) >= W.HOST_REMOVAL_SHARE]
            n_prev = prev_hosts.groupby("est").size().reindex(ests, fill_value=0).to_numpy()
            n_kept = kept.groupby("est").size().reindex(ests, fill_value=0).to_numpy()
            n_add = rng.poisson(W.HOST_ADDITION_RATE * n_prev)
            n_add = np.where(n_kept + n_add == 0, 1, n_add)
            added = pd.DataFrame(
                {
                    "est": np.repeat(ests, n_add),
                    "h": next_h.loc[np.repeat(ests, n_add)].to_numpy()
                    + np.arange(n_add.sum())
                    - np.repeat(np.cumsum(n_add) - n_add, n_add),
                }
            )
            next_h.loc[ests] += n_add
            hosts = pd.concat([kept, added]).sort_values(["est", "h"], kind="stable").reset_index(drop=True)
            prev = found.loc[found["est"].isin(ests)]
            in_scope = np.isin(_key(prev), _key(kept))
            out_scope_n += int((~in_scope).sum())
            prev = prev.loc[in_scope]
            u = rng.random(len(prev))
            if plant_remediation:
                p_fix = 1.0 - np.exp(
                    -_LN2 * gap.loc[prev["est"]].to_numpy() / median[prev["item"].to_numpy()]
                )
                gone = u < p_fix
            else:
                gone = u < W.REPLACEMENT_SHARE
            fixed_now = prev.loc[gone]
            fixed_n += len(fixed_now)
            stay = prev.loc[~gone].assign(status="persistent")
            stay = stay.assign(retitled=rng.random(len(stay)) < W.TITLE_VARIATION_SHARE)
            if plant_remediation:
                mean_new = (
                    n_kept
                    * per_host.loc[ests].to_numpy()
                    * W.NEW_FINDINGS_PER_YEAR
                    * gap.loc[ests].to_numpy()
                    / 365.0
                )
                new_old_hosts = _draw_findings(rng, ests, rng.poisson(mean_new), kept, items_p)
            else:  # replacement: same host, another vulnerability, never colliding (keeps counts stationary)
                new_old_hosts = _replace(rng, fixed_now, pd.concat([stay, fixed_now]), items_p)
            new_hosts = _draw_findings(
                rng, ests, _negbin(rng, n_add * per_host.loc[ests].to_numpy()), added, items_p
            )
            reopened = (
                fixed_prev.loc[fixed_prev["est"].isin(ests)] if fixed_prev is not None else prev.iloc[:0]
            )
            reopened = reopened.loc[np.isin(_key(reopened), _key(kept))]
            reopened = reopened.loc[rng.random(len(reopened)) < reopen_p]
            found = pd.concat(
                [
                    stay,
                    fixed_now[["est", "h", "item"]].assign(status="fixed", retitled=False),
                    reopened[["est", "h", "item"]].assign(status="reopened", retitled=False),
                    new_old_hosts.assign(status="new", retitled=False),
                    new_hosts.assign(status="new", retitled=False),
                ],
                ignore_index=True,
            )
            found = found.drop_duplicates(["est", "h", "item"], keep="first")
            found = found.loc[found["status"] != "fixed"]
            fixed_prev = fixed_now[["est", "h", "item"]]
        found = found.drop_duplicates(["est", "h", "item"], keep="first").reset_index(drop=True)
        hosts_out.append(hosts.assign(k=k))
        find_out.append(found.assign(k=k))
    hosts_all = (
        pd.concat(hosts_out, ignore_index=True) if hosts_out else pd.DataFrame(columns=["est", "h", "k"])
    )
    findings = (
        pd.concat(find_out, ignore_index=True)
        if find_out
        else pd.DataFrame(columns=["est", "h", "item", "status", "retitled", "k"])
    )
    findings.attrs["transitions"] = {"fixed": fixed_n, "out_of_scope": out_scope_n}
    return hosts_all, findings
