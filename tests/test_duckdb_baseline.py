"""The DuckDB ingest baseline (benchmarks/duckdb_ingest.py) does the same work as ``ingest_large``.

The reference is the library itself: ``ingest_large`` (findings chunk by chunk, small tables through
``ingest_dataset``) on a generated dataset with one planted example of the row faults of every table,
written below next to the rule each one breaks. Expected values are never pasted: the test compares
the two paths. What the baseline does differently on purpose (fingerprint hash, Latin-1 for CP1252) is
listed in its module docstring; ``test_all_numeric_finess_column_keeps_its_zeros`` documents a case
where the library's CSV reader, not the baseline, loses data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("duckdb")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from duckdb_csv import load_csv  # noqa: E402
from duckdb_ingest import duckdb_ingest  # noqa: E402

from cyberobs_lib.demo import DemoScale, generate_dataset  # noqa: E402
from cyberobs_lib.ingest import ingest_dataset  # noqa: E402
from cyberobs_lib.io import read_table_csv  # noqa: E402
from cyberobs_lib.scale.chunked import ingest_large  # noqa: E402
from cyberobs_lib.store import read_partitioned  # noqa: E402

TODAY = "2026-01-01"
CORSICA = "2A0000212"  # a valid Corsican FINESS: keeps the FINESS columns textual for pyarrow (see below)


def _insert(path: Path, after: int, rows: list[str]) -> None:
    """Insert text lines after data row ``after`` (0 = right after the header); -1 appends."""
    lines = path.read_text(encoding="utf-8").splitlines()
    at = len(lines) if after < 0 else after + 1
    path.write_text("\n".join(lines[:at] + rows + lines[at:]) + "\n", encoding="utf-8")


def _row(path: Path, i: int) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()[i + 1].split(",")


def _planted_dataset(root: Path) -> Path:
    """A small generated dataset (grouped by audit, as ingest_large needs) plus one example of each fault."""
    generate_dataset(root, seed=3, scale=DemoScale(establishments=30, years=(2024, 2025)))
    est, aud = root / "establishments.csv", root / "audits.csv"
    e0, e1 = _row(est, 0), _row(est, 1)
    _insert(est, -1, [
        f"{CORSICA},,Etablissement corse,355,public,2A,94,10,",          # kept (Corsican prefix)
        "75000001,,Zero perdu,355,public,,,10,",                          # finess_leading_zero (075000001)
        "7500001,,Trop court,355,public,,,10,",                           # finess_format
        "690000039,,Categorie inconnue,999,public,,,10,",                 # unknown_category
        ",".join([e0[0], e0[1], "Doublon different"] + e0[3:]),           # duplicate_id
        ",".join(e1),                                                     # exact copy: duplicate
        "130000053,,Lits negatifs,500,,,,-5,",                            # negative_count (+ check key warning)
        "2B0000178,,Statut inconnu,365,bizarre,,,12,",                    # unknown_legal_status
        "2B0000186,,Lits en lettres,365,public,,,douze,",                 # not_integer
        '2B0000194,,Lieu inconnu,365,public,XX,99,"1 804",',              # unknown_department/region (beds 1804)
        "",                                                               # empty line: skipped
        "x;y",                                                            # ragged_row
        ",Sans finess,,355,public,,,1,",                                  # required_value
    ])  # fmt: skip
    a0, a1, a2 = _row(aud, 0), _row(aud, 1), _row(aud, 2)
    lines = aud.read_text(encoding="utf-8").splitlines()
    # future_date on an audit of the generated data: its hosts, findings and controls cascade (unknown_audit)
    lines[3] = ",".join([a2[0], a2[1], "2099-01-01"] + a2[3:])
    aud.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _insert(aud, -1, [
        f"A999999-01,{CORSICA},2024-06-01,1,nessus,internet",             # kept
        f"A999999-02,{a0[1]},31/02/2024,1,nessus,internet",              # bad_date
        f"A999999-03,{a0[1]},1999-12-31,1,nessus,internet",              # date_too_early
        f"A999999-04,{a0[1]},2024-06-01,-1,nessus,internet",             # negative_count
        f"A999999-05,{a0[1]},2024-06-01,deux,nessus,internet",           # not_integer
        "A999999-06,999999999,2024-06-01,1,nessus,internet",             # unknown_finess
        ",".join(a0[:3] + ["7"] + a0[4:]),                               # duplicate_id
        ",".join(a1),                                                    # exact copy
        f"A999999-07,{a0[1]},15/06/2024,1,nessus,internet",              # kept (French date)
        f"A999999-09,{a0[1]},2024-06-01T23:30:00-02:00,1,nessus,internet",  # kept (UTC day 2024-06-02)
        f"A999999-10,{a0[1]},1/7/2024 09:05,1,nessus,internet",          # kept (French date-time)
        f"A999999-11,{a0[1]},2024-06-01garbage,1,nessus,internet",       # bad_date (not a whole date)
        f"A999999-08,{a0[1]},,1,nessus,internet",                        # required_value
    ])  # fmt: skip
    hosts = root / "hosts.csv"
    h0 = _row(hosts, 1)
    _insert(hosts, 2, [",".join(h0), f"{h0[0]},{h0[1].upper()}", f"{h0[0]},", "NO-SUCH-AUDIT,10.0.0.1"])
    fnd = root / "findings.csv"
    f0 = _row(fnd, 0)

    def f(**cells) -> str:
        cols = ["audit_id", "host", "port", "protocol", "service", "vuln_id", "cve", "title", "cvss_vector",
                "cvss_score", "severity", "category"]  # fmt: skip
        return ",".join(cells.get(c, v) for c, v in zip(cols, f0, strict=True))

    _insert(fnd, 0, [
        ",".join(f0), ",".join(f0),                                       # exact copies: duplicates
        f(port="99999"), f(port="abc"),                                   # port_range
        f(port="8443.0", vuln_id="nessus:1"),                             # kept (8443)
        f(protocol="TCPX"), f(protocol="UDP", vuln_id="nessus:2"),        # unknown_protocol / kept (udp)
        f(cvss_vector="CVSS:3.1/AV:Q/AC:L"),                              # bad_cvss_vector
        f(cvss_score="11.5", vuln_id="nessus:10"),                        # cvss_score_range
        f(cvss_score='"7,5"', vuln_id="nessus:3"),                        # kept (7.5)
        f(severity="grave"), f(severity=" HIGH ", vuln_id="nessus:4"),    # unknown_severity / kept (high)
        f(category="misc"), f(category="TLS_Certificate", vuln_id="nessus:5"),  # unknown_category_label / kept
        f(cve="CVE-20-1"),                                                # bad_cve
        f(cve="cve-2021-44228; CVE-2017-0144", vuln_id="nessus:6"),      # kept, list normalized
        f(vuln_id="cve-2019-0708", cve=""),                               # kept, CVE as vuln_id
        f(vuln_id="10940", port="3389"),                                  # kept, unprefixed id
        f(title=""), f(host=""),                                          # required_value
        f(title="Same identity other title"),                             # kept as one (audit, fingerprint)
        f(title='"Quoted, with comma"', vuln_id="nessus:7"),              # kept, quoted cell
        f(host="10.9.9.9", vuln_id="nessus:8"),                           # host_not_in_perimeter (warning)
        f(vuln_id="nessus:11\u00a0", service="\thttps"),                   # kept, cells stripped (NBSP, tab)
        f(port="", protocol="", vuln_id="nessus:9", cvss_vector="AV:N/AC:L/Au:N/C:P/I:P/A:P", severity=""),
        f(cvss_vector="AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", vuln_id="nessus:12"),  # cvss_vector_prefix
        f(cve="CVE-2021-44228;CVE-20-1", vuln_id="nessus:13"),           # bad_cve, the well-formed id kept
        f(port='"1 443"', vuln_id="nessus:14"),                           # kept (port 1443, French number)
        "", "a,b,c", ",,,,,,,,,,,", "   ",                               # empty, ragged, blank, blank (spaces)
        ",".join(f0) + ",",                                               # ragged: one extra (empty) cell
    ])  # fmt: skip
    _insert(fnd, -1, [f(audit_id="NO-SUCH-AUDIT"), f(audit_id="A999999-01", host="10.0.0.1")])
    ctl = root / "controls.csv"
    c0 = _row(ctl, 0)
    flip = "true" if c0[2] == "false" else "false"
    _insert(ctl, 0, [
        f"{c0[0]},waf,peut-etre",                                         # bad_boolean
        f"{c0[0]},firewall_magic,true",                                   # unknown_control (warning, kept)
        f"{c0[0]},{c0[1]},{flip}",                                        # duplicate_id (other value)
        f"{c0[0]},{c0[1].upper()},{'1' if c0[2] == 'true' else '0'}",     # exact copy once normalized
        "NO-SUCH-AUDIT,waf,true",                                         # unknown_audit
    ])  # fmt: skip
    _insert(root / "incidents.csv", -1, [
        "I-X1,2024-01-01,,,,malveillant,ransomware,",                     # incident_without_frame
        "I-X2,2024-01-02,,355,,hostile,ransomware,none",                  # unknown_nature
        "I-X3,2099-01-01,,355,,malicious,phishing,none",                  # future_date
        "I-X4,2024-01-03,75000001,,,malicious,phishing,none",             # finess_leading_zero
        "I-X41,2024-01-03,7500001,,,malicious,phishing,none",             # finess_format
        "I-X42,2024-01-03,,999,CH,malicious,phishing,none",               # unknown_category (warning: family)
        "I-X5,2024-01-03,,999,,malicious,phishing,none",                  # unknown_category
        "I-X6,2024-01-03,,,CH,malicious,zero-day,none",                   # unknown_incident_type
        "I-X7,2024-01-03,,,CH,malicious,phishing,fatal",                  # unknown_impact
        f"I-X8,2024-01-03,{CORSICA},,,Malveillant,ransomware,degraded",   # kept
        f"I-X8,2024-01-04,{CORSICA},,,malicious,ransomware,degraded",     # duplicate_id
        "I-X9,2024-01-05,010000024,,,malicious,phishing,none",            # unknown_finess (warning, kept)
    ])  # fmt: skip
    return root


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The planted dataset through ingest_large (small chunks) and through the DuckDB baseline."""
    root = tmp_path_factory.mktemp("duckdb_baseline")
    dataset = _planted_dataset(root / "planted")
    ref = ingest_large(dataset, root / "large", chunk_rows=60, today=TODAY)
    got = duckdb_ingest(dataset, root / "duck", today=TODAY, memory_limit="1GB", threads=2)
    return root, ref, got


