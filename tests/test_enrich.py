"""Tests of cyberobs_lib.enrich: KEV and EPSS readers, enrichment, protection status.

Fixtures are hand-written excerpts in the publishers' layouts (CISA KEV JSON/CSV schema, FIRST EPSS daily file
with its comment header); expected values are read off those fixtures.
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from cyberobs_lib.enrich import (
    CatalogError,
    enrich_findings,
    evidence_from_findings,
    protection_status,
    read_epss,
    read_kev,
)


@pytest.fixture()
def fx(fixtures_dir):
    return fixtures_dir / "normalize"


def test_read_kev_json(fx):
    kev = read_kev(fx / "kev_small.json")
    assert kev.attrs["catalog"]["version"] == "2099.01.02"
    assert kev.attrs["catalog"]["date"] == "2099-01-02T10:00:00Z"
    assert kev["cve"].tolist() == ["CVE-2017-0144", "CVE-2019-0708", "CVE-2021-44228"]  # lower case fixed
    assert kev["ransomware_use"].tolist() == [True, False, True]
    assert kev["cwes"].tolist()[2] == "CWE-917;CWE-20"


def test_read_kev_csv_has_no_version(fx):
    kev = read_kev(fx / "kev_small.csv")
    assert kev.attrs["catalog"]["version"] is None
    assert kev.attrs["catalog"]["date"] == "2022-02-10"  # latest dateAdded
    assert kev["ransomware_use"].tolist() == [True, False]


def test_read_kev_failures(fx, tmp_path):
    bad = tmp_path / "kev.json"
    bad.write_text('{"catalogVersion": "1", "vulnerabilities": [')
    with pytest.raises(CatalogError, match="invalid JSON"):
        read_kev(bad)
    with pytest.raises(CatalogError, match="cveID"):
        read_kev(fx / "epss_small.csv")
    with pytest.raises(CatalogError, match="cannot be read"):
        read_kev(tmp_path / "absent.json")


def test_read_epss_plain_and_gzip(fx, tmp_path):
    plain = read_epss(fx / "epss_small.csv")
    gz = tmp_path / "epss.csv.gz"
    gz.write_bytes(gzip.compress((fx / "epss_small.csv").read_bytes()))
    zipped = read_epss(gz)
    pd.testing.assert_frame_equal(plain, zipped)
    assert plain.attrs["catalog"]["model_version"] == "v2099.01.01"
    assert plain.attrs["catalog"]["score_date"] == "2099-01-02T00:00:00+0000"
    assert plain.loc[plain["cve"] == "CVE-2017-0144", "epss"].iloc[0] == pytest.approx(0.97565)


def test_read_epss_failures(fx, tmp_path):
    with pytest.raises(CatalogError, match="outside"):
        read_epss(fx / "epss_bad.csv")
    with pytest.raises(CatalogError, match="missing column"):
        read_epss(fx / "epss_wrong_columns.csv")
    broken = tmp_path / "x.csv.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(CatalogError, match="cannot be read"):
        read_epss(broken)


def test_enrich_findings(fx):
    kev, epss = read_kev(fx / "kev_small.json"), read_epss(fx / "epss_small.csv")
    f = pd.DataFrame({"cve": ["CVE-2019-0708;CVE-2020-0001", "CVE-2020-0001", None, "CVE-2030-9999"]})
    before = f.copy()
    out = enrich_findings(f, kev=kev, epss=epss)
    pd.testing.assert_frame_equal(f, before)
    assert out["known_exploited"].tolist() == [True, False, False, False]
    assert out["ransomware_use"].tolist() == [False, False, False, False]  # 0708 is "Unknown" in the fixture
    np.testing.assert_allclose(out["epss"], [0.97467, 0.00045, np.nan, np.nan])  # max over the CVEs
    np.testing.assert_allclose(out["epss_percentile"], [0.99970, 0.12, np.nan, np.nan])
    assert set(out["kev_catalog"].astype(str)) == {"2099.01.02 (2099-01-02T10:00:00Z)"}
    assert set(out["epss_catalog"].astype(str)) == {"v2099.01.01 (2099-01-02T00:00:00+0000)"}
    assert out.attrs["catalogs"]["kev"]["version"] == "2099.01.02"


def test_enrich_without_catalogs_is_unknown_not_false():
    out = enrich_findings(pd.DataFrame({"cve": ["CVE-2019-0708"]}))
    assert out["known_exploited"].isna().all() and out["ransomware_use"].isna().all()
    assert out["epss"].isna().all() and out["kev_catalog"].isna().all()


def test_protection_status_unknown_is_not_none():
    audits = pd.DataFrame({"audit_id": ["a1", "a2", "a3", "a4"]})
    controls = pd.DataFrame({"audit_id": ["a1", "a1", "a2", "a2", "a4"],
                             "control": ["WAF", "hsts", "waf", "waf", "dmarc"],
                             "present": ["non", "0", "false", "oui", "peut-être"]})  # fmt: skip
    evidence = pd.DataFrame({"audit_id": ["a1", "a3"], "control": ["hsts", "spf"], "present": [True, False]})
    out = protection_status(controls, audits=audits, evidence=evidence).set_index("audit_id")
    # a1: controls say waf & hsts absent (controls.csv wins over the scanner's hsts) -> no protection
    assert out.loc["a1", "no_protection"] is True or out.loc["a1", "no_protection"] == True  # noqa: E712
    assert out.loc["a1", "source"] == "controls" and out.loc["a1", "n_controls_observed"] == 2
    # a2: two rows for waf, one says present -> protected
    assert out.loc["a2", "no_protection"] == False  # noqa: E712
    assert out.loc["a2", "controls_present"] == "waf"
    # a3: scanner evidence only; a4: unparseable value -> nothing observed -> unknown
    assert out.loc["a3", "source"] == "scanner" and out.loc["a3", "no_protection"] == True  # noqa: E712
    assert pd.isna(out.loc["a4", "no_protection"]) and out.loc["a4", "source"] == "none"
    assert out["no_protection"].dtype == "boolean"


def test_evidence_from_findings():
    f = pd.DataFrame({"audit_id": ["a", "a", "b", "b"],
                      "title": ["TLSv1.2 supported", "SSL Version 2 and 3 Protocol Detection",
                                "DMARC record missing", "SPF record not found"]})  # fmt: skip
    ev = evidence_from_findings(f)
    assert ev[["audit_id", "control"]].values.tolist() == [["a", "tls_modern"], ["b", "dmarc"], ["b", "spf"]]
    assert (~ev["present"]).all()


def test_corpus_catalogs(corpus_dir):
    kev = read_kev(corpus_dir / "kev" / "known_exploited_vulnerabilities.json")
    assert len(kev) == 1404 and kev["ransomware_use"].sum() == 293  # MANIFEST: Known 293, Unknown 1111
    kev_csv = read_kev(corpus_dir / "kev" / "known_exploited_vulnerabilities.csv")
    assert set(kev_csv["cve"]) == set(kev["cve"])
    epss = read_epss(corpus_dir / "epss" / "epss_scores-2024-01-13.csv.gz")
    assert len(epss) == 221346 and epss.attrs["catalog"]["model_version"] == "v2023.03.01"
