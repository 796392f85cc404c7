"""Safe, tolerant, streaming XML for scanner exports.

Security policy (DESIGN.md principle 3). The document *prolog* — everything before the root element's start
tag, which is the only place where a DTD, entity declarations or external references can appear — is parsed
first by ``defusedxml`` (``forbid_entities=True, forbid_external=True``): any entity declaration (billion
laughs, quadratic blow-up) or external entity (XXE: ``file://``, ``http://``) raises
:class:`ScanSecurityError` and nothing is expanded or fetched. A ``<!DOCTYPE X SYSTEM "url">`` reference
without entity declarations (Qualys reports carry one) is allowed: it is never fetched. Once the prolog is
cleared, the body is streamed by the C-accelerated :func:`xml.etree.ElementTree.iterparse`, which never
loads external resources and rejects undeclared entities (``undefined entity``) — a body cannot declare
new ones. This two-stage design keeps defusedxml's policy while streaming at the C parser's speed
(defusedxml's own ``iterparse`` is the pure-Python parser, about half as fast).

Tolerance. A UTF-8 byte-order mark is dropped; an XML declaration that is not at the very start (a licence
comment or blank lines before it, as in REUSE-annotated files) is moved to the front and blanked in place,
so that line numbers in errors still match the file.

Strictness. Any well-formedness error (mismatched tag, invalid token, junk after the root) becomes a
:class:`ScanError` naming the file and line, with what was expected, and nothing of the file is read.

Truncation. A document that *ends* before its root element is closed (an nmap killed mid-scan, a report cut
by a full disk or an interrupted copy: expat's "no element found", "unclosed token", "partial character" or
"unclosed CDATA section", reported only when the input runs out) is not refused: :func:`iterparse_safe` and
:func:`iter_records` first deliver everything complete before the cut, then raise :class:`TruncatedXML` (a
:class:`ScanError`), which each XML reader catches to keep what it read and mark the scan ``incomplete``
with :attr:`TruncatedXML.detail`. A record open at the cut is never delivered half-read:
:func:`iter_records` yields a record only once its end tag was parsed (the open elements at the cut are
counted by a second, handler-only expat pass over the file, run only for a truncated file that still holds a
record at the cut: +60 to +75 % of the read time, no memory, on 70 MB cuts of the benchmark's files; a
complete file never pays it, and the readers' speed is unchanged); :func:`iterparse_safe` delivers ``end``
events only for completed elements, and the caller drops what it collected of a record whose end never came.
A file cut before its root start tag is complete has nothing to read: refused, as before. Any other error in
the part before the cut (a mismatched tag, a limit below) is still a refusal.

Bounded memory. Streaming keeps memory flat only while the document lets the readers release what they
have read; a hostile or broken file (200 MB of nested ``<a><a><a>...``, a record that never closes, one
text of hundreds of MB) would otherwise grow the tree to tens of GB before the parser reports anything. So
:func:`iterparse_safe` and :func:`iter_records` stop with a :class:`ScanError` naming the file, the line
(of the 16 KB block where the limit was crossed) and the limit, when:

* elements are nested deeper than :data:`MAX_DEPTH` (256) — checked after every block, by walking the
  path of last children from the root (a few steps for a real export);
* more than :data:`MAX_HELD_ELEMENTS` (200,000) elements and attributes, or :data:`MAX_HELD_CHARS` (64 Mi)
  characters of text, tails and attribute values, are held in the tree at once (open, or completed but not yet
  released by the reader: a record that never closes, a wide element whose children are never read) —
  counted every MiB of input (:func:`iterparse_safe`), or every MiB fed while no record completes
  (:func:`iter_records`: nothing to count while records complete);
* more than :data:`MAX_TEXT_BYTES` (4 MiB) of input pass without a new element starting (one text, comment,
  tag or attribute that long: expat buffers it, the tree builder keeps each of its lines as a string).

Each limit bounds the growth between two checks (at most one block, or one MiB, of input), so the peak
stays within about 100 MB of the interpreter's whatever the file (50 MB hostile files, in
``tests/test_scanners_memory.py``: nested tags +0 MB, a never-closing record +60 MB, an endless text of
3-byte lines, the worst case, +105 MB); a real export is far from every limit, and the checks cost under
1 % of the readers' throughput (``benchmarks/bench_xml_readers.py``). The limits are module
constants, read at each call (tests lower them).
"""

