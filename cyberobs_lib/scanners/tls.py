"""TLS scanners: testssl.sh CSV and sslyze JSON (3.x, 5.x, 6.x); findings and ``tls_modern`` / ``hsts`` evidence.

Policy
------
* testssl.sh: item = each CSV row; ``vuln_id = "testssl:<id>"``; severity from its ``severity`` word:
  ``OK`` is a passed check (skipped ``check_passed``), ``INFO`` informational, ``WARN``/``FATAL``/``DEBUG``
  a scan problem (skipped ``scan_problem``). Host = the IP part of ``fqdn/ip`` (each IP behind a name is
  a distinct TLS endpoint; the name is kept in ``evidence``), else the name; rows with
  no host (``/``: local engine messages) are skipped ``no_host``. Perimeter = every host with a row,
  including targets the scan could not reach (``FATAL``): they were in the audited scope.
* sslyze: item = each check below that sslyze ran for a server (a check whose command was not scheduled
  is not an item; a command that errored is skipped ``scan_problem``); a failed check is a finding with
  ``vuln_id = "sslyze:<check>"`` and the severity given to that check in ``scanner_severity.csv``; a
  passed check is skipped ``check_passed``. Checks: ``ssl_2_0_offered``, ``ssl_3_0_offered``,
  ``tls_1_0_offered``, ``tls_1_1_offered`` (accepted cipher suites), ``heartbleed``, ``ccs_injection``,
  ``robot`` (``VULNERABLE_*`` oracle), ``insecure_renegotiation``, ``client_renegotiation``,
  ``compression``, ``no_fallback_scsv``, ``certificate_untrusted`` (no verified chain against any trust
  store), ``certificate_expired`` (leaf ``not_valid_after``/``notAfter`` before ``date_scans_started``; not
  evaluated when the report has no scan date, as in 3.x, so that results never depend on today's date),
  ``certificate_hostname_mismatch``. A server with a connectivity error is one item skipped
  ``scan_problem`` and stays in the perimeter.
* Controls (evidence, one row per host and control): ``tls_modern`` present when TLS 1.2 or 1.3 is offered
  and none of SSLv2, SSLv3, TLS 1.0, TLS 1.1 is (testssl rows ``SSLv2 ... TLS1_3``; sslyze cipher-suite
  scans); ``hsts`` present when testssl's ``HSTS`` row is not ``not offered`` / sslyze's
  ``http_headers`` has a ``strict_transport_security_header``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from cyberobs_lib.scanners._core import Collector, ScanError, ScanResult, join_cves
from cyberobs_lib.scanners.tabular import iter_csv, pick, row_skip, sniff_header

_OLD = ("SSLv2", "SSLv3", "TLS1", "TLS1_1")
_MODERN = ("TLS1_2", "TLS1_3")


def _testssl_controls(col: Collector, df: pd.DataFrame, host: pd.Series) -> None:
    ids = pick(df, "id")
    finding = pick(df, "finding").fillna("").str.strip().str.lower()
    offered = finding.str.startswith("offered")
    proto = pd.DataFrame({"host": host, "id": ids, "offered": offered}).dropna(subset=["host"])
    proto = proto[proto["id"].isin(_OLD + _MODERN)]
    if len(proto):
        g = (
            proto.assign(
                old=proto["id"].isin(_OLD) & proto["offered"],
                modern=proto["id"].isin(_MODERN) & proto["offered"],
            )
            .groupby("host")[["old", "modern"]]
            .any()
        )
        for h, row in g.iterrows():
            col.add_control(h, "tls_modern", bool(row["modern"] and not row["old"]))
    hsts = pd.DataFrame({"host": host, "id": ids, "f": finding}).dropna(subset=["host"])
    for h, f in hsts.loc[hsts["id"] == "HSTS"].groupby("host")["f"].first().items():
        col.add_control(h, "hsts", not f.startswith("not offered"))


def iter_testssl_csv(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Read a testssl.sh ``--csvfile`` export as :class:`ScanResult` chunks."""
    sniffed = sniff_header(path, lambda n: {"id", "fqdn/ip", "severity", "finding"} <= n)
    if sniffed is None:
        raise ScanError(
            path, "no testssl.sh CSV header", line=1, expected='"id","fqdn/ip","port","severity",...'
        )
    enc, sep, skip, _ = sniffed
    col = Collector("testssl_csv", path, audit_id=audit_id, include_info=include_info)
    for df in iter_csv(path, encoding=enc, sep=sep, skip_lines=skip, chunk_rows=chunk_rows):
        target = (
            pick(df, "fqdn/ip")
            .fillna("")
            .astype(str)
            .str.split("/", n=1, expand=True)
            .reindex(columns=[0, 1])
        )
        target = target.astype(object).fillna("").astype(str)
        host = target[1].where(target[1].fillna("") != "", target[0]).replace("", None)
        host = host.where(host.notna(), None)
        ids = pick(df, "id")
        sev = pick(df, "severity")
        col.hosts.update(host.dropna())
        col.add_block(
            len(df),
            host=host,
            port=pick(df, "port"),
            protocol=["tcp"] * len(df),
            vuln_id="testssl:" + ids.fillna(""),
            cve=pick(df, "cve").map(lambda v: join_cves([v]) if v else None),
            title=ids.fillna("") + ": " + pick(df, "finding").fillna(""),
            scanner_severity=sev,
            source_row=df["_row"],
            evidence=target[0].fillna("").str.cat(pick(df, "finding").fillna(""), sep=": "),
            scale=["severity"] * len(df),
            native=sev,
            skip=row_skip(df, host),
        )
        _testssl_controls(col, df, host)
        if len(col) >= chunk_rows:
            yield col.flush()
    yield col.flush()