def _rejects(frame: pd.DataFrame) -> set[tuple]:
    rules = (
        frame["rules"]
        if "rules" in frame
        else frame["message"].astype(str).str.extract(r"\[rules: ([^\]]*)\]$")[0]
    )
    return set(zip(frame["source_file"].astype(str), frame["row"].astype(int), frame["reason"].astype(str),
                   rules.astype(str), strict=True))  # fmt: skip


def test_same_kept_rows_and_same_rejects_as_ingest_large(both):
    root, ref, got = both
    assert got["rows"] == ref["rows"]
    want = _rejects(read_partitioned(root / "large", "rejects"))
    have = _rejects(pd.read_parquet(root / "duck" / "rejects"))
    assert have == want
    planted = {r for _, _, r, _ in want}  # every fault written in _planted_dataset was met
    assert planted >= {"ragged_row", "required_value", "finess_format", "finess_leading_zero",
                       "unknown_category", "duplicate_id", "negative_count", "not_integer", "bad_date",
                       "date_too_early", "future_date", "unknown_finess", "unknown_audit", "bad_boolean",
                       "incident_without_frame", "unknown_nature"}  # fmt: skip
    # optional cells that cannot be read are blanked with a warning: the row is kept
    viol = read_partitioned(root / "large", "violations")
    blanked = set(viol.loc[viol["severity"] == "warning", "rule"].astype(str))
    assert blanked >= {"port_range", "unknown_protocol", "bad_cvss_vector", "cvss_vector_prefix",
                       "cvss_score_range", "unknown_severity", "unknown_category_label", "bad_cve",
                       "unknown_legal_status", "not_integer", "negative_count", "unknown_department",
                       "unknown_region", "unknown_category", "unknown_incident_type", "unknown_impact"}  # fmt: skip
    acc = pd.read_parquet(root / "duck" / "accounting").set_index("source_file")
    ref_acc = read_partitioned(root / "large", "accounting").set_index("source_file")
    for col in ("rows_read", "kept", "rejected", "duplicates"):
        assert acc[col].astype(int).to_dict() == ref_acc[col].astype(int).to_dict(), col