from __future__ import annotations

import pyexpat
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from cyberobs_lib.scanners._core import ScanError, ScanSecurityError

__all__ = [
    "sniff_root",
    "iterparse_safe",
    "open_xml",
    "detach",
    "iter_records",
    "require_root",
    "TruncatedXML",
    "until_cut",
    "MAX_DEPTH",
    "MAX_HELD_ELEMENTS",
    "MAX_HELD_CHARS",
    "MAX_TEXT_BYTES",
]

_CHUNK = 1 << 16
_BLOCK = 1 << 14  # 16 KB, as iterparse: bigger blocks keep more parsed elements alive (more GC passes)
#: The root start tag must appear within this many bytes (Nessus policies sit inside the root).
_PROLOG_LIMIT = 8 << 20
#: Deepest accepted element nesting (the root is level 1; real exports stay under 10).
MAX_DEPTH = 256
#: Most elements held in the tree at once (open, or completed and not yet released by the reader); each
#: attribute counts as one more (an attribute costs about as much memory as an element: 100-300 bytes).
MAX_HELD_ELEMENTS = 200_000
#: Most characters (texts, tails, attribute values) held in the tree at once.
MAX_HELD_CHARS = 64 << 20
#: Most bytes of input without a new element starting (one text, comment, tag or attribute value). The
#: tree builder keeps a text as one string per line until its element ends: up to 25 bytes per byte.
MAX_TEXT_BYTES = 4 << 20
#: The held tree is weighed every this many bytes of input.
_CHECK_BYTES = 1 << 20
_DECL = re.compile(rb"<\?xml\s[^>]*\?>")
_BOM = b"\xef\xbb\xbf"


#: expat errors that only the end of the input can cause: the document was cut before its root closed.
_TRUNCATION_ERRORS = frozenset(
    pyexpat.errors.codes[getattr(pyexpat.errors, name)]
    for name in (
        "XML_ERROR_NO_ELEMENTS",
        "XML_ERROR_UNCLOSED_TOKEN",
        "XML_ERROR_PARTIAL_CHAR",
        "XML_ERROR_UNCLOSED_CDATA_SECTION",
    )
)


class TruncatedXML(ScanError):
    """The document ends before its root element is closed: raised after every complete record was delivered.

    Readers catch it, keep what they read and flag the scan ``incomplete`` with :attr:`detail`
    (``"truncated XML at line <n> (the document ends before <root> is closed): records after it lost"``).
    Uncaught, it is a :class:`ScanError` like the others (line = the end of the file).

    Examples
    --------
    >>> err = TruncatedXML("a.xml", line=29, root="nmaprun")
    >>> isinstance(err, ScanError), err.line, err.expected
    (True, 29, 'a well-formed <nmaprun> document')
    >>> err.detail
    'truncated XML at line 29 (the document ends before <nmaprun> is closed): records after it lost'
    """

    def __init__(self, path: str | Path, *, line: int | None, root: str) -> None:
        super().__init__(
            path,
            "truncated XML (the document ends before its root element is closed)",
            line=line,
            expected=f"a well-formed <{root}> document",
        )
        self.root = root
        where = f" at line {line}" if line is not None else ""
        #: the ``status_detail`` of the scan read up to the cut
        self.detail = (
            f"truncated XML{where} (the document ends before <{root}> is closed): records after it lost"
        )


def _syntax_error(path: Path, err: ET.ParseError, root: str) -> ScanError:
    """The refusal of a well-formedness error (not a truncation)."""
    msg = getattr(err, "msg", None) or str(err)
    return ScanError(
        path,
        f"malformed XML: {msg.split(':')[0]}",
        line=_line_of(err),
        expected=f"a well-formed <{_local(root)}> document",
    )


def _is_truncation(err: ET.ParseError) -> bool:
    """Whether a parse error raised by ``close()`` means the input ended too early (not a syntax error)."""
    return getattr(err, "code", None) in _TRUNCATION_ERRORS


class _RootReached(Exception):
    def __init__(self, tag: str) -> None:
        self.tag = tag


class _StopAtRoot:
    """Target for the prolog check: stops at the first start tag."""

    def start(self, tag, attrib):
        raise _RootReached(tag)

    def end(self, tag):  # pragma: no cover - never reached before the root
        return None

    def data(self, data):
        return None

    def close(self):
        return None


