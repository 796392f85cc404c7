"""Read a dataset's ``scans/<audit_id>/*`` folder: every export, never aborting on a bad file.

``audit_id`` is the name of the sub-folder (symbolic links are followed). Files directly under ``scans/``
(no audit folder) are read with ``audit_id`` None. Hidden files and folders (``.*``) are ignored. A file that raises :class:`ScanError` (including
:class:`ScanSecurityError`) is recorded in ``errors`` and in the accounting row's ``error``; the others are
read; ``ok`` is False when any file failed, so that the command line can exit non-zero with a summary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cyberobs_lib.scanners._core import CONTROL_COLUMNS, ScanError
from cyberobs_lib.scanners.reader import read_scan_file

ACCOUNTING_COLUMNS = (
    "source_file",
    "audit_id",
    "format",
    "items_read",
    "findings",
    "skipped",
    "skipped_reasons",
    "error",
    "status",
    "status_detail",
)


@dataclass
class ScanBatch:
    """All exports of a ``scans/`` folder: findings, perimeter, controls, per-file accounting, errors."""

    findings: pd.DataFrame
    hosts: pd.DataFrame
    controls: pd.DataFrame
    accounting: pd.DataFrame
    errors: list[ScanError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every file was read."""
        return not self.errors

    def summary(self) -> str:
        """One line per failed file (for the command line), or ``"all N files read"``."""
        if self.ok:
            return f"all {len(self.accounting)} scan files read"
        lines = [f"{len(self.errors)} of {len(self.accounting)} scan files failed:"]
        lines += [f"  {e}" for e in self.errors]
        return "\n".join(lines)


def read_scans_dir(scans_dir: str | Path, *, include_info: bool = False) -> ScanBatch:
    """Read every scanner export under ``scans_dir`` (``scans/<audit_id>/*``), surviving bad files.

    Parameters
    ----------
    scans_dir : path-like
        The dataset's ``scans`` folder.
    include_info : bool
        Passed to :func:`read_scan_file`.

    Returns
    -------
    ScanBatch
        ``findings`` (the columns of :func:`read_scan_file`), ``hosts`` (``audit_id, host``, one row per
        audited host), ``controls``, ``accounting`` (``source_file, audit_id, format, items_read, findings,
        skipped, skipped_reasons`` ("reason=n;..."), ``error``, ``status`` (``complete``, ``incomplete``,
        ``failed`` as the scanner says, ``refused`` when the file could not be read), ``status_detail``), ``errors`` (list of ScanError), ``ok``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "A1").mkdir()
    >>> _ = (d / "A1" / "empty.nessus").write_text("")
    >>> _ = (d / "A1" / "bad.xml").write_text("<nmaprun><host>")
    >>> b = read_scans_dir(d)
    >>> b.ok, b.accounting["error"].notna().tolist()
    (False, [True, False])
    """
    scans_dir = Path(scans_dir)
    files = sorted(
        Path(root) / name
        for root, dirs, names in os.walk(scans_dir, followlinks=True)
        for name in names
        if not name.startswith(".")
        and not any(part.startswith(".") for part in Path(root).relative_to(scans_dir).parts)
    )
    results, rows, errors = [], [], []
    for p in files:
        rel = p.relative_to(scans_dir)
        audit_id = rel.parts[0] if len(rel.parts) > 1 else None
        try:
            res = read_scan_file(p, audit_id=audit_id, include_info=include_info)
        except ScanError as err:
            errors.append(err)
            rows.append((str(p), audit_id, None, 0, 0, 0, "", str(err), "refused", err.message))
            continue
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a reader bug must not stop the batch
            err = ScanError(
                p, f"could not be read ({type(exc).__name__}: {exc})", expected="a readable export"
            )
            errors.append(err)
            rows.append((str(p), audit_id, None, 0, 0, 0, "", str(err), "refused", err.message))
            continue
        results.append((audit_id, res))
        sk = res.accounting["skipped"]
        rows.append(
            (
                str(p),
                audit_id,
                res.format,
                res.accounting["items_read"],
                res.accounting["findings"],
                sum(sk.values()),
                ";".join(f"{k}={v}" for k, v in sk.items()),
                None,
                res.status,
                res.status_detail,
            )
        )
    frames = [r.findings for _, r in results if len(r.findings)]
    controls = [r.controls for _, r in results if len(r.controls)]
    hosts = pd.DataFrame(
        [(a, h) for a, r in results for h in r.hosts], columns=["audit_id", "host"]
    ).drop_duplicates(ignore_index=True)
    from cyberobs_lib.scanners._core import empty_result

    template = empty_result("empty", scans_dir, audit_id=None)
    return ScanBatch(
        findings=pd.concat(frames, ignore_index=True) if frames else template.findings,
        hosts=hosts,
        controls=pd.concat(controls, ignore_index=True)
        if controls
        else pd.DataFrame(columns=list(CONTROL_COLUMNS)),
        accounting=pd.DataFrame(rows, columns=list(ACCOUNTING_COLUMNS)),
        errors=errors,
    )
