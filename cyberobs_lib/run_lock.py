"""The folders of one run, its lock, and the swap that makes a report appear whole or not at all.

For ``--out reports/annual_2025`` (any folder ``<parent>/<name>``):

``<parent>/.<name>.lock``
    Lock file (``fcntl.flock``, exclusive, non-blocking): a second run into the same output folder is
    refused at once (:class:`~cyberobs_lib.run_plan.RunLockedError`, exit status 4) while the first goes on.
    The file holds the pid and start time of the run holding it; it is left in place (removing a lock file
    that another process may be opening would let two runs hold "the" lock).
``<parent>/.<name>.staging-<pid>/``
    Where the run writes, starting empty (no file of an earlier run can survive into a new report).
``<parent>/<name>/``
    The report, replaced whole at the end of a successful run by :func:`swap_in`: on Linux one
    ``renameat2(RENAME_EXCHANGE)`` call swaps the staging folder and the report atomically, then the old
    report (now under the staging name) is deleted. Where the kernel or file system cannot exchange, two
    renames are used (report → ``.<name>.old-<pid>``, staging → report) and the old one deleted.
``<parent>/<name>.failed/``
    A failed run's staging folder, moved there with ``FAILED.md`` (which notebook failed, in which cell,
    where the executed notebooks are); the report folder is not touched. A later successful run deletes it.
``<work root>/<name>-<hash>/``
    The run's confidential working folder (canonical tables, validation and disclosure reports):
    ``$CYBEROBS_WORK_DIR`` or ``reports/.work``, keyed by the output folder's absolute path, so two runs
    with different ``--out`` never share it and the same ``--out`` is serialised by the lock.

If a run is killed (``kill -9``, power cut) the report folder holds the previous complete report or the new
complete one, never a mix: everything before the swap happens in the staging folder. What is left behind
is cleaned by the next run into the same folder, under the lock (:func:`recover`): staging folders are
deleted; with the two-rename fallback, a run killed between the two renames leaves no report folder and
``.<name>.old-<pid>`` — the previous complete report, which is renamed back.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from cyberobs_lib.config import work_root
from cyberobs_lib.run_plan import RunError, RunLockedError

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class RunFolders:
    """The paths a run into ``out`` uses (nothing is created here)."""

    out: Path

    @property
    def parent(self) -> Path:
        return self.out.parent

    @property
    def name(self) -> str:
        return self.out.name

    @property
    def lock_file(self) -> Path:
        return self.parent / f".{self.name}.lock"

    @property
    def failed(self) -> Path:
        return self.parent / f"{self.name}.failed"

    @property
    def work(self) -> Path:
        digest = hashlib.sha256(str(self.out).encode("utf-8")).hexdigest()[:12]
        return work_root() / f"{self.name}-{digest}"

    def staging(self, pid: int | None = None) -> Path:
        return self.parent / f".{self.name}.staging-{pid or os.getpid()}"

    def old(self, pid: int | None = None) -> Path:
        return self.parent / f".{self.name}.old-{pid or os.getpid()}"

    def leftovers(self) -> list[Path]:
        """Staging and set-aside folders of earlier runs into the same output folder."""
        prefixes = (f".{self.name}.staging-", f".{self.name}.old-")
        if not self.parent.is_dir():
            return []
        return sorted(p for p in self.parent.iterdir() if p.name.startswith(prefixes))


class OutputLock:
    """Exclusive lock of an output folder (``fcntl.flock`` on ``.<name>.lock`` beside it).

    Use as a context manager; :class:`RunLockedError` when another process holds it.
    """

    def __init__(self, folders: RunFolders):
        self.folders = folders
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        import fcntl

        path = self.folders.lock_file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise RunLockedError(
                f"another run is writing {self.folders.out} ({holder or 'holder unknown'}); nothing was "
                f"done. Wait for it to finish, or give this run another --out (lock: {path})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def remove_tree(path: Path) -> None:
    """Delete a folder (or file, or link) if it exists."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def recover(folders: RunFolders) -> list[str]:
    """Clean what an interrupted run into ``folders.out`` left behind (call it holding the lock).

    Returns one sentence per action. A missing report folder beside a set-aside one (the fallback swap
    killed between its two renames) gets the previous complete report back; staging and other set-aside
    folders are deleted.
    """
    actions = []
    olds = [p for p in folders.leftovers() if p.name.startswith(f".{folders.name}.old-")]
    if not folders.out.exists() and olds:
        newest = max(olds, key=lambda p: p.stat().st_mtime)
        os.rename(newest, folders.out)
        actions.append(f"restored the previous report from {newest.name} (a run was interrupted mid-swap)")
    for leftover in folders.leftovers():
        remove_tree(leftover)
        actions.append(f"removed {leftover.name} left by an interrupted run")
    return actions