class _PrefixedStream:
    """A binary file whose first bytes are replaced by ``head`` (the rewritten beginning)."""

    def __init__(self, head: bytes, rest) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                out, self._head = self._head + self._rest.read(), b""
                return out
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._rest.read(n)

    def close(self) -> None:
        self._rest.close()


def _fix_head(head: bytes) -> bytes:
    """Drop a BOM; move an XML declaration that is not at offset 0 to the front, keeping line numbers."""
    if head.startswith(_BOM):
        head = head[len(_BOM) :]
    m = _DECL.search(head, 0, 1 << 16)
    if m and m.start() > 0:
        before = head[: m.start()]
        if before.strip() == b"" or before.lstrip().startswith(b"<!--"):
            decl = m.group(0)
            moved = decl.replace(b"\n", b" ").replace(b"\r", b" ")
            blank = bytes(c if c in b"\r\n" else 0x20 for c in decl)
            head = moved + before + blank + head[m.end() :]
    return head


def _line_of(err: Exception) -> int | None:
    pos = getattr(err, "position", None)
    return pos[0] if pos else None


def _current_line(parser) -> int | None:
    expat = getattr(parser, "parser", None) or getattr(parser, "_parser", None)
    return getattr(expat, "CurrentLineNumber", None)


def _check_prolog(path: Path, head: bytes, fh) -> tuple[bytes, str, int | None]:
    """Run the defusedxml prolog check; returns the (possibly extended) head and the root tag."""
    parser = DefusedXMLParser(
        target=_StopAtRoot(), forbid_dtd=False, forbid_entities=True, forbid_external=True
    )
    fed = 0
    buf = head
    try:
        while True:
            parser.feed(buf[fed:])
            fed = len(buf)
            if fed > _PROLOG_LIMIT:
                raise ScanError(path, "no root element in the first 8 MB", expected="an XML root element")
            more = fh.read(_CHUNK)
            if not more:
                parser.close()
                raise ScanError(path, "no root element", expected="an XML document with a root element")
            buf += more
    except _RootReached as stop:
        return buf, stop.tag, _current_line(parser)
    except DefusedXmlException as err:
        name, system_id = getattr(err, "name", None), getattr(err, "sysid", None)
        what = f"entity declaration '{name}'" if name else type(err).__name__
        if system_id:
            what += f" referencing {system_id!r}"
        raise ScanSecurityError(
            path,
            f"security: {what} refused (XML entities are never expanded, external resources never fetched)",
            line=_current_line(parser),
            element="!ENTITY",
            expected="a scanner export without DTD entity declarations",
        ) from None
    except ET.ParseError as err:
        raise ScanError(
            path,
            f"XML syntax error before the root element: {err.msg}",
            line=_line_of(err),
            expected="a well-formed XML prolog",
        ) from None


def open_xml(path: str | Path):
    """Open an XML export for streaming after the security check; ``(stream, root_tag, root_line)``.

    Raises
    ------
    ScanSecurityError
        Entity declarations or external entities in the prolog.
    ScanError
        Empty or non-XML content, or a syntax error before the root element.
    """
    path = Path(path)
    fh = open(path, "rb")  # noqa: SIM115 - closed by the caller through the returned stream
    try:
        head = _fix_head(fh.read(_CHUNK))
        if not head.strip():
            raise ScanError(path, "empty file", expected="an XML document")
        head, root, line = _check_prolog(path, head, fh)
    except BaseException:
        fh.close()
        raise
    return _PrefixedStream(head, fh), root, line


def sniff_root(path: str | Path) -> str:
    """Root element tag of an XML file (after the security check on its prolog).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.xml"
    >>> _ = p.write_bytes(b"<!-- licence -->\\n<?xml version='1.0'?>\\n<nmaprun/>")
    >>> sniff_root(p)
    'nmaprun'
    """
    stream, root, _ = open_xml(path)
    stream.close()
    return _local(root)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag[:1] == "{" else tag


def _end_events_only(parser: ET.XMLPullParser) -> bool:
    """Stop reporting ``start`` events once the root has been reported (CPython's C parser).

    Uses the private ``XMLParser._setevents`` that ``XMLPullParser`` itself calls; when it is missing the
    parser keeps reporting ``start`` events, which the readers ignore: only speed differs.
    """
    try:
        parser._parser._setevents(parser._events_queue, ("end",))
    except AttributeError:
        pass
    return True