def test_same_violations_as_ingest_large(both):
    """Every violation, warnings included (check key, duplicates, host outside the perimeter, unknown column)."""
    root, _, _ = both

    def rows(v: pd.DataFrame) -> list[tuple]:
        v = v.assign(row=v["row"].astype("Int64"))
        return sorted(map(tuple, v[["file", "row", "column", "rule", "severity"]].astype(str).to_numpy()))

    want = rows(read_partitioned(root / "large", "violations"))
    assert rows(pd.read_parquet(root / "duck" / "violations")) == want
    assert {
        "finess_check_key",
        "duplicate_row",
        "host_not_in_perimeter",
        "unknown_control",
        "unknown_finess",
    } <= {r[3] for r in want if r[4] == "warning"}


def test_findings_normalized_and_enriched_like_ingest_large(both):
    root, _, _ = both
    want = read_partitioned(root / "large", "findings").set_index("source_row").sort_index()
    have = (
        pd.read_parquet(root / "duck" / "findings", dtype_backend="numpy_nullable")
        .set_index("source_row")
        .sort_index()
    )
    assert list(have.index) == list(want.index)  # same rows kept, same collapse of (audit, fingerprint)
    assert want["n_duplicates"].sum() >= 1
    for col in ("audit_id", "host", "port", "protocol", "vuln_id", "cve", "title", "cvss_version", "cvss_score",
                "severity", "severity_cvss", "severity_source", "severity_mismatch", "category", "vuln_key",
                "finess", "n_duplicates", "known_exploited", "ransomware_use", "epss", "epss_percentile",
                "kev_catalog", "epss_catalog", "year"):  # fmt: skip
        a = (
            have[col]
            .astype(object)
            .where(have[col].notna(), None)
            .map(lambda v: str(v) if v is not None else None)
        )
        b = (
            want[col]
            .astype(object)
            .where(want[col].notna(), None)
            .map(lambda v: str(v) if v is not None else None)
        )
        assert a.to_dict() == b.to_dict(), col
    # the fingerprint is another hash of the same fields: a one-to-one relabelling
    pairs = pd.DataFrame(
        {"a": have["fingerprint"].to_numpy(), "b": want["fingerprint"].to_numpy()}
    ).drop_duplicates()
    assert pairs["a"].is_unique and pairs["b"].is_unique


