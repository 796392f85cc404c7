"""Protection mechanisms per audit, from ``controls.csv`` and from scanner evidence.

"No protection mechanism implemented" is asserted only when at least one control was observed for the audit
and none was present; an audit with no observation has an unknown status (``<NA>``), never "none".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cyberobs_lib.schema import FALSE_WORDS, TRUE_WORDS

#: Scanner findings that are evidence that a control is ABSENT on the audited perimeter (regex on the
#: title, case-insensitive) -> control. Findings are reported when something is missing or weak, so the
#: scanner evidence read from findings only ever says "absent".
EVIDENCE_RULES = (
    (r"hsts|strict-transport-security", "hsts"),
    (r"\bspf\b", "spf"),
    (r"\bdkim\b", "dkim"),
    (r"\bdmarc\b", "dmarc"),
    (r"dnssec", "dnssec"),
    (
        r"(sslv2|sslv3|ssl (version )?[23]\b|tls ?(version |v)?1\.[01]\b|tlsv1(\.[01])?(?![.\d])|weak cipher|deprecated (ssl|tls))",
        "tls_modern",
    ),
    (
        r"(x-frame-options|content-security-policy|x-content-type-options|security headers?)",
        "security_headers",
    ),
)


def _parse_present(values: pd.Series) -> pd.Series:
    s = pd.Series(values, copy=False)
    if pd.api.types.is_bool_dtype(s):
        return s.astype("boolean")
    t = s.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[t.isin(TRUE_WORDS).fillna(False)] = True
    out[t.isin(FALSE_WORDS).fillna(False)] = False
    return out


def evidence_from_findings(findings: pd.DataFrame) -> pd.DataFrame:
    """Controls shown ABSENT by scanner findings (missing HSTS, SPF/DKIM/DMARC, old TLS, security headers).

    Parameters
    ----------
    findings : pandas.DataFrame
        ``audit_id`` and ``title``.

    Returns
    -------
    pandas.DataFrame
        Distinct rows ``audit_id``, ``control``, ``present`` (always False), ready for
        :func:`protection_status` ``evidence=``.

    Notes
    -----
    Rules: :data:`EVIDENCE_RULES`, evaluated on distinct titles. A scanner that did not test a control says
    nothing about it, so no "present" evidence is inferred from the absence of a finding.

    Examples
    --------
    >>> f = pd.DataFrame({"audit_id": ["a1", "a1", "a2"], "title": ["HSTS Missing From HTTPS Server",
    ...                   "TLS Version 1.0 Protocol Detection", "Open port"]})
    >>> evidence_from_findings(f).values.tolist()
    [['a1', 'hsts', False], ['a1', 'tls_modern', False]]
    """
    import re

    titles = findings["title"].astype("string")
    codes, uniq = pd.factorize(titles, use_na_sentinel=True)
    rows = []
    for pattern, control in EVIDENCE_RULES:
        rx = re.compile(pattern, re.IGNORECASE)
        hit_u = np.append(np.array([bool(rx.search(u)) for u in uniq], dtype=bool), False)
        hit = hit_u[np.where(codes < 0, len(uniq), codes)]
        if hit.any():
            rows.append(
                pd.DataFrame({"audit_id": findings.loc[hit, "audit_id"].to_numpy(), "control": control})
            )
    if not rows:
        return pd.DataFrame({"audit_id": pd.Series(dtype="string"), "control": pd.Series(dtype="string"),
                             "present": pd.Series(dtype="boolean")})  # fmt: skip
    ev = pd.concat(rows, ignore_index=True).drop_duplicates()
    ev = ev.sort_values(["audit_id", "control"], kind="stable").reset_index(drop=True)
    ev["present"] = pd.array([False] * len(ev), dtype="boolean")
    return ev.astype({"audit_id": "string", "control": "string"})


def _joined_controls(present: pd.DataFrame) -> pd.Series:
    """Per audit, its present controls sorted and ``;``-joined (audit_id index).

    Audits share a few patterns of a few dozen controls: each audit gets a bit set of its controls and
    each distinct bit set is joined once (a Python join per audit took seconds at national size).
    """
    names = sorted(present["control"].dropna().unique())
    if not len(present):
        return pd.Series(dtype="string")
    if len(names) > 62:  # more controls than bits: join per audit
        return present.groupby("audit_id")["control"].agg(lambda s: ";".join(sorted(s)))
    audit_codes, audits = pd.factorize(present["audit_id"], sort=True)
    bit = pd.Index(names).get_indexer(present["control"]).astype(np.int64)
    masks = np.zeros(len(audits), dtype=np.int64)
    np.bitwise_or.at(masks, audit_codes, np.left_shift(np.int64(1), bit))
    patterns, inverse = np.unique(masks, return_inverse=True)
    text = np.array([";".join(n for i, n in enumerate(names) if p >> i & 1) for p in patterns], dtype=object)
    return pd.Series(text[inverse], index=pd.Index(audits, name="audit_id"))


def protection_status(
    controls: pd.DataFrame | None, *, audits: pd.DataFrame, evidence: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Protection mechanisms observed per audit and the indicator "no protection mechanism implemented".

    Parameters
    ----------
    controls : pandas.DataFrame or None
        ``controls.csv`` rows: ``audit_id``, ``control``, ``present`` (bool or ``true/false``, ``1/0``,
        ``oui/non``; anything else is treated as not observed).
    audits : pandas.DataFrame
        ``audit_id`` of every audit (one output row each, in this order).
    evidence : pandas.DataFrame, optional
        Scanner evidence in the same shape (e.g. :func:`evidence_from_findings`).

    Returns
    -------
    pandas.DataFrame
        One row per audit: ``audit_id``, ``n_controls_observed`` (distinct controls with a known status),
        ``n_present``, ``controls_present`` (sorted, ``;``-joined, empty string when none), ``no_protection``
        (``boolean``: True when controls were observed and none is present, False when at least one is
        present, ``<NA>`` when nothing was observed), ``source`` (``controls`` | ``scanner`` | ``both`` |
        ``none``).

    Notes
    -----
    For one (audit, control) the ``controls.csv`` statement wins over scanner evidence; evidence only adds
    controls that ``controls.csv`` does not mention. Several ``controls.csv`` rows for one control: present if
    any says present. Unknown is not none: an audit without any observation is ``<NA>``.

    Examples
    --------
    >>> audits = pd.DataFrame({"audit_id": ["a1", "a2", "a3"]})
    >>> controls = pd.DataFrame({"audit_id": ["a1", "a1", "a2"], "control": ["waf", "hsts", "waf"],
    ...                          "present": ["non", "non", "oui"]})
    >>> ev = pd.DataFrame({"audit_id": ["a1", "a3"], "control": ["spf", "hsts"], "present": [False, False]})
    >>> protection_status(controls, audits=audits, evidence=ev)[["audit_id", "n_controls_observed", "no_protection",
    ...     "source"]].values.tolist()
    [['a1', 3, True, 'both'], ['a2', 1, False, 'controls'], ['a3', 1, True, 'scanner']]
    >>> bool(protection_status(None, audits=audits)["no_protection"].isna().all())
    True
    """
    frames = []
    for origin, frame in (("controls", controls), ("scanner", evidence)):
        if frame is None or len(frame) == 0:
            continue
        f = pd.DataFrame({
            "audit_id": frame["audit_id"].astype("string"),
            "control": frame["control"].astype("string").str.strip().str.lower(),
            "present": _parse_present(frame["present"]),
            "origin": origin,
        })  # fmt: skip
        frames.append(f.dropna(subset=["present"]))
    ids = audits["audit_id"].astype("string").drop_duplicates().reset_index(drop=True)
    if frames:
        obs = pd.concat(frames, ignore_index=True)
        obs["rank"] = (obs["origin"] == "scanner").astype(int)
        best = obs.groupby(["audit_id", "control"], sort=False)["rank"].transform("min")
        obs = obs[obs["rank"] == best]
        per = obs.groupby(["audit_id", "control"], sort=True).agg(
            present=("present", "max"), origin=("origin", "first")
        )
        per = per.reset_index()
        present_list = _joined_controls(per[per["present"].astype(bool)])
        per["present_i"] = per["present"].astype(bool).astype(np.int64)
        per["from_controls"] = (per["origin"] == "controls").astype(np.int64)
        per["from_scanner"] = (per["origin"] == "scanner").astype(np.int64)
        agg = per.groupby("audit_id").agg(
            n_controls_observed=("control", "size"),
            n_present=("present_i", "sum"),
            has_controls=("from_controls", "max"),
            has_scanner=("from_scanner", "max"),
        )
    else:
        agg = pd.DataFrame(columns=["n_controls_observed", "n_present", "has_controls", "has_scanner"])
        present_list = pd.Series(dtype="string")
    res = pd.DataFrame({"audit_id": ids})
    a = agg.reindex(ids.to_numpy())
    res["n_controls_observed"] = pd.array(
        pd.to_numeric(a["n_controls_observed"]).fillna(0).to_numpy(dtype=np.int64), dtype="Int64"
    )
    res["n_present"] = pd.array(
        pd.to_numeric(a["n_present"]).fillna(0).to_numpy(dtype=np.int64), dtype="Int64"
    )
    res["controls_present"] = present_list.reindex(ids.to_numpy()).fillna("").astype("string").to_numpy()
    observed = res["n_controls_observed"] > 0
    nop = pd.Series(pd.NA, index=res.index, dtype="boolean")
    nop[observed] = (res.loc[observed, "n_present"] == 0).to_numpy()
    res["no_protection"] = nop
    hc = pd.to_numeric(a["has_controls"]).fillna(0).to_numpy() > 0
    hs = pd.to_numeric(a["has_scanner"]).fillna(0).to_numpy() > 0
    res["source"] = pd.array(
        np.select([hc & hs, hc, hs], ["both", "controls", "scanner"], default="none"), dtype="string"
    )
    return res