def detach(parent: ET.Element | None, elem: ET.Element) -> None:
    """Clear ``elem`` and remove it from ``parent`` (a cleared element left in place is a shell that grows
    memory with file size). Elements are detached in document order, so ``elem`` is among the first
    children of ``parent`` and the removal is cheap."""
    elem.clear()
    if parent is not None:
        try:
            parent.remove(elem)
        except ValueError:
            pass


def _line_at(path: Path, offset: int) -> int | None:
    """Line number at byte ``offset`` of ``path`` (counted only when an error is raised)."""
    try:
        with open(path, "rb") as fh:
            lines, left = 1, offset
            while left > 0 and (data := fh.read(min(left, 1 << 20))):
                lines += data.count(b"\n")
                left -= len(data)
            return lines
    except OSError:
        return None


def _limit_error(path: Path, offset: int, what: str, expected: str) -> ScanError:
    return ScanError(path, what, line=_line_at(path, offset), expected=expected)


def _too_deep(path: Path, offset: int) -> ScanError:
    return _limit_error(
        path,
        offset,
        f"XML nesting deeper than {MAX_DEPTH} elements (limit MAX_DEPTH)",
        f"a scanner export nested at most {MAX_DEPTH} elements deep",
    )


def _no_element(path: Path, offset: int) -> ScanError:
    return _limit_error(
        path,
        offset,
        f"more than {MAX_TEXT_BYTES:,} bytes of XML without a new element "
        "(one text, comment, tag or attribute that long; limit MAX_TEXT_BYTES)",
        "a scanner export",
    )


def _check_held(path: Path, offset: int, root: ET.Element) -> None:
    """Weigh the tree still held under ``root``; :class:`ScanError` beyond the held limits."""
    max_elements, max_chars = MAX_HELD_ELEMENTS, MAX_HELD_CHARS
    n = chars = 0
    for el in root.iter():
        n += 1
        t = el.text
        if t:
            chars += len(t)
        t = el.tail
        if t:
            chars += len(t)
        for _k, v in el.items():
            n += 1
            chars += len(v)
        if n > max_elements:
            raise _limit_error(
                path,
                offset,
                f"more than {max_elements:,} XML elements and attributes held open or unread at once "
                "(a record that never closes? limit MAX_HELD_ELEMENTS)",
                "records that close",
            )
        if chars > max_chars:
            raise _limit_error(
                path,
                offset,
                f"more than {max_chars:,} characters of XML text held open or unread at once "
                "(a record that never closes? limit MAX_HELD_CHARS)",
                "records that close",
            )


