"""Tests of cyberobs_lib.normalize.

CVSS expected scores are the published values of the NVD and FIRST calculators (cited per case); bands are
FIRST's (v3.x, v4.0) and NVD's (v2). Other expected values are worked by hand from the documented rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.normalize import (
    categorize_findings,
    cvss_severity,
    finding_fingerprint,
    normalize_cve,
    normalize_findings,
    scanner_severity,
    vuln_key,
)
from cyberobs_lib.normalize.category import CategoryRulesError
from cyberobs_lib.normalize.fingerprint import fingerprint_reference

CVSS_CASES = [
    # NVD, CVE-2021-44228 (Log4Shell), CVSS 3.1 base 10.0 Critical
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "3.1", 10.0, "critical"),
    # FIRST CVSS v3.1 User Guide/examples, CVE-2014-0160 (Heartbleed): 7.5 High
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", "3.1", 7.5, "high"),
    # FIRST CVSS v3.1 examples, CVE-2013-1937 (phpMyAdmin reflected XSS): 6.1 Medium
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", "3.1", 6.1, "medium"),
    # FIRST CVSS v3.0 examples, CVE-2014-3566 (POODLE): 3.1 Low
    ("CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", "3.0", 3.1, "low"),
    # NVD CVSS v2, CVE-2014-0160: 5.0 Medium; CVE-2017-0144 (EternalBlue): 9.3 High (v2 has no Critical)
    ("AV:N/AC:L/Au:N/C:P/I:N/A:N", "2.0", 5.0, "medium"),
    ("CVSS2#AV:N/AC:M/Au:N/C:C/I:C/A:C", "2.0", 9.3, "high"),
    ("(AV:N/AC:L/Au:N/C:C/I:C/A:C)", "2.0", 10.0, "high"),  # NVD, CVE-2019-0708 v2: 10.0 High
    # FIRST CVSS v4.0 calculator: network, no privileges, high impact on the vulnerable system: 9.3 Critical
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 9.3, "critical"),
    # FIRST CVSS v4.0 calculator: local, low privileges, high impact: 8.5 High
    ("CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 8.5, "high"),
    # FIRST CVSS v4.0: no impact at all: 0.0 None -> info
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", "4.0", 0.0, "info"),
]


@pytest.mark.parametrize(("vector", "version", "score", "severity"), CVSS_CASES)
def test_cvss_against_published_values(vector, version, score, severity):
    out = cvss_severity(pd.Series([vector]))
    assert out["cvss_version"].iloc[0] == version
    assert out["cvss_score"].iloc[0] == pytest.approx(score)
    assert out["severity"].iloc[0] == severity
    assert out["cvss_error"].isna().all()


def test_cvss_invalid_vectors_have_reasons():
    out = cvss_severity(pd.Series(["CVSS:3.1/AV:X/AC:L", "CVSS:9.9/AV:N", "hello", "", None]))
    assert out["cvss_score"].isna().all()
    assert out["severity"].isna().all()
    assert out["cvss_error"].notna().tolist() == [True, True, True, False, False]
    assert "unsupported CVSS version" in out["cvss_error"].iloc[1]


def test_cvss_scored_once_per_distinct_vector(monkeypatch):
    from cyberobs_lib.normalize import severity as sev

    calls = []
    real = sev.score_cvss_vector
    monkeypatch.setattr(sev, "score_cvss_vector", lambda v: calls.append(v) or real(v))
    sev.cvss_severity(pd.Series([CVSS_CASES[0][0]] * 1000 + [CVSS_CASES[4][0]] * 1000))
    assert len(calls) == 2


def test_scanner_native_scales():
    vals = pd.Series(["0", "4", 3, "Serious", "1", "Log", "False Positive", "WARN", "moyenne", "4", None])
    scanners = pd.Series(["nessus", "nessus", "nessus", "qualys", "qualys", "openvas", "openvas", "testssl",
                          None, None, "nessus"])  # fmt: skip
    got = scanner_severity(vals, scanner=scanners).tolist()
    expected = ["info", "critical", "high", "medium", "info", "info", None, None, "medium", None, None]
    assert [None if pd.isna(g) else g for g in got] == expected


def test_normalize_cve_forms():
    got = normalize_cve(pd.Series(["cve-2021-44228", "CVE_2021_44228 ; CVE-2017-144", "CVE–2014–0160",
                                   "CVE-2021-1234567\nCVE-2021-44228", "no cve", None]))  # fmt: skip
    assert got.tolist()[:4] == ["CVE-2021-44228", "CVE-2017-0144;CVE-2021-44228", "CVE-2014-0160",
                                "CVE-2021-44228;CVE-2021-1234567"]  # fmt: skip
    assert got.iloc[4:].isna().all()


def test_vuln_key_rules():
    key = vuln_key(pd.Series(["nessus:19506", "CVE-2021-44228", "1.3.6.1.4.1.25623.1.0.10330", ""]),
                   scanner=pd.Series(["nessus", "x", "OpenVAS", "nessus"]),
                   cve=pd.Series([None, None, None, "CVE-2019-0708"]))  # fmt: skip
    assert key.tolist() == [
        "nessus:19506",
        "cve-2021-44228",
        "openvas:1.3.6.1.4.1.25623.1.0.10330",
        "cve-2019-0708",
    ]


def test_fingerprint_matches_reference_and_is_frozen():
    rng = np.random.default_rng(7)
    n = 200
    frame = pd.DataFrame({"finess": rng.choice(["010000024", "2A0000212"], n),
                          "host": [f"10.0.{i % 7}.{i % 11}" for i in range(n)],
                          "port": rng.choice([22, 443, 3389], n), "protocol": rng.choice(["tcp", "udp"], n),
                          "vuln_key": [f"nessus:{i % 13}" for i in range(n)]})  # fmt: skip
    fp = finding_fingerprint(frame)
    ref = [fingerprint_reference(*[str(v) for v in row]) for row in frame.itertuples(index=False)]
    assert fp.tolist() == ref
    # Frozen value: a change here breaks identity across audits and needs a FINGERPRINT_VERSION bump.
    assert fingerprint_reference("010000024", "10.0.0.1", "22", "tcp", "nessus:10881") == (
        "650f3977724c3531b91a154421cf226c"
    )


def test_fingerprint_ignores_text_and_case():
    a = pd.DataFrame({"finess": ["010000024"], "host": ["WWW.Example.fr"], "port": [443], "protocol": ["TCP"],
                      "vuln_key": ["nessus:51192"], "title": ["SSL Certificate Cannot Be Trusted"],
                      "plugin_output": ["chain A"]})  # fmt: skip
    b = a.assign(
        host="www.example.fr.", protocol="tcp", title="SSL cert untrusted (v2)", plugin_output="chain B"
    )
    c = a.assign(port=8443)
    assert finding_fingerprint(a)[0] == finding_fingerprint(b)[0]
    assert finding_fingerprint(a)[0] != finding_fingerprint(c)[0]


def test_categorize_rules_and_kev_priority():
    f = pd.DataFrame({
        "port": [3389, 3389, 443, 25, 80, 80, 8080, 445],
        "title": ["RDP detected", "BlueKeep", "TLS Version 1.0 Protocol Detection", "Missing DMARC record",
                  "HSTS Missing From HTTPS Server", "Web Server Directory Listing", "Apache banner", "SMB"],
        "cve": [None, "CVE-2019-0708", None, None, None, None, None, "CVE-2020-0796"],
        "category": [None, None, None, None, None, None, None, "other"],
    })  # fmt: skip
    got = categorize_findings(f, kev_cves={"CVE-2019-0708"}).tolist()
    assert got == ["exposed_remote_admin", "known_exploited", "tls_certificate", "email_authentication",
                   "web_misconfiguration", "web_misconfiguration", "information_leak", "other"]  # fmt: skip
    # without the catalog, KEV membership is unknown: the port rule applies
    assert categorize_findings(f.iloc[[1]])[1] == "exposed_remote_admin"


def test_categorize_bad_rules_table():
    rules = pd.DataFrame(
        {"priority": [1], "field": ["colour"], "pattern": ["x"], "category": ["nope"], "note": [""]}
    )
    with pytest.raises(CategoryRulesError, match="colour"):
        categorize_findings(pd.DataFrame({"port": [1]}), rules=rules)


AUDITS = pd.DataFrame({"audit_id": ["A1", "A2"], "finess": ["010000024", "010000024"]})


def _findings(audit: str, outputs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({
        "audit_id": [audit] * 4,
        "host": ["10.0.0.1", "10.0.0.1", "10.0.0.1", "mail.example.fr"],
        "port": [3389, 3389, 443, 25],
        "protocol": ["tcp"] * 4,
        "vuln_id": ["nessus:10940", "nessus:10940", "nessus:51192", "CVE-2019-0708"],
        "title": ["Remote Desktop", "Remote Desktop", "SSL Certificate Cannot Be Trusted", "BlueKeep"],
        "plugin_output": [outputs[0], outputs[0] + " (dup)", outputs[1], ""],
        "scanner": ["nessus"] * 4,
        "scanner_severity": ["2", "2", "2", "4"],
        "cvss_vector": [None, None, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
                        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"],
    })  # fmt: skip


def test_normalize_findings_end_to_end():
    f = _findings("A1", ("port 3389 open", "issuer X"))
    before = f.copy()
    out = normalize_findings(f, audits=AUDITS, kev=pd.DataFrame({"cve": ["CVE-2019-0708"]}))
    pd.testing.assert_frame_equal(f, before)
    assert len(out) == 3
    assert out["n_duplicates"].tolist() == [1, 0, 0]
    assert out.attrs["normalize"]["duplicates"] == 1
    assert out["finess"].tolist() == ["010000024"] * 3
    assert out["cve"].tolist()[2] == "CVE-2019-0708"
    # nessus 2 = medium vs vector 7.5 high -> both kept, flagged, vector wins
    assert out["severity"].tolist() == ["medium", "high", "critical"]
    assert out["severity_source"].tolist() == ["scanner", "cvss", "cvss"]
    assert out["severity_mismatch"].tolist() == [False, True, False]
    assert out["severity_scanner"].tolist()[1] == "medium"
    assert out["category"].tolist() == ["exposed_remote_admin", "tls_certificate", "known_exploited"]
    assert out["fingerprint"].str.fullmatch(r"[0-9a-f]{32}").all()


def test_identity_survives_changed_scanner_text_across_audits():
    first = normalize_findings(_findings("A1", ("port 3389 open", "issuer X, expires 2024")), audits=AUDITS)
    second = normalize_findings(
        _findings("A2", ("RDP service, NLA off", "issuer Y, expires 2026")), audits=AUDITS
    )
    assert first["fingerprint"].tolist() == second["fingerprint"].tolist()


def test_unknown_audit_counted():
    f = _findings("ZZ", ("a", "b"))
    out = normalize_findings(f, audits=AUDITS)
    assert out.attrs["normalize"]["unknown_audit"] == 4
    assert out["finess"].isna().all()


def test_one_native_severity_table_for_readers_and_normalisation():
    """Normalisation maps a native severity as the scanner readers do (both read scanner_severity.csv)."""
    from cyberobs_lib.scanners import _core
    from cyberobs_lib.severity_tables import scanner_severity_table

    t = scanner_severity_table()
    rows = t[t["scale"].isin(["severity", "risk", "threat"]) & (t["scanner"] != "any")]
    assert len(rows) > 40
    for scanner, part in rows.groupby("scanner"):
        by_reader = _core.map_severity(scanner, part["scale"], part["native"].str.upper())["severity"]
        by_normalisation = scanner_severity(part["native"].str.upper(), scanner=scanner)
        assert [None if pd.isna(x) else x for x in by_normalisation] == by_reader.tolist(), scanner


def test_scanner_given_scores_banded_by_the_cvss3_bands():
    """A score a scanner reports (no vector) is banded by severity_bands.csv, lower bounds of the v3.x bands."""
    from cyberobs_lib.scanners import _core

    scores = pd.Series([0.0, 0.05, 0.1, 3.9, 4.0, 6.95, 7.0, 8.9, 9.0, 10.0])
    got = _core.map_severity("nmap", pd.Series(["cvss"] * len(scores)), scores.astype(str))
    assert got["severity"].tolist() == ["info", "info", "low", "low", "medium", "medium", "high", "high",
                                        "critical", "critical"]  # fmt: skip
    assert got["disposition"].tolist() == ["info", "info"] + ["finding"] * 8


def test_scanner_rating_is_the_readers_mapping_applied_once():
    """A row from a scanner reader keeps the reader's rating (it knew the native scale); a native value
    given without a canonical severity is mapped by the same table."""
    f = pd.DataFrame({
        "audit_id": ["A1"] * 4,
        "host": ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
        "vuln_id": ["nmap:port/3389", "qualys:38170", "nessus:1", "nessus:2"],
        "title": ["Open port 3389/tcp", "INFO item", "x", "y"],
        "scanner": ["nmap", "qualys", "nessus", None],
        "scanner_severity": ["open", "2", "3", "moyenne"],
        "severity": ["high", "info", None, None],
    })  # fmt: skip
    out = normalize_findings(f, audits=AUDITS)
    assert out["severity_scanner"].tolist() == ["high", "info", "high", "medium"]
    assert out["severity"].tolist() == ["high", "info", "high", "medium"]
    assert out["severity_source"].tolist() == ["given", "given", "scanner", "scanner"]
