"""Read a dataset's ``scans/<audit_id>/*`` folder: every export, never aborting on a bad file.

``audit_id`` is the name of the first folder under ``scans/``; files directly under ``scans/`` (no audit
folder) are read with ``audit_id`` None. A file that raises :class:`ScanError` (including
:class:`ScanSecurityError`) is recorded in ``errors`` and in the accounting row's ``error``; the others are
read; ``ok`` is False when any file failed or was refused, so that the command line can exit non-zero with
a summary.

Walk policy (the folder is untrusted input: a copy of what an auditor or a hospital handed over):

* **Contained.** No path outside the dataset folder (``root``, by default the parent of ``scans/``) is ever
  opened or listed. A symbolic link (to a file or a folder) is resolved (``readlink``/``lstat`` only); when
  its target leaves ``root``, or is missing, or loops, the link is refused and reported — the target's
  name is not repeated and its contents never listed.
* **Each thing once.** Real folders and files are walked first, links afterwards (so a link never takes
  the place of the real path, nor its audit id). Folders are identified by ``(st_dev, st_ino)``: a link
  to a folder already walked (a loop, such as a link to ``..``, or a duplicate) is reported once and not
  followed; the folders from ``root`` down to ``scans/`` count as walked. A file reached twice (a link,
  or a hard link, to a file also in the folder) is read once, at its first path; the other path is
  reported.
* **Regular files only.** FIFOs, sockets and devices are refused without being opened ("not a regular
  file"); so is a file bigger than ``max_file_bytes`` (:data:`MAX_FILE_BYTES`, 4 GiB), before reading.
* **Bounded.** Folders deeper than :data:`MAX_DEPTH` (16) levels under ``scans/`` are refused, and the
  walk stops after :data:`MAX_FILES` (100,000) entries, with an error naming the limit.
* **Nothing vanishes silently.** Hidden files and folders (``.*``) are not read, but listed in
  ``ignored``. Every refusal is an accounting row (``status`` ``refused``, ``error`` its message) and a
  :class:`ScanError` in ``errors``, so that the ingest lists it and its accounting reconciles.

A file that changes between the walk and its reading (replaced by another file, a FIFO, a link) is
refused when its identity no longer matches; the readers open files by path, so a change in the instant
between that check and the opening is not caught (the folder must not be writable by an adversary
during an ingest).
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cyberobs_lib.scanners._core import CONTROL_COLUMNS, ScanError, empty_result
from cyberobs_lib.scanners.reader import read_scan_file

#: Deepest folder accepted under ``scans/`` (``scans/<audit_id>`` is level 1).
MAX_DEPTH = 16
#: Most entries (files, folders, links) examined in one walk.
MAX_FILES = 100_000
#: Biggest scan file read (bytes); bigger ones are refused before reading.
MAX_FILE_BYTES = 4 << 30

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
    """All exports of a ``scans/`` folder: findings, perimeter, controls, per-file accounting, errors.

    ``ignored`` lists the hidden files and folders (``.*``) that were not read.
    """

    findings: pd.DataFrame
    hosts: pd.DataFrame
    controls: pd.DataFrame
    accounting: pd.DataFrame
    errors: list[ScanError] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    #: cells the readers could not convert (left empty): ``source_file, source_row, column, value, rule``
    cell_problems: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def ok(self) -> bool:
        """True when every file was read."""
        return not self.errors

    def summary(self) -> str:
        """One line per failed file (for the command line), or ``"all N files read"``."""
        hidden = f"{len(self.ignored)} hidden files or folders (.*) ignored" if self.ignored else ""
        if self.ok:
            return f"all {len(self.accounting)} scan files read" + (f"; {hidden}" if hidden else "")
        lines = [f"{len(self.errors)} of {len(self.accounting)} scan files failed:"]
        lines += [f"  {e}" for e in self.errors]
        if hidden:
            lines.append(hidden)
        return "\n".join(lines)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a file"


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:,} bytes"


class _Walk:
    """The walk of a ``scans/`` folder (policy in the module's docstring): files to read, refusals, ignored."""

    def __init__(self, scans_dir: Path, root: Path, max_depth: int, max_files: int, max_bytes: int) -> None:
        self.scans_dir, self.root = scans_dir, root
        self.max_depth, self.max_files, self.max_bytes = max_depth, max_files, max_bytes
        self.files: list[tuple[Path, tuple[int, int]]] = []
        self.refused: list[tuple[Path, str, str]] = []
        self.ignored: list[str] = []
        self.dirs: dict[tuple[int, int], str] = {}
        self.seen: dict[tuple[int, int], str] = {}
        self.links: deque[tuple[Path, Path, int]] = deque()
        self.count = 0
        self.stopped = False

    def refuse(self, path: Path, message: str, expected: str) -> None:
        self.refused.append((path, message, expected))

    def inside(self, real: Path) -> bool:
        return real == self.root or real.is_relative_to(self.root)

    def leaves(self, path: Path) -> None:
        self.refuse(
            path,
            f"symbolic link leaves the dataset folder {self.root}: not followed, not read",
            "links to files or folders inside the dataset folder",
        )

    def run(self) -> None:
        scans = self.scans_dir
        if not os.path.lexists(scans):
            return
        if not self.inside(Path(os.path.realpath(scans))):
            self.refuse(
                scans,
                f"scans folder lies outside the dataset folder {self.root}: not read",
                "a scans folder inside the dataset folder",
            )
            return
        try:
            real = Path(os.path.realpath(scans, strict=True))
            st = os.stat(real)
        except OSError as exc:
            self.refuse(scans, f"scans folder not readable ({exc.strerror})", "a folder")
            return
        if not stat.S_ISDIR(st.st_mode):
            return
        # the folders from the dataset folder down to scans/ count as walked: a link to them is a loop
        up = real.parent
        while self.inside(up):
            try:
                s = os.stat(up)
            except OSError:
                break
            self.dirs[(s.st_dev, s.st_ino)] = str(up)
            if up == self.root or up.parent == up:
                break
            up = up.parent
        self.dirs[(st.st_dev, st.st_ino)] = str(scans)
        self.visit(scans, real, 0)
        while self.links and not self.stopped:  # links last: real paths keep their place and audit id
            self.follow(*self.links.popleft())

    def visit(self, path: Path, real: Path, depth: int) -> None:
        """List a folder (``real``, its resolved path; ``path`` as reached) and walk its entries."""
        entries = []
        try:
            with os.scandir(real) as it:
                for e in it:
                    entries.append(e)
                    if self.count + len(entries) > self.max_files:
                        break
        except OSError as exc:
            self.refuse(path, f"folder could not be listed ({exc.strerror})", "a readable folder")
            return
        for e in sorted(entries, key=lambda e: e.name):
            self.count += 1
            if self.count > self.max_files:
                self.stopped = True
                self.refuse(
                    self.scans_dir,
                    f"more than {self.max_files:,} files and folders under scans/: the walk stopped there, "
                    "the rest is not read (limit MAX_FILES)",
                    f"at most {self.max_files:,} files and folders",
                )
                return
            child = path / e.name
            if e.name.startswith("."):
                self.ignored.append(str(child))
                continue
            try:
                if e.is_symlink():
                    self.links.append((child, Path(e.path), depth))
                    continue
                st = e.stat(follow_symlinks=False)
            except OSError as exc:
                self.refuse(child, f"could not be examined ({exc.strerror})", "a readable file or folder")
                continue
            if stat.S_ISDIR(st.st_mode):
                self.enter(child, Path(e.path), st, depth + 1, "folder")
            else:
                self.file(child, st)
            if self.stopped:
                return

    def enter(self, path: Path, real: Path, st: os.stat_result, depth: int, what: str) -> None:
        key = (st.st_dev, st.st_ino)
        if key in self.dirs:
            self.refuse(
                path,
                f"{what} to a folder already walked ({self.dirs[key]}): a loop or a duplicate, not followed",
                "each folder once",
            )
        elif depth > self.max_depth:
            self.refuse(
                path,
                f"folder nested deeper than {self.max_depth} levels under scans/: not read (limit MAX_DEPTH)",
                f"at most {self.max_depth} levels of folders",
            )
        else:
            self.dirs[key] = str(path)
            self.visit(path, real, depth)

    def file(self, path: Path, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if not stat.S_ISREG(st.st_mode):
            self.refuse(path, f"not a regular file ({_kind(st.st_mode)}): not opened", "a scan export file")
        elif key in self.seen:
            self.refuse(
                path, f"same file as {self.seen[key]} (reached twice): read once, there", "each file once"
            )
        elif st.st_size > self.max_bytes:
            self.refuse(
                path,
                f"file of {st.st_size:,} bytes, over the cap of {_size(self.max_bytes)} per scan file: "
                "not read (limit MAX_FILE_BYTES)",
                f"a scan file of at most {_size(self.max_bytes)}",
            )
        else:
            self.seen[key] = str(path)
            self.files.append((path, key))

    def follow(self, path: Path, link: Path, depth: int) -> None:
        """A symbolic link ``path`` (``link``: the link itself, in a resolved folder)."""
        if not self.inside(Path(os.path.realpath(link))):  # readlink/lstat only: the target is not opened
            self.leaves(path)
            return
        try:
            real = Path(os.path.realpath(link, strict=True))
            st = os.stat(real)
        except OSError as exc:
            why = "a loop of links" if exc.errno == errno.ELOOP else "missing"
            self.refuse(path, f"broken symbolic link (its target is {why}): not read", "an existing target")
            return
        if not self.inside(real):
            self.leaves(path)
        elif stat.S_ISDIR(st.st_mode):
            self.enter(path, real, st, depth + 1, "symbolic link")
        else:
            self.file(path, st)


def read_scans_dir(
    scans_dir: str | Path,
    *,
    root: str | Path | None = None,
    include_info: bool = False,
    max_file_bytes: int | None = None,
    max_depth: int | None = None,
    max_files: int | None = None,
) -> ScanBatch:
    """Read every scanner export under ``scans_dir`` (``scans/<audit_id>/*``), surviving bad files.

    Parameters
    ----------
    scans_dir : path-like
        The dataset's ``scans`` folder.
    root : path-like, optional
        The dataset folder, outside which nothing is opened (default: ``scans_dir``'s parent).
    include_info : bool
        Passed to :func:`read_scan_file`.
    max_file_bytes, max_depth, max_files : int, optional
        Override :data:`MAX_FILE_BYTES`, :data:`MAX_DEPTH`, :data:`MAX_FILES`.

    Returns
    -------
    ScanBatch
        ``findings`` (the columns of :func:`read_scan_file`), ``hosts`` (``audit_id, host``, one row per
        audited host), ``controls``, ``accounting`` (``source_file, audit_id, format, items_read, findings,
        skipped, skipped_reasons`` ("reason=n;..."), ``error``, ``status`` (``complete``, ``incomplete``,
        ``failed`` as the scanner says, ``refused`` when the file could not be read or was refused by the
        walk), ``status_detail``), ``errors`` (list of ScanError, in the accounting's order), ``ignored``
        (hidden files and folders), ``ok``. Rows are in the order of their paths.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "A1").mkdir()
    >>> _ = (d / "A1" / "empty.nessus").write_text("")
    >>> _ = (d / "A1" / "bad.xml").write_text("<nmaprun><host></nmaprun>")  # mismatched tag
    >>> _ = (d / "A1" / ".notes").write_text("")
    >>> (d / "A1" / "up").symlink_to("..")
    >>> b = read_scans_dir(d)
    >>> b.ok, b.accounting["status"].tolist()
    (False, ['refused', 'complete', 'refused'])
    >>> b.errors[1].message.startswith("symbolic link to a folder already walked")
    True
    >>> [pathlib.Path(p).name for p in b.ignored]
    ['.notes']
    """
    scans_dir = Path(scans_dir)
    root_dir = Path(os.path.realpath(root if root is not None else scans_dir.absolute().parent))
    max_bytes = MAX_FILE_BYTES if max_file_bytes is None else max_file_bytes
    walk = _Walk(
        scans_dir,
        root_dir,
        MAX_DEPTH if max_depth is None else max_depth,
        MAX_FILES if max_files is None else max_files,
        max_bytes,
    )
    walk.run()
    todo: list[tuple[Path, tuple[int, int] | None, ScanError | None]] = [(p, k, None) for p, k in walk.files]
    todo += [(p, None, ScanError(p, msg, expected=exp)) for p, msg, exp in walk.refused]
    todo.sort(key=lambda t: str(t[0]))
    results, rows, errors = [], [], []
    for p, key, err in todo:
        rel = p.relative_to(scans_dir)
        audit_id = rel.parts[0] if len(rel.parts) > 1 else None
        if err is None:
            err = _changed(p, key, max_bytes)
        if err is None:
            try:
                res = read_scan_file(p, audit_id=audit_id, include_info=include_info)
            except ScanError as exc:
                err = exc
            except (OSError, ValueError, KeyError, TypeError) as exc:  # a reader bug must not stop the batch
                err = ScanError(
                    p, f"could not be read ({type(exc).__name__}: {exc})", expected="a readable export"
                )
        if err is not None:
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
    problems = [r.cell_problems.assign(source_file=r.source_file) for _, r in results if len(r.cell_problems)]
    controls = [r.controls for _, r in results if len(r.controls)]
    hosts = pd.DataFrame(
        [(a, h) for a, r in results for h in r.hosts], columns=["audit_id", "host"]
    ).drop_duplicates(ignore_index=True)
    template = empty_result("empty", scans_dir, audit_id=None)
    return ScanBatch(
        findings=pd.concat(frames, ignore_index=True) if frames else template.findings,
        hosts=hosts,
        controls=pd.concat(controls, ignore_index=True)
        if controls
        else pd.DataFrame(columns=list(CONTROL_COLUMNS)),
        accounting=pd.DataFrame(rows, columns=list(ACCOUNTING_COLUMNS)),
        errors=errors,
        ignored=sorted(walk.ignored),
        cell_problems=pd.concat(problems, ignore_index=True)
        if problems
        else pd.DataFrame(columns=["source_file", "source_row", "column", "value", "rule"]),
    )


def _changed(path: Path, key: tuple[int, int] | None, max_bytes: int) -> ScanError | None:
    """A file found by the walk that is no longer the same regular file (or grew over the cap)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return ScanError(
            path, f"vanished after the walk ({exc.strerror})", expected="a folder left unchanged"
        )
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != key or st.st_size > max_bytes:
        return ScanError(
            path,
            "changed between the walk and its reading (another file, not a regular file, or over the cap): "
            "not read",
            expected="a folder left unchanged during the ingest",
        )
    return None