def iterparse_safe(path: str | Path, *, roots: tuple[str, ...]) -> Iterator[list[tuple[str, ET.Element]]]:
    """Stream a scanner export as batches of ``(event, element)`` pairs, safely and with clear errors.

    Parameters
    ----------
    path : path-like
        The XML file.
    roots : tuple of str
        Accepted root element tags; another root raises :class:`ScanError` naming the expected ones.

    Returns
    -------
    iterator of lists of (str, xml.etree.ElementTree.Element)
        One list per block of input (``for batch in ...: for event, elem in batch``; none before the
        root's start). The first event is ``("start", root)``; after the first block only ``end`` events are reported (a few more
        ``start`` events may come in the first block: callers ignore them). Events are delivered a
        block at a time, so when an ``end`` event is handled the tree may already hold later elements:
        find parents by path from the root, never as "the last child". The caller :func:`detach`-es
        records as it consumes them.

    Notes
    -----
    The body is fed block by block to :class:`xml.etree.ElementTree.XMLPullParser` (the C parser);
    iterating each block's events as a list saves the generator levels that
    :func:`~xml.etree.ElementTree.iterparse` spends per event. ``ET.ParseError`` ("mismatched tag", "not
    well-formed (invalid token)") is re-raised as :class:`ScanError` with the line number reported by expat.
    A document that ends before its root is closed raises :class:`TruncatedXML` once the events of every
    element completed before the cut were delivered: an element whose ``end`` event never came was cut
    (the caller drops what it gathered of it). Memory is bounded (module docstring): nesting deeper than
    :data:`MAX_DEPTH`, more than :data:`MAX_HELD_ELEMENTS` elements or :data:`MAX_HELD_CHARS` characters
    left in the tree (open, or not released by the caller), or :data:`MAX_TEXT_BYTES` of input without a
    new element raise :class:`ScanError` naming the limit.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.xml"
    >>> _ = p.write_text("<nmaprun><host/></nmaprun>")
    >>> [(ev, el.tag) for batch in iterparse_safe(p, roots=("nmaprun",)) for ev, el in batch]
    [('start', 'nmaprun'), ('start', 'host'), ('end', 'host'), ('end', 'nmaprun')]
    """
    path = Path(path)
    stream, root, root_line = open_xml(path)
    try:
        if _local(root) not in roots:
            raise ScanError(
                path,
                f"wrong root element <{_local(root)}>",
                line=root_line,
                element=_local(root),
                expected=" or ".join(f"<{r}>" for r in roots),
            )
        parser = ET.XMLPullParser(events=("start", "end"))
        switched = False
        tree = deepest = None
        fed = quiet = 0
        next_check = _CHECK_BYTES
        max_depth, max_quiet = MAX_DEPTH, MAX_TEXT_BYTES
        closing = False
        cut = None
        try:
            while data := stream.read(_BLOCK):
                parser.feed(data)
                batch = list(parser.read_events())  # a parse error surfaces here, inside the try
                if not switched:
                    switched = _end_events_only(parser)
                fed += len(data)
                if tree is None:
                    if not batch:  # a prolog longer than a block: the root's start comes later
                        continue
                    tree = batch[0][1]
                # bounds (see the module's docstring): the path of last children from the root holds the
                # open elements; its end is a new element whenever one started in this block
                node, depth = tree, 1
                while len(node):
                    node = node[-1]
                    depth += 1
                    if depth > max_depth:
                        raise _too_deep(path, fed)
                if node is deepest:
                    quiet += len(data)
                    if quiet > max_quiet:
                        raise _no_element(path, fed)
                else:
                    deepest, quiet = node, 0
                if fed >= next_check:
                    _check_held(path, fed, tree)
                    next_check = fed + _CHECK_BYTES
                yield batch
            closing = True
            parser.close()
            yield list(parser.read_events())
        except ET.ParseError as err:
            if not (closing and tree is not None and _is_truncation(err)):
                raise _syntax_error(path, err, root) from None
            cut = err
        if cut is not None:  # the input ended before the root closed: what completed before the cut, then
            yield list(parser.read_events())  # the error (events of elements completed by close() come first)
            raise TruncatedXML(path, line=_line_of(cut), root=_local(root))
    finally:
        stream.close()


def _records_in(el: ET.Element, tags: frozenset[str]) -> Iterator[ET.Element]:
    """The records in a completed element (itself, or nested, not inside another record), in order."""
    if el.tag in tags:
        yield el
    else:
        for child in el:
            yield from _records_in(child, tags)


def _open_depth(path: Path) -> int | None:
    """How many elements are open where the file ends (the root counts 1), by a handler-only expat pass
    over the same bytes as the readers' (None if that pass fails: then every element is taken as open)."""
    depth = 0

    def start(_name, _attrs):
        nonlocal depth
        depth += 1

    def end(_name):
        nonlocal depth
        depth -= 1

    expat = pyexpat.ParserCreate()
    expat.StartElementHandler = start
    expat.EndElementHandler = end
    try:
        stream, _root, _line = open_xml(path)
    except ScanError:
        return None
    try:
        while data := stream.read(_CHUNK):
            expat.Parse(data, False)  # never final: the end of the input is the cut, not an error here
    except pyexpat.ExpatError:
        return None
    finally:
        stream.close()
    return depth


def _complete_at_cut(path: Path, root: ET.Element, tags: frozenset[str]) -> Iterator[ET.Element]:
    """The record still in the tree when the input ended, if it was complete (its end tag parsed).

    After the last block, the tree under ``root`` is the path of last children (every completed sibling
    was released), down to and including the first record on it. The open elements at the cut are the
    first *d* elements of that path (*d* from :func:`_open_depth`); the record is complete iff it lies
    below them. A record at the end of a document cut right after it (nmap's ``<runstats>`` without
    ``</nmaprun>``) is thus read; one cut in its middle is not.
    """
    chain = [root]
    node = root
    while len(node) and node.tag not in tags:
        if len(node) > 1:  # completed by ``close()`` itself (expat may defer the last tokens to it)
            done = node[:-1]
            del node[:-1]
            for child in done:
                yield from _records_in(child, tags)
        node = node[-1]
        chain.append(node)
    if node is root or node.tag not in tags:  # no record at the cut (or the root itself is one: open)
        return
    depth = _open_depth(path)
    if depth is not None and depth < len(chain):  # the record (last of the chain) is not among the open
        chain[-2].remove(node)
        yield node