# ------------------------------------------------------------------------------------------ sslyze
def _results(server: dict) -> tuple[dict, set[str]]:
    """Completed command results (3.x: ``scan_commands_results``; 5.x+: ``scan_result[cmd].result``)."""
    if "scan_commands_results" in server:
        errors = set((server.get("scan_commands_errors") or {}).keys())
        return dict(server["scan_commands_results"] or {}), errors
    out, errors = {}, set()
    for cmd, wrapped in (server.get("scan_result") or {}).items():
        if not isinstance(wrapped, dict):
            continue
        if wrapped.get("status") == "COMPLETED" and wrapped.get("result") is not None:
            out[cmd] = wrapped["result"]
        elif wrapped.get("status") == "ERROR":
            errors.add(cmd)
    return out, errors


def _accepted(res: dict, cmd: str) -> bool | None:
    r = res.get(cmd)
    return None if r is None else bool(r.get("accepted_cipher_suites"))


def _cert_checks(cert: dict, scan_date: str | None) -> dict[str, bool]:
    deps = cert.get("certificate_deployments") or []
    if not deps:
        return {}
    untrusted = all(
        not any(p.get("verified_certificate_chain") for p in d.get("path_validation_results") or [])
        for d in deps
    )
    mismatch = any(d.get("leaf_certificate_subject_matches_hostname") is False for d in deps)
    expired = False
    ref = pd.to_datetime(scan_date, utc=True, errors="coerce") if scan_date else pd.NaT
    for d in deps:
        chain = d.get("received_certificate_chain") or []
        if chain:
            leaf = chain[0]
            end = leaf.get("not_valid_after") or leaf.get("notAfter")
            end = pd.to_datetime(end, utc=True, errors="coerce") if end else pd.NaT
            expired |= bool(pd.notna(end) and pd.notna(ref) and end < ref)
    checks = {"certificate_untrusted": untrusted}
    if pd.notna(ref):  # no scan date (sslyze 3.x): expiry is not decided, to stay deterministic
        checks["certificate_expired"] = expired
    if any("leaf_certificate_subject_matches_hostname" in d for d in deps):
        checks["certificate_hostname_mismatch"] = mismatch
    return checks