def test_small_tables_like_ingest_large(both):
    root, _, _ = both
    for name, key in (("establishments", "finess"), ("audits", "audit_id"), ("hosts", "source_row"),
                      ("controls", "source_row"), ("incidents", "incident_id"), ("protection", "audit_id")):  # fmt: skip
        want = read_partitioned(root / "large", name)
        have = pd.read_parquet(root / "duck" / name, dtype_backend="numpy_nullable")
        assert sorted(have.columns) == sorted(want.columns), name
        w = want.sort_values(key).reset_index(drop=True).astype(str)
        h = have[list(want.columns)].sort_values(key).reset_index(drop=True).astype(str)
        w = w.replace({"<NA>": "None", "nan": "None", "NaT": "None"})
        h = h.replace({"<NA>": "None", "nan": "None", "NaT": "None"})
        pd.testing.assert_frame_equal(h, w, obj=name)


def test_physical_lines_like_read_table_csv(tmp_path):
    """Empty lines, ragged records, CRLF, a BOM and quoted cells spanning lines: the same line numbers."""
    import duckdb

    texts = {
        "blank": "a,b,c\n1,2,3\n\n4,5,6\n\n\n7,8,9\n",
        "ragged": "a;b;c\n1;2;3\n4;5\n\n6;7;8;9\n   \n7;8;9\n;;\n x ; ; \n",
        "multiline": 'a,b,c\n1,2,3\n"x\ny",2,3\n4,5\n\n6,7,8,9\n7,"p\n\nq",9\n\n8,9,10\n',
        "crlf_bom": "\ufeffa,b,c\r\n1,2,3\r\n\r\n4,5\r\n7,8,9\r\n",
        # DuckDB keeps a record with extra empty trailing cells without a word: still ragged for the readers
        "trailing": 'a,b,c\n1,2,3\n1,2,3,\n1,2,3,,\n1,2,3,x\n"1,2",3,\n',
    }
    for name, text in texts.items():
        path = tmp_path / f"{name}.csv"
        path.write_bytes(text.encode("utf-8"))
        con = duckdb.connect()
        src = load_csv(con, "t", path)
        rows = con.execute("SELECT line, * EXCLUDE (line, ragged) FROM src_t ORDER BY line").fetchall()
        ref = read_table_csv(path)
        want = [(int(n), *[(v.strip() or None) if v is not None else None for v in r])
                for n, r in zip(ref.lines, ref.frame.to_numpy().tolist(), strict=True)]  # fmt: skip
        have = [(n, *[(v.strip() or None) if v is not None else None for v in r]) for n, *r in rows]
        have = [r for r in have if any(v is not None for v in r[1:])]
        assert have == want, name
        assert src.multiline == (2 if name == "multiline" else 0)
        assert src.ragged == len(ref.frame.attrs["ragged_rows"]), name


