"""TLS scanners: testssl.sh CSV / JSON and sslyze JSON (3.x-6.x); findings, ``tls_modern`` / ``hsts`` evidence.

Policy
------
* testssl.sh, three layouts read alike (one mapping table, ``scanner_severity.csv`` rows ``testssl``):
  ``--csvfile`` (item = each CSV row), ``--jsonfile`` (item = each object of the flat array: ``id, ip,
  port, severity, cve, cwe, finding``, ``ip`` like ``name/1.2.3.4``) and ``--jsonfile-pretty`` (item = each
  ``{id, severity, finding, cve?, cwe?}`` entry of each section list — ``pretest``, ``protocols``,
  ``ciphers``, ``vulnerabilities``, ``rating``, ... — of each ``scanResult`` target, whose ``targetHost``,
  ``ip`` and ``port`` apply; entries of ``clientProblem<n>`` lists are local warnings without host; the
  target's own ``service`` value is an attribute, not an item).
  ``vuln_id = "testssl:<id>"``; severity from its ``severity`` word: ``OK`` is a passed check (skipped
  ``check_passed``), ``INFO`` informational (kept with ``include_info``), ``WARN``/``FATAL``/``DEBUG`` a
  scan problem (skipped ``scan_problem``); ``LOW`` ... ``CRITICAL`` are findings. Host = the IP part of
  ``fqdn/ip`` (each IP behind a name is a distinct TLS endpoint; the name is kept in ``evidence``), else
  the name; rows with no host (``/``: local engine messages) are skipped ``no_host``, all-empty rows
  ``empty_row``. Perimeter = every host with a row, including targets the scan could not reach
  (``FATAL``): they were in the audited scope.
* testssl.sh scan status: a ``FATAL`` entry (``scanProblem``: "Can't connect", "doesn't seem to be a
  TLS/SSL enabled server", ...) in a file where no check ran at all (no ``OK``/``LOW`` ... ``CRITICAL``
  entry: nothing could be scanned, e.g. the single FATAL row of an unreachable target) makes it
  ``failed``; ``FATAL`` entries beside check results (some targets, or part of a scan, could not be
  tested) make it ``incomplete``, as does "Scan interrupted" (``scanTime``). The detail names each
  target with a FATAL entry and testssl.sh's words. ``WARN`` entries (a check not run for lack of local
  OpenSSL support) change no status.
* sslyze: item = each check below that sslyze ran for a server (a check whose command was not scheduled
  is not an item; a command that errored is skipped ``scan_problem``); a failed check is a finding with
  ``vuln_id = "sslyze:<check>"`` and the severity given to that check in ``scanner_severity.csv``; a
  passed check is skipped ``check_passed``. Checks: ``ssl_2_0_offered``, ``ssl_3_0_offered``,
  ``tls_1_0_offered``, ``tls_1_1_offered`` (accepted cipher suites), ``heartbleed``, ``ccs_injection``,
  ``robot`` (``VULNERABLE_*`` oracle), ``insecure_renegotiation``, ``client_renegotiation``,
  ``compression``, ``no_fallback_scsv``, ``certificate_untrusted`` (no verified chain against any trust
  store), ``certificate_expired`` (leaf ``not_valid_after``/``notAfter`` before ``date_scans_started``; not
  evaluated when the report has no scan date, as in 3.x, so that results never depend on today's date),
  ``certificate_hostname_mismatch``. A server with a connectivity error (``scan_status`` ``ERROR_*``,
  ``connectivity_status`` ``ERROR``), and each target sslyze could not reach or resolve
  (``server_connectivity_errors`` in 3.x, ``invalid_server_strings``), is one item skipped
  ``scan_problem`` and stays in the perimeter.
* sslyze scan status: ``failed`` when no target could be scanned (every server in error), else
  ``incomplete`` when some could not, or when a scan command errored (``status: ERROR``, 3.x
  ``scan_commands_errors``); the detail names the target, the error and sslyze's reason.
* Controls (evidence, one row per host and control): ``tls_modern`` present when TLS 1.2 or 1.3 is offered
  and none of SSLv2, SSLv3, TLS 1.0, TLS 1.1 is (testssl rows ``SSLv2 ... TLS1_3``; sslyze cipher-suite
  scans); ``hsts`` present when testssl's ``HSTS`` row is not ``not offered`` / sslyze's
  ``http_headers`` has a ``strict_transport_security_header``.
* Invalid JSON is a :class:`ScanError` ``invalid JSON`` with the line and column of the parse error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cyberobs_lib.scanners._core import Collector, ScanError, ScanResult, join_cves
from cyberobs_lib.scanners.detect import json_error
from cyberobs_lib.scanners.tabular import iter_csv, pick, row_skip, sniff_header

_OLD = ("SSLv2", "SSLv3", "TLS1", "TLS1_1")
#: testssl severities of a check that ran (a FATAL target with none of these could not be scanned)
_RESULT_SEVERITIES = ("OK", "LOW", "MEDIUM", "HIGH", "CRITICAL")
_MAX_DETAILS = 5
_MODERN = ("TLS1_2", "TLS1_3")
#: sslyze cipher-suite commands of the old protocols (SSLv2 ... TLS 1.1) and of the modern ones
_OLD_SUITES = (
    "ssl_2_0_cipher_suites",
    "ssl_3_0_cipher_suites",
    "tls_1_0_cipher_suites",
    "tls_1_1_cipher_suites",
)
_MODERN_SUITES = ("tls_1_2_cipher_suites", "tls_1_3_cipher_suites")


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


@dataclass
class _TestsslState:
    """What a testssl.sh file carries over its chunks: ``fatal`` (target ``fqdn/ip:port`` -> its FATAL
    findings, in file order), ``result`` (a check ran: an ``OK`` ... ``CRITICAL`` entry), ``interrupted``
    (testssl.sh's "Scan interrupted")."""

    fatal: dict[str, list[str]] = field(default_factory=dict)
    result: bool = False
    interrupted: bool = False


def _testssl_block(col: Collector, df: pd.DataFrame, state: _TestsslState) -> None:
    """Append the rows of one testssl frame (CSV columns ``id, fqdn/ip, port, severity, finding, cve``)."""
    target = (
        pick(df, "fqdn/ip").fillna("").astype(str).str.split("/", n=1, expand=True).reindex(columns=[0, 1])
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
    _testssl_state(df, state)


def _testssl_state(df: pd.DataFrame, state: _TestsslState) -> None:
    """Accumulate the FATAL entries, whether a check ran and whether the scan was interrupted (over
    chunks)."""
    sev = pick(df, "severity").fillna("").str.strip().str.upper()
    ids = pick(df, "id").fillna("")
    finding = pick(df, "finding").fillna("").astype(str)
    fatal = (sev == "FATAL").to_numpy()
    if fatal.any():
        key = pick(df, "fqdn/ip").fillna("").astype(str) + ":" + pick(df, "port").fillna("").astype(str)
        for k, f in zip(key[fatal], finding[fatal], strict=True):
            state.fatal.setdefault(k, []).append(f)
    state.result = state.result or bool(sev.isin(_RESULT_SEVERITIES).any())
    interrupted = (ids == "scanTime") & finding.str.contains("interrupted", case=False)
    state.interrupted = state.interrupted or bool(interrupted.any())


def _testssl_flag(col: Collector, state: _TestsslState) -> None:
    """``failed`` when there is a FATAL entry and no check ran at all (nothing could be scanned, e.g. the
    single FATAL row of an unreachable target); ``incomplete`` when there are FATAL entries beside check
    results (some targets or part of a scan), or when testssl.sh says the scan was interrupted."""
    details = [f"testssl.sh FATAL for {k.strip(':/') or 'the scan'}: {v[0]}" for k, v in state.fatal.items()]
    if len(details) > _MAX_DETAILS:
        details = [*details[:_MAX_DETAILS], f"... and {len(details) - _MAX_DETAILS} more targets with FATAL"]
    for d in details:
        col.flag("incomplete" if state.result else "failed", d)
    if state.interrupted:
        col.flag("incomplete", "testssl.sh: scan interrupted")


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
    state = _TestsslState()
    for df in iter_csv(path, encoding=enc, sep=sep, skip_lines=skip, chunk_rows=chunk_rows):
        _testssl_block(col, df, state)
        if len(col) >= chunk_rows:
            yield col.flush()
    _testssl_flag(col, state)
    yield col.flush()


_JSON_FIELDS = ("id", "fqdn/ip", "port", "severity", "finding", "cve", "cwe")


def _entry(e, target: str, port) -> list:
    """One testssl JSON entry as a CSV-like row (``target`` = ``name/ip``)."""
    if not isinstance(e, dict):
        return ["", "", "", "", str(e), "", ""]
    return [
        str(e.get("id") or ""),
        target,
        str(e.get("port") or port or ""),
        str(e.get("severity") or ""),
        str(e.get("finding") or ""),
        str(e.get("cve") or ""),
        str(e.get("cwe") or ""),
    ]


def _pretty_rows(doc: dict) -> list[list]:
    """Entries of a ``--jsonfile-pretty`` document, in file order: each section list of each target of
    ``scanResult`` (an entry placed directly in ``scanResult`` belongs to the file's target), and the
    ``clientProblem<n>`` lists (local warnings, no target)."""
    rows: list[list] = []
    file_target = str(doc.get("target host") or "")
    file_port = doc.get("port")
    for key, value in doc.items():
        if key.startswith("clientProblem") and isinstance(value, list):
            rows.extend(_entry(e, "/", file_port) for e in value)
        if key != "scanResult" or not isinstance(value, list):
            continue
        for tgt in value:
            if isinstance(tgt, dict) and "id" in tgt and "targetHost" not in tgt:
                rows.append(_entry(tgt, file_target, file_port))
                continue
            if not isinstance(tgt, dict):
                rows.append(_entry(tgt, "", ""))
                continue
            name, ip = str(tgt.get("targetHost") or ""), str(tgt.get("ip") or "")
            target = f"{name}/{ip}" if name or ip else ""
            for section in tgt.values():
                if isinstance(section, list):
                    rows.extend(_entry(e, target, tgt.get("port")) for e in section)
    return rows


def _testssl_doc(path: Path) -> list | dict:
    """The parsed export (invalid JSON is a :class:`ScanError` with the line and column)."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise json_error(path, err, "a testssl.sh JSON export") from None


def _testssl_frame(path: Path, doc: list | dict) -> pd.DataFrame:
    """The entries of a ``--jsonfile`` (flat array, ``ip`` = ``name/ip``) or ``--jsonfile-pretty`` export
    as a frame of the CSV columns, ``_row`` numbering them from 1; any other document is a
    :class:`ScanError`."""
    if isinstance(doc, list):
        rows = [_entry(e, str(e.get("ip") or "") if isinstance(e, dict) else "", None) for e in doc]
    elif isinstance(doc, dict) and "scanResult" in doc:
        rows = _pretty_rows(doc)
    else:
        raise ScanError(
            path,
            "neither a JSON array of findings nor an object with scanResult",
            line=1,
            expected="a testssl.sh --jsonfile or --jsonfile-pretty export",
        )
    df = pd.DataFrame(rows, columns=list(_JSON_FIELDS), dtype=object)
    df["_row"] = range(1, len(df) + 1)
    return df


def iter_testssl_json(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Read a testssl.sh ``--jsonfile`` (flat array) or ``--jsonfile-pretty`` export as one chunk: its
    entries read as CSV rows, then the scan status (a pretty export's ``scanTime`` may say "interrupted")."""
    path = Path(path)
    doc = _testssl_doc(path)
    col = Collector("testssl_json", path, audit_id=audit_id, include_info=include_info)
    df = _testssl_frame(path, doc)
    state = _TestsslState()
    _testssl_block(col, df, state)
    if isinstance(doc, dict) and "interrupted" in str(doc.get("scanTime", "")).lower():
        state.interrupted = True
    _testssl_flag(col, state)
    yield col.flush()


# ------------------------------------------------------------------------------------------ sslyze
def _results(server: dict) -> tuple[dict, dict[str, str]]:
    """Completed command results (3.x: ``scan_commands_results``; 5.x+: ``scan_result[cmd].result``) and
    the commands that errored, with sslyze's reason."""
    if "scan_commands_results" in server:
        errors = {
            cmd: str((err or {}).get("reason") or "error") if isinstance(err, dict) else str(err or "error")
            for cmd, err in (server.get("scan_commands_errors") or {}).items()
        }
        return dict(server["scan_commands_results"] or {}), errors
    out, errors = {}, {}
    for cmd, wrapped in (server.get("scan_result") or {}).items():
        if not isinstance(wrapped, dict):
            continue
        if wrapped.get("status") == "COMPLETED" and wrapped.get("result") is not None:
            out[cmd] = wrapped["result"]
        elif wrapped.get("status") == "ERROR":
            errors[cmd] = str(wrapped.get("error_reason") or "error")
    return out, errors


def _last_line(trace) -> str:
    """The last non-blank line of a traceback (the exception and its message), shortened."""
    lines = [line.strip() for line in str(trace or "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


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


@dataclass
class _SslyzeScan:
    """What reading one sslyze report carries from target to target: the collector, the scan date (for
    certificate expiry), the ``source_row`` counter (items in file order) and the targets sslyze could not
    scan at all (one status detail each)."""

    col: Collector
    scan_date: str | None
    n: int = 0
    failures: list[str] = field(default_factory=list)

    def next_row(self) -> int:
        """The ``source_row`` of the next item."""
        self.n += 1
        return self.n


def _sslyze_doc(path: str | Path) -> dict | None:
    """The parsed report, or None for an empty report (``[]``); invalid JSON and a document without
    ``server_scan_results`` are :class:`ScanError`."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise json_error(path, err, "an sslyze JSON report") from None
    if isinstance(doc, list) and not doc:
        return None
    if not isinstance(doc, dict) or "server_scan_results" not in doc:
        raise ScanError(path, "no server_scan_results", line=1, expected="an sslyze JSON report")
    return doc


def _unreachable_targets(doc: dict) -> list:
    """Targets sslyze could not reach or resolve (3.x: ``server_connectivity_errors``; 5.x+:
    ``invalid_server_strings``)."""
    return [*(doc.get("server_connectivity_errors") or []), *(doc.get("invalid_server_strings") or [])]


def _unreachable_row(bad, scan: _SslyzeScan) -> None:
    """One ``no_connectivity`` item (skipped ``scan_problem``) for a target sslyze could not reach; its host
    stays in the perimeter."""
    bad = bad if isinstance(bad, dict) else {"server_string": str(bad)}
    target = str(bad.get("server_string") or bad.get("hostname") or "")
    host = _target_host(target)
    if host:
        scan.col.hosts.add(host)
    n = scan.next_row()
    scan.failures.append(f"sslyze {target or '?'}: {bad.get('error_message') or 'not scanned'}")
    scan.col.add(
        host=host, vuln_id="sslyze:no_connectivity", source_row=n, scale="check", native="no_connectivity"
    )


def _server_location(server: dict) -> tuple[str | None, object]:
    """``(host, port)`` of a scanned server (5.x+: ``server_location``; 3.x: ``server_info``); the host
    is the hostname, else the IP address."""
    loc = server.get("server_location") or (server.get("server_info") or {}).get("server_location") or {}
    return loc.get("hostname") or loc.get("ip_address"), loc.get("port")


def _not_connected(server: dict) -> bool:
    """sslyze could not connect to the server (``scan_status`` ``ERROR_*``, ``connectivity_status``
    ``ERROR``)."""
    return (
        server.get("scan_status", "COMPLETED") != "COMPLETED" or server.get("connectivity_status") == "ERROR"
    )


def _no_connectivity_row(server: dict, host, port, base: dict, scan: _SslyzeScan) -> None:
    """The ``no_connectivity`` item of a server sslyze could not connect to, and its failure detail
    (sslyze's status and the last line of its connectivity error trace)."""
    status = server.get("scan_status", "COMPLETED")
    n = scan.next_row()
    why = _last_line(server.get("connectivity_error_trace"))
    scan.failures.append(
        f"sslyze {host}:{port}: {status if status != 'COMPLETED' else 'connectivity ERROR'}"
        + (f" ({why})" if why else "")
    )
    scan.col.add(
        **base,
        vuln_id="sslyze:no_connectivity",
        title="sslyze: no connectivity",
        scanner_severity=server.get("scan_status"),
        source_row=n,
        scale="check",
        native="no_connectivity",
    )


def _command_error_rows(errors: dict[str, str], host, port, base: dict, scan: _SslyzeScan) -> None:
    """One ``not_tested`` item per scan command that errored (by command name), each flagging the scan
    ``incomplete`` with sslyze's reason."""
    for cmd in sorted(errors):
        scan.col.flag("incomplete", f"sslyze {host}:{port}: {cmd} errored ({errors[cmd]})")
        scan.col.add(
            **base,
            vuln_id=f"sslyze:{cmd}",
            title=f"sslyze: {cmd} not tested",
            scanner_severity="ERROR",
            source_row=scan.next_row(),
            scale="check",
            native="not_tested",
        )


def _check_rows(res: dict, base: dict, scan: _SslyzeScan) -> None:
    """One item per check whose command result is available: a failed check is a finding, a passed one is
    skipped ``check_passed`` (both ``no_host`` when the server has no host)."""
    for check, failed in _server_checks(res, scan.scan_date).items():
        scan.col.add(
            **base,
            vuln_id=f"sslyze:{check}",
            title=f"sslyze: {check.replace('_', ' ')}",
            scanner_severity="FAILED" if failed else "PASSED",
            source_row=scan.next_row(),
            scale="check",
            native=check if failed else "pass",
            skip=None if base["host"] else "no_host",
        )


def _sslyze_controls(col: Collector, host: str | None, res: dict) -> None:
    """``tls_modern`` (every old protocol tested and none accepted, TLS 1.2 or 1.3 tested and one
    accepted) and ``hsts`` (``http_headers`` has a ``strict_transport_security_header``) of a server."""
    if not host:
        return
    old = [_accepted(res, c) for c in _OLD_SUITES]
    new = [_accepted(res, c) for c in _MODERN_SUITES]
    if None not in old and any(v is not None for v in new):
        col.add_control(host, "tls_modern", bool(any(new) and not any(old)))
    headers = res.get("http_headers")
    if headers is not None:
        col.add_control(host, "hsts", headers.get("strict_transport_security_header") is not None)


def _server_rows(server: dict, scan: _SslyzeScan) -> None:
    """The items and controls of one server: a server sslyze could not connect to is one
    ``no_connectivity`` item; otherwise its errored commands, then its checks, then its controls."""
    host, port = _server_location(server)
    if host:
        scan.col.hosts.add(host)
    base = {"host": host, "port": port, "protocol": "tcp", "first_seen": scan.scan_date}
    if _not_connected(server):
        _no_connectivity_row(server, host, port, base, scan)
        return
    res, errors = _results(server)
    _command_error_rows(errors, host, port, base, scan)
    _check_rows(res, base, scan)
    _sslyze_controls(scan.col, host, res)


def _flag_failures(scan: _SslyzeScan, n_targets: int) -> None:
    """Scan status: ``failed`` when no target could be scanned, else ``incomplete`` for each one that
    could not (its detail)."""
    every = len(scan.failures) == n_targets
    for detail in scan.failures:
        scan.col.flag("failed" if every else "incomplete", detail)


def iter_sslyze_json(
    path: str | Path, *, audit_id: str | None, include_info: bool, chunk_rows: int
) -> Iterator[ScanResult]:
    """Read an sslyze ``--json_out`` file (3.x, 5.x, 6.x layouts) as one :class:`ScanResult`.

    The targets sslyze could not reach come first (one item each), then each scanned server (its items and
    controls); the scan status follows from the targets that could not be scanned (module docstring:
    Policy).
    """
    doc = _sslyze_doc(path)
    col = Collector("sslyze_json", path, audit_id=audit_id, include_info=include_info)
    if doc is None:
        yield col.flush()
        return
    scan = _SslyzeScan(col, doc.get("date_scans_started"))
    unreachable = _unreachable_targets(doc)
    servers = doc["server_scan_results"] or []
    for bad in unreachable:
        _unreachable_row(bad, scan)
    for server in servers:
        _server_rows(server, scan)
    _flag_failures(scan, len(servers) + len(unreachable))
    yield col.flush()


def _target_host(server_string: str) -> str | None:
    """Host of an sslyze server string (``host``, ``host:port``, ``[v6]:port``, ``host{ip}``)."""
    s = server_string.split("{", 1)[0].strip()
    if s.startswith("["):
        return s[1:].split("]", 1)[0] or None
    return (s.rsplit(":", 1)[0] if s.count(":") == 1 else s) or None