def _server_checks(res: dict, scan_date: str | None) -> dict[str, bool]:
    """check name -> failed? for every check whose command result is available."""
    checks: dict[str, bool] = {}
    for cmd, name in (
        ("ssl_2_0_cipher_suites", "ssl_2_0_offered"),
        ("ssl_3_0_cipher_suites", "ssl_3_0_offered"),
        ("tls_1_0_cipher_suites", "tls_1_0_offered"),
        ("tls_1_1_cipher_suites", "tls_1_1_offered"),
    ):
        if (acc := _accepted(res, cmd)) is not None:
            checks[name] = acc
    if (r := res.get("heartbleed")) is not None:
        checks["heartbleed"] = bool(r.get("is_vulnerable_to_heartbleed"))
    if (r := res.get("openssl_ccs_injection")) is not None:
        checks["ccs_injection"] = bool(r.get("is_vulnerable_to_ccs_injection"))
    if (r := res.get("robot")) is not None:
        checks["robot"] = str(r.get("robot_result", "")).startswith("VULNERABLE")
    if (r := res.get("session_renegotiation")) is not None:
        checks["insecure_renegotiation"] = r.get("supports_secure_renegotiation") is False
        checks["client_renegotiation"] = bool(
            r.get("accepts_client_renegotiation") or r.get("is_vulnerable_to_client_renegotiation_dos")
        )
    if (r := res.get("tls_compression")) is not None:
        checks["compression"] = bool(r.get("supports_compression"))
    if (r := res.get("tls_fallback_scsv")) is not None:
        checks["no_fallback_scsv"] = r.get("supports_fallback_scsv") is False
    if (r := res.get("certificate_info")) is not None:
        checks.update(_cert_checks(r, scan_date))
    return checks


def iter_sslyze_json(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Read an sslyze ``--json_out`` file (3.x, 5.x, 6.x layouts) as one :class:`ScanResult`."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise ScanError(
            path, f"invalid JSON: {err.msg}", line=err.lineno, expected="an sslyze JSON report"
        ) from None
    col = Collector("sslyze_json", path, audit_id=audit_id, include_info=include_info)
    if isinstance(doc, list) and not doc:
        yield col.flush()
        return
    if not isinstance(doc, dict) or "server_scan_results" not in doc:
        raise ScanError(path, "no server_scan_results", line=1, expected="an sslyze JSON report")
    scan_date = doc.get("date_scans_started")
    n = 0
    for server in doc["server_scan_results"] or []:
        loc = server.get("server_location") or (server.get("server_info") or {}).get("server_location") or {}
        host = loc.get("hostname") or loc.get("ip_address")
        port = loc.get("port")
        if host:
            col.hosts.add(host)
        base = {"host": host, "port": port, "protocol": "tcp", "first_seen": scan_date}
        if (
            server.get("scan_status", "COMPLETED") != "COMPLETED"
            or server.get("connectivity_status") == "ERROR"
        ):
            n += 1
            col.add(
                **base,
                vuln_id="sslyze:no_connectivity",
                title="sslyze: no connectivity",
                scanner_severity=server.get("scan_status"),
                source_row=n,
                scale="check",
                native="no_connectivity",
            )
            continue
        res, errors = _results(server)
        for cmd in sorted(errors):
            n += 1
            col.add(
                **base,
                vuln_id=f"sslyze:{cmd}",
                title=f"sslyze: {cmd} not tested",
                scanner_severity="ERROR",
                source_row=n,
                scale="check",
                native="not_tested",
            )
        for check, failed in _server_checks(res, scan_date).items():
            n += 1
            col.add(
                **base,
                vuln_id=f"sslyze:{check}",
                title=f"sslyze: {check.replace('_', ' ')}",
                scanner_severity="FAILED" if failed else "PASSED",
                source_row=n,
                scale="check",
                native=check if failed else "pass",
                skip=None if host else "no_host",
            )
        old = [
            _accepted(res, c)
            for c in (
                "ssl_2_0_cipher_suites",
                "ssl_3_0_cipher_suites",
                "tls_1_0_cipher_suites",
                "tls_1_1_cipher_suites",
            )
        ]
        new = [_accepted(res, c) for c in ("tls_1_2_cipher_suites", "tls_1_3_cipher_suites")]
        if host and None not in old and any(v is not None for v in new):
            col.add_control(host, "tls_modern", bool(any(new) and not any(old)))
        headers = res.get("http_headers")
        if host and headers is not None:
            col.add_control(host, "hsts", headers.get("strict_transport_security_header") is not None)
    yield col.flush()
