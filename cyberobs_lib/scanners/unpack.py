"""Compressed and transcoded scanner exports: gzip, single-member zip, UTF-16 text, unpacked to a temp file.

Auditors keep exports as they came: ``scan.nessus.gz``, a zip sent by a provider, a CSV saved by Excel as
"Unicode text" or redirected by PowerShell (UTF-16 with a byte-order mark). :func:`unpacked` recognizes
them by their first bytes (never by the file name) and streams their content to a temporary UTF-8 /
plain file that the readers then read as any other export; the temporary file is always removed.

Policy
------
* gzip (magic ``1f 8b``, several members concatenated allowed) and zip (magic ``PK\\x03\\x04``) with
  exactly one file member are decompressed; a zip with several members is refused (extract them into
  the audit folder: each file is one export), an encrypted member is refused.
* UTF-16 text (BOM ``FF FE`` little-endian / ``FE FF`` big-endian) is transcoded to UTF-8; an XML
  declaration that names UTF-16 is rewritten to name UTF-8 (same length of line: line numbers kept).
* Bounds: the unpacked content may not exceed :data:`MAX_UNPACKED_BYTES`, nor, beyond
  :data:`RATIO_FREE_BYTES`, :data:`MAX_RATIO` times the size of the packed file (a decompression bomb
  stops at the first block over the limit, with a :class:`ScanError` naming the file and the limit).
  Nothing is ever decompressed whole into memory (blocks of :data:`BLOCK` bytes).
* Layers nest (a gzip of a UTF-16 CSV, a zip of a ``.nessus.gz``) up to :data:`MAX_LAYERS`.
* Errors name the original file (truncated gzip, corrupt zip, CRC mismatch, odd UTF-16 length).
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import os
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from cyberobs_lib.scanners._core import ScanError

__all__ = ["unpacked", "packing", "MAX_UNPACKED_BYTES", "MAX_RATIO"]

#: Largest unpacked content accepted (bytes).
MAX_UNPACKED_BYTES = 2 << 30
#: Largest accepted ratio unpacked / packed size, checked once the output passes RATIO_FREE_BYTES.
MAX_RATIO = 200
#: Output size below which the ratio is not checked (a tiny, very repetitive export is no bomb).
RATIO_FREE_BYTES = 1 << 20
#: Nested layers unpacked at most (zip -> gzip -> UTF-16).
MAX_LAYERS = 3
BLOCK = 1 << 20

_GZIP = b"\x1f\x8b"
_ZIP = b"PK\x03\x04"
_ZIP_EMPTY = b"PK\x05\x06"
_UTF16 = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}
_DECL_UTF16 = re.compile(rb"""(<\?xml[^>]*?encoding\s*=\s*["'])(utf-16(?:le|be|-le|-be)?)(["'])""", re.I)


def packing(head: bytes) -> str | None:
    """``"gzip"``, ``"zip"``, ``"utf-16-le"``, ``"utf-16-be"`` or None (plain), from a file's first bytes.

    Examples
    --------
    >>> packing(b"\\x1f\\x8b\\x08\\x00"), packing(b"PK\\x03\\x04"), packing(b"\\xff\\xfe<\\x00"), packing(b"<?xml")
    ('gzip', 'zip', 'utf-16-le', None)
    """
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith((_ZIP, _ZIP_EMPTY)):
        return "zip"
    if head.startswith(b"\xff\xfe\x00\x00"):  # UTF-32 LE BOM: not UTF-16
        return None
    return _UTF16.get(head[:2])


class _Budget:
    """Counts unpacked bytes against the size and ratio limits of one original file."""

    def __init__(self, original: Path, packed_size: int, what: str) -> None:
        self.original = original
        self.packed_size = max(packed_size, 1)
        self.what = what
        self.total = 0

    def add(self, n: int) -> None:
        self.total += n
        if self.total > MAX_UNPACKED_BYTES:
            raise ScanError(
                self.original,
                f"{self.what} content larger than {MAX_UNPACKED_BYTES} bytes (limit MAX_UNPACKED_BYTES); "
                "not unpacked",
                expected="an export that unpacks within the limit (or unpack it yourself)",
            )
        if self.total > RATIO_FREE_BYTES and self.total > MAX_RATIO * self.packed_size:
            raise ScanError(
                self.original,
                f"{self.what} content more than {MAX_RATIO} times its packed size "
                f"({self.packed_size} bytes; limit MAX_RATIO={MAX_RATIO}:1): a decompression bomb? not unpacked",
                expected="an ordinary compressed export",
            )


def _copy(src, dst, budget: _Budget) -> None:
    while block := src.read(BLOCK):
        budget.add(len(block))
        dst.write(block)


def _gunzip(path: Path, original: Path, dst) -> None:
    budget = _Budget(original, path.stat().st_size, "gzip")
    try:
        with gzip.open(path, "rb") as src:
            _copy(src, dst, budget)
    except (gzip.BadGzipFile, zlib.error, EOFError) as err:
        what = (
            "truncated gzip (the compressed stream ends early)" if isinstance(err, EOFError) else "bad gzip"
        )
        raise ScanError(original, f"{what}: {err}", expected="a complete gzip file") from None


def _unzip(path: Path, original: Path, dst) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            if len(members) != 1:
                names = ", ".join(i.filename for i in members[:5]) + (", ..." if len(members) > 5 else "")
                raise ScanError(
                    original,
                    f"zip archive with {len(members)} files ({names})",
                    expected="one export per file: extract the archive into the audit folder",
                )
            info = members[0]
            if info.flag_bits & 0x1:
                raise ScanError(
                    original,
                    f"encrypted zip member {info.filename!r} (password-protected)",
                    expected="an unencrypted export: extract it into the audit folder",
                )
            budget = _Budget(original, path.stat().st_size, f"zip member {info.filename!r}")
            with zf.open(info) as src:
                _copy(src, dst, budget)
    except zipfile.BadZipFile as err:
        raise ScanError(original, f"bad zip archive: {err}", expected="a readable zip file") from None
    except (NotImplementedError, zlib.error, EOFError) as err:
        raise ScanError(
            original, f"zip member not readable: {err}", expected="a deflate zip member"
        ) from None


def _transcode(path: Path, original: Path, dst, encoding: str) -> None:
    budget = _Budget(original, path.stat().st_size, "UTF-16")
    budget.packed_size = max(budget.packed_size, RATIO_FREE_BYTES)  # transcoding never inflates much
    dec = codecs.getincrementaldecoder(encoding)()
    first = True
    try:
        with open(path, "rb") as src:
            src.read(2)  # the BOM
            while block := src.read(BLOCK):
                out = dec.decode(block).encode("utf-8")
                if first:
                    out = _DECL_UTF16.sub(lambda m: m.group(1) + b"UTF-8" + m.group(3), out, count=1)
                    first = False
                budget.add(len(out))
                dst.write(out)
            dst.write(dec.decode(b"", final=True).encode("utf-8"))
    except UnicodeDecodeError as err:
        raise ScanError(
            original, f"invalid {encoding.upper()} text: {err.reason}", expected="UTF-16 text after its BOM"
        ) from None


_UNPACKERS = {"gzip": _gunzip, "zip": _unzip}


@contextlib.contextmanager
def unpacked(path: str | Path) -> Iterator[tuple[Path, list[str]]]:
    """The readable form of an export: ``(path_to_read, layers)``; a temp file removed on exit.

    ``layers`` lists what was undone (``["gzip"]``, ``["zip", "utf-16-le"]``; empty for a plain file, then
    ``path_to_read`` is ``path`` itself). Errors (:class:`ScanError`) name ``path``.

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.nessus.gz"
    >>> _ = p.write_bytes(gzip.compress(b"<NessusClientData_v2/>"))
    >>> with unpacked(p) as (inner, layers):
    ...     inner.read_bytes(), layers, inner.exists()
    (b'<NessusClientData_v2/>', ['gzip'], True)
    >>> inner.exists()
    False
    """
    original = Path(path)
    current = original
    layers: list[str] = []
    temps: list[Path] = []
    try:
        while len(layers) <= MAX_LAYERS:
            with open(current, "rb") as fh:
                kind = packing(fh.read(4))
            if kind is None:
                break
            if len(layers) == MAX_LAYERS:
                raise ScanError(
                    original,
                    f"more than {MAX_LAYERS} nested layers of packing ({' > '.join(layers)} > {kind})",
                    expected="an export packed at most twice",
                )
            fd, name = tempfile.mkstemp(prefix="cyberobs-unpacked-", suffix=".tmp")
            temps.append(Path(name))
            with os.fdopen(fd, "wb") as dst:
                if kind in _UNPACKERS:
                    _UNPACKERS[kind](current, original, dst)
                else:
                    _transcode(current, original, dst, kind)
            layers.append(kind)
            current = temps[-1]
        yield current, layers
    finally:
        for t in temps:
            with contextlib.suppress(OSError):
                t.unlink()