def iter_records(path: Path, stream, root_tag: str, tags: frozenset[str]) -> Iterator[ET.Element]:
    """Each complete record (element tagged ``tags``) of an XML stream from :func:`open_xml`, in order.

    The C parser reports no events after the root's start: after each block, the completed children of
    the open elements on the path from the root (all but the last child of each; the path stops at an
    open record) are removed from the tree and their records yielded whole. Records nested in a record
    are not yielded separately. Errors, and the bounds on depth and held elements, as
    :func:`~cyberobs_lib.scanners.xmlsafe.iterparse_safe`'s; the held tree (the open record) is weighed
    only after each MiB of input in which no record completed.

    A document that ends before its root is closed: the records complete at the cut are yielded (a record
    still open there is not), then :class:`TruncatedXML` is raised. ``path`` must be the file that
    ``stream`` reads (it is read again, by :func:`_open_depth`, to tell a complete record from one cut).
    """
    parser = ET.XMLPullParser(events=("start",))
    root = deepest = None
    fed = quiet = unreleased = 0
    max_depth, max_quiet = MAX_DEPTH, MAX_TEXT_BYTES
    closing = False
    try:
        while data := stream.read(_BLOCK):
            parser.feed(data)
            for _ev, el in parser.read_events():  # also raises the block's parse error, if any
                if root is None:
                    root = el
                    try:  # no more events (private API, as in xmlsafe; without it: drained here)
                        parser._parser._setevents(parser._events_queue, ())
                    except AttributeError:
                        pass
            n = len(data)
            fed += n
            if root is None:
                continue
            node, depth, released = root, 1, False
            while len(node):
                if len(node) > 1:
                    done = node[:-1]
                    del node[:-1]
                    released = True
                    for child in done:
                        yield from _records_in(child, tags)
                node = node[-1]
                depth += 1
                if node.tag in tags:  # an open record: read when complete
                    break
            while len(node):  # inside the open record: its depth and last element only
                node = node[-1]
                depth += 1
                if depth > max_depth:
                    break
            # bounds (see the module's docstring)
            if depth > max_depth:
                raise _too_deep(path, fed)
            if node is deepest:
                quiet += n
                if quiet > max_quiet:
                    raise _no_element(path, fed)
            else:
                deepest, quiet = node, 0
            if released:
                unreleased = 0
            else:
                unreleased += n
                if unreleased >= _CHECK_BYTES:
                    _check_held(path, fed, root)
                    unreleased = 0
        closing = True
        parser.close()
        for _ev in parser.read_events():
            pass
    except ET.ParseError as err:
        if not (closing and root is not None and _is_truncation(err)):
            raise _syntax_error(path, err, root_tag) from None
        yield from _complete_at_cut(path, root, tags)
        raise TruncatedXML(path, line=_line_of(err), root=_local(root_tag)) from None
    if root is not None:
        done = root[:]
        del root[:]
        for child in done:
            yield from _records_in(child, tags)


def until_cut(items: Iterator, cuts: list) -> Iterator:
    """The items of ``items`` (records, event batches); a :class:`TruncatedXML` ending them is appended
    to ``cuts`` instead of raised, so that a reader's loop ends normally and keeps what it read.

    Examples
    --------
    >>> def cut_after_two():
    ...     yield from (1, 2)
    ...     raise TruncatedXML("a.xml", line=3, root="r")
    >>> cuts = []
    >>> list(until_cut(cut_after_two(), cuts)), cuts[0].detail
    ([1, 2], 'truncated XML at line 3 (the document ends before <r> is closed): records after it lost')
    """
    try:
        yield from items
    except TruncatedXML as cut:
        cuts.append(cut)


def require_root(path: Path, root_tag: str, root_line: int | None, roots: tuple[str, ...]) -> None:
    """Raise :class:`ScanError` naming the file, the line and the expected roots when ``root_tag`` is not one."""
    if _local(root_tag) not in roots:
        raise ScanError(
            path,
            f"wrong root element <{_local(root_tag)}>",
            line=root_line,
            element=_local(root_tag),
            expected=" or ".join(f"<{r}>" for r in roots),
        )