#: ``renameat2`` flag exchanging two paths atomically (Linux >= 3.15, glibc >= 2.28).
RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two existing paths with ``renameat2(RENAME_EXCHANGE)``.

    Returns False when the system cannot (no such call, or a file system without support); raises
    OSError for any other failure.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.renameat2
    except (OSError, AttributeError):
        return False
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if call(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, f"cannot swap {a} and {b}: {os.strerror(code)}")


def swap_in(staging: Path, folders: RunFolders) -> str:
    """Put the complete ``staging`` folder in place of ``folders.out``; return how (for the log).

    The report folder is never missing or mixed when the exchange call works; with the fallback it is
    missing between two renames, which :func:`recover` repairs.
    """
    out = folders.out
    if not out.exists():
        os.rename(staging, out)
        return "renamed into place"
    if exchange(staging, out):
        remove_tree(staging)  # the previous report, now under the staging name
        return "exchanged atomically with the previous report"
    old = folders.old()
    os.rename(out, old)
    os.rename(staging, out)
    remove_tree(old)
    return "replaced the previous report (two renames)"


def set_aside_failed(staging: Path, folders: RunFolders) -> Path:
    """Move a failed run's staging folder to ``<name>.failed`` (replacing an earlier one)."""
    target = folders.failed
    if target.exists() and exchange(staging, target):
        remove_tree(staging)
    else:
        remove_tree(target)
        os.rename(staging, target)
    return target


def report_manifest(folder: Path) -> dict | None:
    """The manifest of a report folder written by ``cyberobs run``, or None when it is not one."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and "run_name" in manifest else None


def _kind(manifest: dict) -> str:
    return "published" if manifest.get("published", True) else "confidential"


def check_output_location(
    folders: RunFolders, *, published: bool, protected: list[Path], inputs: list[Path]
) -> None:
    """Refuse an output folder that a run could not safely replace whole.

    Refused: an existing folder that is not a report of ``cyberobs run`` (the swap would delete it); a
    folder inside another report folder or holding one (a confidential report inside a published one,
    or the reverse, would be published, or deleted, with it); a folder that is or holds the working root
    or one of ``protected`` (the project, its notebooks) or ``inputs`` (dataset, canonical folder), or sits
    inside the working root or an input folder.
    """
    out = folders.out
    kind = "published" if published else "confidential"
    for path in [work_root(), *protected, *inputs]:
        path = path.resolve()
        if path.is_relative_to(out):
            raise RunError(
                f"--out {out}: a report folder is replaced whole at the end of a run, and this one is or "
                f"holds {path}; choose a folder of its own (default reports/<run_name>)"
            )
    for path in [work_root(), *inputs]:
        if out.is_relative_to(path.resolve()):
            raise RunError(
                f"--out {out}: inside {path}, which is an input or working folder of the runs; choose a "
                "folder of its own (default reports/<run_name>)"
            )
    for ancestor in out.parents:
        manifest = report_manifest(ancestor)
        if manifest is not None:
            raise RunError(
                f"--out {out}: this {kind} report would sit inside the {_kind(manifest)} report folder "
                f"{ancestor}: it would be published or deleted with it; choose a folder outside any report "
                "folder"
            )
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if report_manifest(out) is None:
            raise RunError(
                f"--out {out}: the folder exists and is not a report written by `cyberobs run` (no "
                "manifest.json); a run replaces its output folder whole and would delete its files. Give an "
                "empty or new folder"
            )
        for manifest_path in out.rglob(MANIFEST):
            inner = manifest_path.parent
            if inner != out and report_manifest(inner) is not None:
                raise RunError(
                    f"--out {out}: it holds another report folder, {inner} "
                    f"({_kind(report_manifest(inner))}), which the run would delete; move it out first"
                )