def test_violations_fixture_rejects_like_ingest_dataset(fixtures_dir, tmp_path):
    """Semicolons, CP1252, a BOM and a hosts.csv without its required column, as ingest_dataset sees them."""
    dataset = fixtures_dir / "datasets" / "violations"
    ref = ingest_dataset(dataset, today=TODAY)
    got = duckdb_ingest(dataset, tmp_path / "duck", today=TODAY, memory_limit="1GB")
    assert _rejects(pd.read_parquet(tmp_path / "duck" / "rejects")) == _rejects(ref.rejects)
    assert got["rows"] == {k: len(v) for k, v in ref.tables.items()}


def test_all_numeric_finess_column_keeps_its_zeros(tmp_path):
    # was a library bug (io._read_fast let pyarrow infer an all-digit FINESS column as integers)
    dataset = tmp_path / "d"
    generate_dataset(dataset, seed=1, scale=DemoScale(establishments=30, years=(2024, 2025)))
    finess = pd.read_csv(dataset / "establishments.csv", dtype=str)["finess"]
    assert finess.str.fullmatch(r"[0-9]{9}").all() and finess.str.startswith("0").any()  # the case at stake
    ref = ingest_dataset(dataset, today=TODAY)
    got = duckdb_ingest(dataset, tmp_path / "duck", today=TODAY, memory_limit="1GB")
    assert got["rows"]["establishments"] == len(ref.tables["establishments"])
