"""Synthetic protection mechanisms (controls) per audit and incident declarations of one chunk."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.demo import _world as W
from cyberobs_lib.schema import CONTROLS


def simulate_controls(rng: np.random.Generator, est: pd.DataFrame, audits: pd.DataFrame) -> pd.DataFrame:
    """Presence of every control at every audit (audits with unknown status have no rows).

    Returns
    -------
    pandas.DataFrame
        ``est``, ``k``, ``control``, ``present`` (bool).
    """
    fam = est.set_index("est")["fam"]
    no_control = W.FAMILY_TABLE.set_index("family")["no_control"]
    presence = np.array([W.CONTROL_PRESENCE[c] for c in CONTROLS])
    out = []
    state = None
    ests_all = audits.loc[audits["k"] == 0, "est"].to_numpy()
    pos = pd.Series(np.arange(len(ests_all)), index=ests_all)
    for k, rnd in audits.groupby("k", sort=True):
        ests = rnd["est"].to_numpy()
        if k == 0:
            none = rng.random(len(ests)) < no_control.loc[fam.loc[ests]].to_numpy()
            state = rng.random((len(ests), len(CONTROLS))) < presence
            empty = ~state.any(axis=1) & ~none
            pick = rng.choice(len(CONTROLS), size=int(empty.sum()), p=presence / presence.sum())
            state[np.flatnonzero(empty), pick] = True
            state[none] = False
        else:
            rows = pos.loc[ests].to_numpy()
            u = rng.random((len(ests), len(CONTROLS)))
            cur = state[rows]
            state[rows] = np.where(cur, u >= W.CONTROL_LOSS, u < W.CONTROL_ADOPTION)
        known = rng.random(len(ests)) >= W.UNKNOWN_CONTROLS_SHARE
        block = state[pos.loc[ests].to_numpy()][known]
        out.append(
            pd.DataFrame(
                {
                    "est": np.repeat(ests[known], len(CONTROLS)),
                    "k": k,
                    "control": np.tile(np.array(CONTROLS, dtype=object), int(known.sum())),
                    "present": block.ravel(),
                }
            )
        )
    controls = (
        pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["est", "k", "control", "present"])
    )
    return controls


def _pick(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    keys = np.array(list(shares), dtype=object)
    p = np.array(list(shares.values()), dtype=float)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def simulate_incidents(
    rng: np.random.Generator,
    est: pd.DataFrame,
    audits: pd.DataFrame,
    exposed: pd.Series,
    *,
    years: tuple[int, ...],
    end_date: str,
) -> pd.DataFrame:
    """Incident declarations: background Poisson per family and year, plus the planted exposure window.

    Parameters
    ----------
    exposed : pandas.Series
        bool indexed by ``est``: exposure at the first audit (see ``W.EXPOSURE_DEFINITION``).

    Returns
    -------
    pandas.DataFrame
        ``est``, ``declared_on`` (datetime64[D]), ``nature``, ``type``, ``impact_on_care``,
        ``finess_missing`` (bool), ``window`` (bool: drawn by the exposure mechanism).
    """
    end = np.datetime64(end_date)
    lam = W.FAMILY_TABLE.set_index("family")["incidents_per_1000"].loc[est["fam"]].to_numpy() / 1000.0
    ny = len(years)
    counts = rng.poisson(np.repeat(lam, ny))
    year_start = np.array([np.datetime64(f"{y}-01-01") for y in years])
    year_len = np.array(
        [
            int((min(np.datetime64(f"{y}-12-31"), end) - np.datetime64(f"{y}-01-01")).astype(int)) + 1
            for y in years
        ]
    )
    rep = np.repeat(np.arange(len(est) * ny), counts)
    yi = rep % ny
    days = np.floor(rng.random(len(rep)) * np.maximum(year_len[yi], 0)).astype("int64")
    bg = pd.DataFrame(
        {
            "est": est["est"].to_numpy()[rep // ny],
            "declared_on": year_start[yi] + days.astype("timedelta64[D]"),
        }
    )
    bg = bg.loc[year_len[yi] > 0]
    first = audits.loc[audits["k"] == 0].set_index("est")["date"]
    # background incidents inside an audited establishment's first-audit window are replaced by the planted mechanism
    f = first.reindex(bg["est"]).to_numpy()
    inside = (
        ~pd.isna(f)
        & (bg["declared_on"].to_numpy() > f)
        & (bg["declared_on"].to_numpy() <= f + np.timedelta64(W.INCIDENT_WINDOW_DAYS, "D"))
    )
    bg = bg.loc[~inside].assign(window=False)
    fam = est.set_index("est")["fam"]
    p0 = 1.0 - np.exp(
        -W.FAMILY_TABLE.set_index("family")["incidents_per_1000"].loc[fam.loc[first.index]].to_numpy()
        / 1000.0
    )
    logit = (
        np.log(p0 / (1 - p0))
        + np.log(W.INCIDENT_EXPOSURE_ODDS_RATIO) * exposed.reindex(first.index, fill_value=False).to_numpy()
    )
    hit = rng.random(len(first)) < 1.0 / (1.0 + np.exp(-logit))
    delay = rng.integers(1, W.INCIDENT_WINDOW_DAYS + 1, size=len(first))
    win = pd.DataFrame(
        {"est": first.index.to_numpy(), "declared_on": first.to_numpy() + delay.astype("timedelta64[D]")}
    )
    win = win.loc[hit & (win["declared_on"].to_numpy() <= end)].assign(window=True)
    inc = (
        pd.concat([bg, win], ignore_index=True)
        .sort_values(["est", "declared_on"], kind="stable")
        .reset_index(drop=True)
    )
    n = len(inc)
    nature = _pick(rng, W.NATURE_SHARES, n)
    kind = np.empty(n, dtype=object)
    for nat, shares in W.TYPE_SHARES.items():  # three natures
        m = nature == nat
        kind[m] = _pick(rng, shares, int(m.sum()))
    return inc.assign(
        nature=nature,
        type=kind,
        impact_on_care=_pick(rng, W.IMPACT_SHARES, n),
        finess_missing=rng.random(n) < W.INCIDENT_FINESS_MISSING_SHARE,
    )
