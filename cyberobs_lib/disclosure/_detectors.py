"""Detectors of identifying values in a piece of text: FINESS, IP addresses, hostnames, names, ids.

Generic patterns (IPv4, IPv6, FINESS with a valid department prefix and check key) find values that
were never listed; look-ups find the identifiers of the input dataset however they are written:

* FINESS: ``014053177``, ``01 405 317 7``, ``0140.53177``, ``01-40-53-17-7``, ``14053177`` (leading
  zero lost), ``0014053177`` (zero-padded), ``1.4053177E+07`` (a spreadsheet's number), inside a token
  (``AUD014053177``, ``014053177-01``);
* IP addresses: dotted (also zero-padded ``192.000.002.044``, octal or hex octets), a 32-bit integer
  (``3221226028``), hexadecimal (``0xC000022C``), dashed (``192-0-2-44``), reversed
  (``44.2.0.192.in-addr.arpa``), IPv4-mapped or NAT64 IPv6 (``::ffff:c000:22c``), IPv6 in any notation;
* hostnames in any case, sub-domains of a listed host, defanged (``vpn[.]chu-x[.]fr``);
* establishment names: whole words, case- and accent-insensitive, hyphens as spaces;
* audit and incident ids of the dataset, with any separators or none, inside longer tokens, and their
  stem (``A000119`` of ``A000119-01``: the establishment part that links releases).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from cyberobs_lib.finess_key import finess_key_is_valid
from cyberobs_lib.text import fold_case_accents as fold_text

#: Department prefixes of FINESS numbers (data-contract.md): 01-19, 21-95, 2A, 2B, 97x, 98x.
FINESS_DEPARTMENTS = frozenset([f"{d:02d}" for d in range(1, 96) if d != 20] + ["2A", "2B", "97", "98"])

_B = r"(?<![0-9A-Za-z])"  # token start: not inside a longer word or number
_E = r"(?![0-9A-Za-z])"  # token end
_NOT_DECIMAL = r"(?<!\d\.)"  # not the fractional part of a decimal number ("0.123456789")
FINESS_RE = re.compile(_B + _NOT_DECIMAL + r"((?:\d{2}|2[AaBb])\d{7})" + _E)
FINESS_SPACED_RE = re.compile(_B + r"((?:\d{2}|2[AaBb]) \d{3} \d{3} \d)" + _E)
#: A listed FINESS written as a number loses its leading zero ("10000024").
FINESS_NO_ZERO_RE = re.compile(_B + _NOT_DECIMAL + r"([1-9]\d{7})" + _E)

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
#: Four octets, not inside a longer dotted number ("10.0.0.1.2", ".5.1.9.1" in SVG path data), not a
#: "v1.2.3.4" version ("3.11.2" has three octets anyway).
IPV4_RE = re.compile(r"(?<![\d.vV])(" + _OCTET + r"(?:\." + _OCTET + r"){3})(?!\.?\d)")
IPV6_CANDIDATE_RE = re.compile(
    r"(?<![0-9A-Za-z:])((?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?)(?![0-9A-Za-z:])"
)
_WORD_RE = re.compile(r"[^\W_]+")
#: Joins the cells of a table row so that they are scanned at once but no name spans two cells.
CELL_BARRIER = "\x1e"
_WORD_OR_BARRIER_RE = re.compile(r"[^\W_]+|\x1e")

#: Digit groups separated by single separators (space, dot, dash, underscore, slash, comma, apostrophe,
#: no-break or thin space), optionally after 2A/2B: the raw material of listed FINESS look-ups.
_DIGIT_GROUPS_RE = re.compile(r"(?<![0-9])(?:2[AaBb])?\d+(?:[ .\-_/,'\u00a0\u202f\u2009]\d+)*")
_GROUP_SPLIT_RE = re.compile(r"[ .\-_/,'\u00a0\u202f\u2009]")
#: A number in scientific notation, as spreadsheets print long integers (1.4053177E+07).
_SCIENTIFIC_RE = re.compile(r"(?<![0-9.])(\d\.\d+)[eE]\+?(\d{1,2})(?![0-9])")
#: Integers that may be an IPv4 address written as a number, and hexadecimal ones.
_IP_INTEGER_RE = re.compile(r"(?<![0-9.])(\d{7,10})(?![0-9]|\.\d)")
_IP_HEX_RE = re.compile(r"(?<![0-9A-Za-z#])(?:0[xX])?([0-9A-Fa-f]{8})(?![0-9A-Za-z])")
#: Four octets in any notation (decimal with leading zeros, octal, hex) and separator (dot, dash, underscore).
_IP_LOOSE_RE = re.compile(
    r"(?<![0-9A-Za-z.])((?:0[xX][0-9A-Fa-f]{1,2}|\d{1,4})([.\-_])(?:0[xX][0-9A-Fa-f]{1,2}|\d{1,4})\2"
    r"(?:0[xX][0-9A-Fa-f]{1,2}|\d{1,4})\2(?:0[xX][0-9A-Fa-f]{1,2}|\d{1,4}))(?![0-9A-Za-z]|\.\d)"
)
#: Tokens that may hold an audit or incident id: letters and digits with single separators between.
_ID_TOKEN_RE = re.compile(r"(?:[A-Za-z]+[-_.:/]?)?[A-Za-z]*[0-9][0-9A-Za-z]*(?:[-_.:/][0-9A-Za-z]+)*")
_ID_PART_RE = re.compile(r"[0-9]+|[A-Za-z]+")
#: The last part of an id and the separator before it (what its stem lacks).
_LAST_PART_RE = re.compile(r"[^0-9A-Za-z]+[0-9A-Za-z]*\s*$")
#: Fewest characters (letters and digits) of a listed id looked for, and of an all-digit one.
MIN_ID_CHARS = 5
MIN_NUMERIC_ID_CHARS = 8
#: Most ids a stem may stand for and still be looked for (the audits of one establishment).
MAX_IDS_PER_STEM = 12

#: Names shorter than this (normalised, without spaces) are ignored: too generic to be identifying.
MIN_NAME_CHARS = 5
#: A one-word name must be at least this long to be looked for ("EHPAD" alone is a family, not a name).
MIN_ONE_WORD_NAME_CHARS = 6
#: Hostnames never looked for (not identifying).
IGNORED_HOSTNAMES = frozenset({"localhost", "localhost.localdomain"})


def name_tokens(text: str) -> tuple[str, ...]:
    """Words of a name or text after :func:`fold_text`; punctuation and hyphens separate words."""
    return tuple(_WORD_RE.findall(fold_text(text)))


def normalize_hostname(host: str) -> str:
    """Lower-case, without a trailing dot, scheme, port or path (``https://A.fr:443/x`` → ``a.fr``)."""
    host = host.strip().lower()
    if "://" in host:
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def ip_or_none(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None


def _not_identifying(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_unspecified or ip.is_loopback or ip.is_reserved or ip.is_multicast


@dataclass(frozen=True)
class IdentifierIndex:
    """Listed identifiers, prepared for look-ups (build with :func:`build_index`)."""

    finess: frozenset[str] = frozenset()
    ip: frozenset[str] = frozenset()
    hostnames: frozenset[str] = frozenset()
    name_trie: dict = field(default_factory=dict)
    #: Listed FINESS without their leading zeros (``014053177`` → ``14053177``) → the FINESS.
    finess_stripped: dict = field(default_factory=dict)
    #: Listed IPv4 addresses as 32-bit integers.
    ipv4_int: frozenset[int] = frozenset()
    #: Normalised ids (letters and digits, upper case) → (kind, rule): ``audit_id``/``incident_id``.
    ids: dict = field(default_factory=dict)
    #: Lengths of the normalised ids (a token is cut into windows of these lengths only).
    id_lengths: frozenset[int] = frozenset()
    #: Finds the longest digit run of any listed id (where an id may start): a fast first pass.
    id_anchor: re.Pattern | None = None
    #: Finds any listed hostname (lower case): a trie, scanned once per text.
    host_anchor: re.Pattern | None = None


def trie_pattern(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words``, written as a trie (one branch per prefix), which
    :mod:`re` scans in time independent of the number of words.

    Examples
    --------
    >>> trie_pattern(["0119", "0120", "012"])
    '01(?:19|20?)'
    """
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def render(node: dict) -> str:
        end = "" in node
        branches = [re.escape(ch) + render(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if end:
            body = (f"(?:{body})" if len(branches) == 1 and len(body) > 1 else body) + "?"
        return body

    return render(trie)


def _id_anchor(raw: str) -> str:
    """The longest digit run of an id as written (the last of equals: ``0007`` of ``AUD-2024-0007``),
    which any way of writing the id contains; the whole id when it has no run of 3 digits."""
    runs = re.findall(r"\d+", str(raw))
    longest = max(reversed(runs), key=len) if runs else ""
    return longest if len(longest) >= 3 else normalize_id(raw)


def normalize_id(value: str) -> str:
    """Letters and digits of an id, upper case: ``"a000119-01"`` → ``"A00011901"``."""
    return re.sub(r"[^0-9A-Za-z]", "", str(value)).upper()


def _id_is_specific(normalized: str) -> bool:
    """Long enough not to match ordinary words or numbers (:data:`MIN_ID_CHARS`, :data:`MIN_NUMERIC_ID_CHARS`)."""
    if normalized.isdigit():
        return len(normalized) >= MIN_NUMERIC_ID_CHARS
    return len(normalized) >= MIN_ID_CHARS and any(ch.isdigit() for ch in normalized)


def _id_entries(values: Iterable[str], kind: str) -> dict[str, tuple[str, str]]:
    """Normalised ids and their stems (the id without its last part: ``A000119`` of ``A000119-01``).

    A stem is looked for only when it is specific to a few ids (:data:`MAX_IDS_PER_STEM`, the audits of
    one establishment), not a prefix shared by a whole campaign (``AUD-2024`` of ``AUD-2024-0001``).
    """
    stems: dict[str, int] = {}
    for value in values:
        parts = [p for p in re.split(r"[^0-9A-Za-z]+", str(value or "").strip()) if p]
        if len(parts) > 1:
            stem = normalize_id("".join(parts[:-1]))
            stems[stem] = stems.get(stem, 0) + 1
    entries = {
        stem: (kind, f"{kind}_stem_listed")
        for stem, count in stems.items()
        if count <= MAX_IDS_PER_STEM and _id_is_specific(stem)
    }
    for value in values:
        normalized = normalize_id(value) if value else ""
        if _id_is_specific(normalized):
            entries[normalized] = (kind, f"{kind}_listed")
    return entries


#: Kinds of identifiers a dataset provides (:func:`~cyberobs_lib.disclosure.identifiers_from_dataset`).
IDENTIFIER_KINDS = ("finess", "ip_address", "hostname", "name", "audit_id", "incident_id")


def build_index(identifiers: Mapping[str, Iterable[str]] | None) -> IdentifierIndex:
    """Prepare ``{"finess", "ip_address", "hostname", "name", "audit_id", "incident_id"}`` sets for
    :func:`find_identifiers`.

    Hostnames that parse as IP addresses go to the IP set; names too short to be identifying
    (:data:`MIN_NAME_CHARS`, :data:`MIN_ONE_WORD_NAME_CHARS`) are dropped.
    """
    identifiers = identifiers or {}
    unknown = set(identifiers) - set(IDENTIFIER_KINDS)
    if unknown:
        raise KeyError(f"unknown identifier kinds {sorted(unknown)}; use {', '.join(IDENTIFIER_KINDS)}")
    finess = frozenset(str(f).strip().upper().replace(" ", "") for f in identifiers.get("finess", ()) if f)
    ips, hosts = set(), set()
    for value in [*identifiers.get("ip_address", ()), *identifiers.get("hostname", ())]:
        if not value or not str(value).strip():
            continue
        ip = ip_or_none(str(value).strip())
        if ip is not None:
            ips.add(str(ip))
            continue
        host = normalize_hostname(str(value))
        if host and host not in IGNORED_HOSTNAMES and len(host) >= 4:
            hosts.add(host)
    trie: dict = {}
    for name in identifiers.get("name", ()):
        words = name_tokens(str(name)) if name else ()
        chars = sum(len(w) for w in words)
        if chars < MIN_NAME_CHARS or (len(words) == 1 and chars < MIN_ONE_WORD_NAME_CHARS):
            continue
        node = trie
        for word in words:
            node = node.setdefault(word, {})
        node[None] = True  # end of a name
    raw_ids = [str(v) for kind in ("incident_id", "audit_id") for v in identifiers.get(kind, ()) if v]
    ids = {
        **_id_entries(list(identifiers.get("incident_id", ())), "incident_id"),
        **_id_entries(list(identifiers.get("audit_id", ())), "audit_id"),
    }
    # Where an id or its stem may be written: digit runs of the ids as written (a stem's run is one of
    # its id's runs, or the stem has its own); a stem without digits is not specific anyway.
    anchors = {_id_anchor(v) for v in raw_ids} | {
        _id_anchor(_LAST_PART_RE.sub("", v)) for v in raw_ids if _LAST_PART_RE.search(v)
    }
    anchors |= {k for k in ids if not any(ch.isdigit() for ch in k)}
    return IdentifierIndex(
        finess=finess,
        ip=frozenset(ips),
        hostnames=frozenset(hosts),
        name_trie=trie,
        finess_stripped={f.lstrip("0"): f for f in finess if len(f.lstrip("0")) >= 7},
        ipv4_int=frozenset(int(ipaddress.ip_address(ip)) for ip in ips if ":" not in ip),
        ids=ids,
        id_lengths=frozenset(len(k) for k in ids),
        id_anchor=re.compile(trie_pattern(anchors), re.I) if anchors else None,
        host_anchor=re.compile(trie_pattern(hosts)) if hosts else None,
    )


class Hit(NamedTuple):
    """One identifying value found in a text: ``value`` starts at offset ``start``."""

    kind: str
    value: str
    rule: str
    start: int


#: A web address (the source of a public figure): 9-digit article numbers in it are not FINESS numbers.
_URL_RE = re.compile(r"https?://[^\s\x1e\"'<>]+")


def _in_url(spans: list[tuple[int, int]], position: int) -> bool:
    return any(start <= position < end for start, end in spans)


def _find_finess(text: str, index: IdentifierIndex, patterns: bool = True) -> list[Hit]:
    """FINESS numbers of the list (anywhere) and, with ``patterns``, 9-character numbers with a valid
    department prefix and check key (not inside a web address: ``lemagit.fr/…/366554855/…``)."""
    hits: dict[int, Hit] = {}
    urls: list[tuple[int, int]] | None = None  # the web addresses of the text, found once when first needed
    for regex in (FINESS_RE, FINESS_SPACED_RE):
        for match in regex.finditer(text):
            token = match.group(1)
            compact = token.replace(" ", "").upper()
            if compact in index.finess:
                hits[match.start(1)] = Hit("finess", token, "finess_listed", match.start(1))
            elif patterns and compact[:2] in FINESS_DEPARTMENTS and finess_key_is_valid(compact):
                if urls is None:
                    urls = [m.span() for m in _URL_RE.finditer(text)]
                if _in_url(urls, match.start(1)):
                    continue
                hits[match.start(1)] = Hit("finess", token, "finess_pattern_luhn", match.start(1))
    if index.finess:
        for hit in _find_listed_finess(text, index):
            hits.setdefault(hit.start, hit)
    return list(hits.values())


def _finess_rule(token: str, compact: str, listed: str, in_token: bool) -> str:
    if in_token:
        return "finess_listed_in_token"
    if compact != token.upper():
        return "finess_listed_separated"
    if compact == listed:
        return "finess_listed"
    if len(compact) < len(listed):
        return "finess_listed_without_leading_zero"
    return "finess_listed_zero_padded"


def _find_listed_finess(text: str, index: IdentifierIndex) -> Iterator[Hit]:
    """Listed FINESS written with separators, without or with extra leading zeros, inside a token,
    or in scientific notation (see the module docstring)."""
    for match in _SCIENTIFIC_RE.finditer(text):
        value = float(f"{match.group(1)}e{match.group(2)}")
        if value.is_integer() and str(int(value)) in index.finess_stripped:
            yield Hit("finess", match.group(0), "finess_listed_scientific", match.start())
    for match in _DIGIT_GROUPS_RE.finditer(text):
        token = match.group(0)
        if len(token) < 7:
            continue
        groups = _GROUP_SPLIT_RE.split(token)
        if sum(len(g) for g in groups) < 7:
            continue
        starts = [0]
        for group in groups[:-1]:
            starts.append(starts[-1] + len(group) + 1)
        decimal = len(groups) == 2 and token[starts[1] - 1] == "." and len(groups[0]) <= 3
        for i in range(len(groups)):
            if decimal and (i == 1 or not groups[0].strip("0")):
                break  # a decimal number ("0.339999906", "12.014053177"), not digits with a dot between
            compact = ""
            for j in range(i, len(groups)):
                compact += groups[j].upper()
                if len(compact) > 12:
                    break
                listed = index.finess_stripped.get(compact.lstrip("0"))
                if listed is None and compact in index.finess:
                    listed = compact
                if listed is None:
                    continue
                begin, end = match.start() + starts[i], match.start() + starts[j] + len(groups[j])
                piece = text[begin:end]
                in_token = (begin > 0 and text[begin - 1].isalpha()) or (
                    end < len(text) and text[end].isalpha()
                )
                yield Hit("finess", piece, _finess_rule(piece, compact, listed, in_token), begin)
                break
        if len(groups) == 1 and len(token) > 10:
            yield from _finess_inside_number(text, match.start(), token, index)


def _finess_inside_number(text: str, start: int, digits: str, index: IdentifierIndex) -> Iterator[Hit]:
    """A listed FINESS (9 characters) inside a longer run of digits (``99014053177``)."""
    for offset in range(len(digits) - 8):
        if digits[offset : offset + 9].upper() in index.finess:
            begin = start + offset
            yield Hit("finess", text[begin : begin + 9], "finess_listed_in_number", begin)
            return


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped (``::ffff:a.b.c.d``) or NAT64 (``64:ff9b::/96``) address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _octet_values(token: str) -> list[int] | None:
    """Decimal reading of an octet (``044`` → 44) and, when different, the ``inet_aton`` one (octal, hex)."""
    lowered = token.lower()
    if lowered.startswith("0x"):
        return [int(lowered, 16)]
    values = [int(token, 10)]
    if len(token) > 1 and token.startswith("0") and all(ch in "01234567" for ch in token):
        values.append(int(token, 8))
    return values


def _loose_ipv4(token: str, separator: str) -> list[str]:
    """Every dotted-quad reading of four octets written with zeros, octal, hex or dashes."""
    import itertools

    readings = [_octet_values(part) for part in token.split(separator)]
    out = []
    for octets in itertools.product(*readings):
        if all(0 <= o <= 255 for o in octets):
            out.append(".".join(map(str, octets)))
    return out


def _find_ips(text: str, index: IdentifierIndex, patterns: bool = True) -> list[Hit]:
    hits: dict[int, Hit] = {}
    for match in IPV4_RE.finditer(text):
        ip = ipaddress.IPv4Address(match.group(1))
        reversed_ip = ".".join(reversed(match.group(1).split(".")))
        if str(ip) in index.ip:
            hits[match.start(1)] = Hit("ip_address", match.group(1), "ip_listed", match.start(1))
        elif reversed_ip in index.ip:
            hits[match.start(1)] = Hit("ip_address", match.group(1), "ip_listed_reversed", match.start(1))
        elif patterns and not _not_identifying(ip):
            hits[match.start(1)] = Hit("ip_address", match.group(1), "ipv4_pattern", match.start(1))
    if index.ip:
        for hit in _find_listed_ipv4_forms(text, index):
            hits.setdefault(hit.start, hit)
    if ":" in text:
        for match in IPV6_CANDIDATE_RE.finditer(text):
            token = match.group(1)
            ip = ip_or_none(token)
            if not isinstance(ip, ipaddress.IPv6Address):
                continue
            embedded = _embedded_ipv4(ip)
            if str(ip) in index.ip:
                hits[match.start(1)] = Hit("ip_address", token, "ip_listed", match.start(1))
            elif embedded is not None and str(embedded) in index.ip:
                hits[match.start(1)] = Hit("ip_address", token, "ip_listed_in_ipv6", match.start(1))
            elif patterns and sum(1 for g in token.split(":") if g) >= 3 and not _not_identifying(ip):
                hits.setdefault(match.start(1), Hit("ip_address", token, "ipv6_pattern", match.start(1)))
    return list(hits.values())


def _find_listed_ipv4_forms(text: str, index: IdentifierIndex) -> Iterator[Hit]:
    """Listed IPv4 addresses as integers, hexadecimal, zero-padded/octal/hex octets or dashed quads."""
    for match in _IP_LOOSE_RE.finditer(text):
        token, separator = match.group(1), match.group(2)
        if separator == "." and IPV4_RE.fullmatch(token):
            continue  # the plain notation, handled by IPV4_RE
        if any(reading in index.ip for reading in _loose_ipv4(token, separator)):
            yield Hit("ip_address", token, "ip_listed_other_notation", match.start(1))
    if not index.ipv4_int:
        return
    for match in _IP_INTEGER_RE.finditer(text):
        if int(match.group(1)) in index.ipv4_int:
            yield Hit("ip_address", match.group(1), "ip_listed_as_integer", match.start(1))
    for match in _IP_HEX_RE.finditer(text):
        if int(match.group(1), 16) in index.ipv4_int:
            yield Hit("ip_address", match.group(0), "ip_listed_as_hex", match.start())


_DEFANGED_DOT_RE = re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)", re.I)


def _undefanged(text: str) -> tuple[str, Callable[[int], int]]:
    """``text`` with defanged dots (``[.]``, ``(.)``, ``[dot]``) as dots, and the map back to offsets in ``text``."""
    if "[" not in text and "(" not in text and "{" not in text:
        return text, lambda offset: offset
    marks = list(_DEFANGED_DOT_RE.finditer(text))
    if not marks:
        return text, lambda offset: offset
    pieces, starts, shifts, shift, previous = [], [], [], 0, 0
    for mark in marks:
        pieces.append(text[previous : mark.start()] + ".")
        shift += len(mark.group(0)) - 1
        starts.append(
            mark.start() - (shift - len(mark.group(0)) + 1) + 1
        )  # offset after the "." in the new text
        shifts.append(shift)
        previous = mark.end()
    pieces.append(text[previous:])

    def back(offset: int) -> int:
        k = bisect.bisect_right(starts, offset)
        return offset + (shifts[k - 1] if k else 0)

    return "".join(pieces), back


def _find_hostnames(text: str, index: IdentifierIndex) -> list[Hit]:
    """Listed hosts, any case, and their sub-domains ("smtp.mail.chu-x.fr" reveals "mail.chu-x.fr").

    A trie of the listed names finds candidates in one pass; a candidate counts when it is a whole
    host name: not inside a longer label on its right, and either a token start or a sub-domain on its
    left (the whole dotted token is reported).
    """
    if index.host_anchor is None:
        return []
    hits = []
    lowered, back = _undefanged(text.lower())
    for match in index.host_anchor.finditer(lowered):
        begin, end = match.start(), match.end()
        after = lowered[end : end + 2]
        if after[:1] and (after[0] in _HOST_CHARS or (after[0] == "." and after[1:2] in _HOST_CHARS)):
            continue  # "mail.chu-x.fr.evil", "mail.chu-x.frx": another name
        if begin and lowered[begin - 1] in _HOST_CHARS and lowered[begin - 1] != ".":
            continue  # "xmail.chu-x.fr"
        while begin and lowered[begin - 1] in _HOST_CHARS:
            begin -= 1  # the sub-domain labels in front
        start, stop = back(begin), back(end - 1) + 1
        hits.append(Hit("hostname", text[start:stop], "hostname_listed", start))
    return hits


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]")


@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    return fold_text(ch)


def _folded_with_positions(text: str) -> tuple[str, Callable[[int], int] | None]:
    """:func:`fold_text` of ``text`` and, when lengths differ, a map from folded to original offsets.

    Only non-ASCII characters can change length (``…`` → ``...``, ``ß`` → ``ss``, a lone combining
    accent → nothing): they are folded one by one, the ASCII runs between them at once.
    """
    folded = fold_text(text)
    if len(folded) == len(text):
        return folded, None
    pieces: list[str] = []
    marks: list[tuple[int, int, int]] = []  # (folded start, folded end, original offset) of odd characters
    previous = length = 0
    for match in _NON_ASCII_RE.finditer(text):
        run = text[previous : match.start()].lower()
        pieces.append(run)
        length += len(run)
        piece = _fold_char(match.group())
        if len(piece) != 1:
            marks.append((length, length + len(piece), match.start()))
        pieces.append(piece)
        length += len(piece)
        previous = match.end()
    pieces.append(text[previous:].lower())
    starts = [m[0] for m in marks]

    def original(offset: int) -> int:
        k = bisect.bisect_right(starts, offset) - 1
        if k < 0:
            return offset
        f_start, f_end, o_start = marks[k]
        return o_start if offset < f_end else o_start + 1 + (offset - f_end)

    return "".join(pieces), original


def _find_names(text: str, index: IdentifierIndex) -> list[Hit]:
    if not index.name_trie:
        return []
    folded, positions = _folded_with_positions(text)
    trie = index.name_trie
    words = _WORD_OR_BARRIER_RE.findall(folded)  # strings only: fast; positions only for hits
    spans = []
    for i, word in enumerate(words):
        if word not in trie:
            continue
        node, end = trie, None
        for j in range(i, len(words)):
            node = node.get(words[j])
            if node is None:
                break
            if None in node:
                end = j
        if end is not None:
            spans.append((i, end))
    if not spans:
        return []
    matches = list(_WORD_OR_BARRIER_RE.finditer(folded))
    hits = []
    for i, end in spans:
        start, stop = matches[i].start(), matches[end].end()
        if positions is not None:
            start, stop = positions(start), positions(stop - 1) + 1
        hits.append(Hit("name", text[start:stop], "name_listed", start))
    return hits


def _find_ids(text: str, index: IdentifierIndex) -> list[Hit]:
    """Listed audit and incident ids (and their stems) in tokens, cut at separators and letter/digit
    changes: ``audit_A000119-01``, ``a00011901`` and ``A000119`` all name establishment 119."""
    if not index.ids:
        return []
    hits = []
    shortest, longest = min(index.id_lengths), max(index.id_lengths)
    seen: set[int] = set()
    for anchor in index.id_anchor.finditer(text):
        # The token around the anchor (an id is at most `longest` characters plus separators).
        low = max(0, anchor.start() - 2 * longest)
        for match in _ID_TOKEN_RE.finditer(text, low, anchor.end() + 2 * longest):
            if match.end() <= anchor.start() or match.start() >= anchor.end():
                continue
            if match.start() not in seen and len(match.group(0)) >= shortest:
                seen.add(match.start())
                hits.extend(_ids_in_token(text, match, index))
    return hits


def _ids_in_token(text: str, match: re.Match, index: IdentifierIndex) -> list[Hit]:
    """Listed ids in one token: the longest one starting at each part (see :func:`_find_ids`)."""
    longest = max(index.id_lengths)
    parts = list(_ID_PART_RE.finditer(match.group(0)))
    for i in range(len(parts)):
        compact, found = "", None
        for j in range(i, len(parts)):
            compact += parts[j].group(0).upper()
            if len(compact) > longest:
                break
            if compact in index.ids:
                found = (j, index.ids[compact])  # the longest match from part i wins
        if found is not None:
            j, (kind, rule) = found
            begin, end = match.start() + parts[i].start(), match.start() + parts[j].end()
            return [Hit(kind, text[begin:end], rule, begin)]
    return []


def find_identifiers(text: str, index: IdentifierIndex, *, patterns: bool = True) -> list[Hit]:
    """Return a :class:`Hit` (kind, matched text, rule, offset) for every identifying value in ``text``.

    A name never spans the cell barrier :data:`CELL_BARRIER` (used to join table cells). With
    ``patterns=False`` only listed identifiers are looked for (no generic IP or FINESS pattern).

    Examples
    --------
    >>> idx = build_index({"hostname": ["vpn.chu-x.fr"], "name": ["CH de Fleyriat"]})
    >>> [(h.kind, h.rule, h.start) for h in find_identifiers("CH DE FLEYRIAT: vpn.chu-x.fr at 10.1.2.3", idx)]
    [('ip_address', 'ipv4_pattern', 32), ('hostname', 'hostname_listed', 16), ('name', 'name_listed', 0)]
    """
    return [
        *_find_finess(text, index, patterns),
        *_find_ips(text, index, patterns),
        *_find_hostnames(text, index),
        *_find_names(text, index),
        *_find_ids(text, index),
    ]


def redact(text: str, index: IdentifierIndex, *, mask: Callable[[str], str]) -> str:
    """Replace every identifying value found in ``text`` by ``mask(value)``.

    Used on the file names and locations printed by the check, which may themselves hold an
    identifier (``report_759999907.md``, a column named after a host).
    """
    for value in sorted({hit.value for hit in find_identifiers(text, index)}, key=len, reverse=True):
        text = text.replace(value, mask(value))
    return text
