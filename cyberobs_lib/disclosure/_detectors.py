"""Detectors of identifying values in a piece of text: FINESS, IP addresses, hostnames, names.

Generic patterns (IPv4, IPv6, FINESS with a valid department prefix and check key) find values that
were never listed; exact look-ups find the identifiers of the input dataset (FINESS, hostnames,
establishment names), however they are written (case, accents, hyphens, ``NN NNN NNN N``).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

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
_HOST_TOKEN_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
_DOTTED_HOST_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+")
_WORD_RE = re.compile(r"[^\W_]+")
#: Joins the cells of a table row so that they are scanned at once but no name spans two cells.
CELL_BARRIER = "\x1e"
_WORD_OR_BARRIER_RE = re.compile(r"[^\W_]+|\x1e")

#: Names shorter than this (normalised, without spaces) are ignored: too generic to be identifying.
MIN_NAME_CHARS = 5
#: A one-word name must be at least this long to be looked for ("EHPAD" alone is a family, not a name).
MIN_ONE_WORD_NAME_CHARS = 6
#: Hostnames never looked for (not identifying).
IGNORED_HOSTNAMES = frozenset({"localhost", "localhost.localdomain"})


def finess_key_is_valid(finess: str) -> bool:
    """Luhn mod-10 check over the 9 characters of a FINESS number, with A counting 1 and B 2.

    Notes
    -----
    No official algorithm is published; this one holds for every number of the hospital extract of
    the FINESS open data (domain.md, "FINESS").

    Examples
    --------
    >>> finess_key_is_valid("010000024"), finess_key_is_valid("010000025")
    (True, False)
    """
    digits = finess.upper().replace("A", "1").replace("B", "2")
    if len(digits) != 9 or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def fold_text(text: str) -> str:
    """Case-fold and strip accents ("Hôpital" → "hopital"), for name matching."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


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


def _ip_or_none(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
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
    single_label_hosts: bool = False
    name_trie: dict = field(default_factory=dict)


def build_index(identifiers: Mapping[str, Iterable[str]] | None) -> IdentifierIndex:
    """Prepare ``{"finess", "ip_address", "hostname", "name"}`` sets for :func:`find_identifiers`.

    Hostnames that parse as IP addresses go to the IP set; names too short to be identifying
    (:data:`MIN_NAME_CHARS`, :data:`MIN_ONE_WORD_NAME_CHARS`) are dropped.
    """
    identifiers = identifiers or {}
    unknown = set(identifiers) - {"finess", "ip_address", "hostname", "name"}
    if unknown:
        raise KeyError(f"unknown identifier kinds {sorted(unknown)}; use finess, ip_address, hostname, name")
    finess = frozenset(str(f).strip().upper().replace(" ", "") for f in identifiers.get("finess", ()) if f)
    ips, hosts = set(), set()
    for value in [*identifiers.get("ip_address", ()), *identifiers.get("hostname", ())]:
        if not value or not str(value).strip():
            continue
        ip = _ip_or_none(str(value).strip())
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
    return IdentifierIndex(
        finess=finess,
        ip=frozenset(ips),
        hostnames=frozenset(hosts),
        single_label_hosts=any("." not in h for h in hosts),
        name_trie=trie,
    )


class Hit(NamedTuple):
    """One identifying value found in a text: ``value`` starts at offset ``start``."""

    kind: str
    value: str
    rule: str
    start: int


def _find_finess(text: str, index: IdentifierIndex) -> list[Hit]:
    hits = []
    for regex in (FINESS_RE, FINESS_SPACED_RE):
        for match in regex.finditer(text):
            token = match.group(1)
            compact = token.replace(" ", "").upper()
            if compact in index.finess:
                hits.append(Hit("finess", token, "finess_listed", match.start(1)))
            elif compact[:2] in FINESS_DEPARTMENTS and finess_key_is_valid(compact):
                hits.append(Hit("finess", token, "finess_pattern_luhn", match.start(1)))
    if index.finess:
        for match in FINESS_NO_ZERO_RE.finditer(text):
            if "0" + match.group(1) in index.finess:
                hits.append(
                    Hit("finess", match.group(1), "finess_listed_without_leading_zero", match.start(1))
                )
    return hits


def _find_ips(text: str, index: IdentifierIndex) -> list[Hit]:
    hits = []
    for match in IPV4_RE.finditer(text):
        ip = ipaddress.IPv4Address(match.group(1))
        if str(ip) in index.ip:
            hits.append(Hit("ip_address", match.group(1), "ip_listed", match.start(1)))
        elif not _not_identifying(ip):
            hits.append(Hit("ip_address", match.group(1), "ipv4_pattern", match.start(1)))
    if ":" in text:
        for match in IPV6_CANDIDATE_RE.finditer(text):
            token = match.group(1)
            ip = _ip_or_none(token)
            if not isinstance(ip, ipaddress.IPv6Address):
                continue
            if str(ip) in index.ip:
                hits.append(Hit("ip_address", token, "ip_listed", match.start(1)))
            elif sum(1 for g in token.split(":") if g) >= 3 and not _not_identifying(ip):
                hits.append(Hit("ip_address", token, "ipv6_pattern", match.start(1)))
    return hits


def _find_hostnames(text: str, index: IdentifierIndex) -> list[Hit]:
    if not index.hostnames:
        return []
    hits = []
    regex = _HOST_TOKEN_RE if index.single_label_hosts else _DOTTED_HOST_RE
    for match in regex.finditer(text.lower()):
        labels = match.group(0).split(".")
        if labels[-1].isdigit():  # "0.5123", "3.11.2": numbers, not names
            continue
        # The host itself or any sub-domain of it ("smtp.mail.chu-x.fr" reveals "mail.chu-x.fr").
        for first in range(len(labels)):
            if ".".join(labels[first:]) in index.hostnames:
                hits.append(
                    Hit("hostname", text[match.start() : match.end()], "hostname_listed", match.start())
                )
                break
    return hits


def _folded_with_positions(text: str) -> tuple[str, list[int] | None]:
    """:func:`fold_text` of ``text`` and, when lengths differ, the original position of each character."""
    folded = fold_text(text)
    if len(folded) == len(text):
        return folded, None
    chars, positions = [], []
    for position, ch in enumerate(text):
        piece = fold_text(ch)
        chars.append(piece)
        positions.extend([position] * len(piece))
    return "".join(chars), positions


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
            start, stop = positions[start], positions[stop - 1] + 1
        hits.append(Hit("name", text[start:stop], "name_listed", start))
    return hits


def find_identifiers(text: str, index: IdentifierIndex) -> list[Hit]:
    """Return a :class:`Hit` (kind, matched text, rule, offset) for every identifying value in ``text``.

    A name never spans the cell barrier :data:`CELL_BARRIER` (used to join table cells).

    Examples
    --------
    >>> idx = build_index({"hostname": ["vpn.chu-x.fr"], "name": ["CH de Fleyriat"]})
    >>> [(h.kind, h.rule, h.start) for h in find_identifiers("CH DE FLEYRIAT: vpn.chu-x.fr at 10.1.2.3", idx)]
    [('ip_address', 'ipv4_pattern', 32), ('hostname', 'hostname_listed', 16), ('name', 'name_listed', 0)]
    """
    return [
        *_find_finess(text, index),
        *_find_ips(text, index),
        *_find_hostnames(text, index),
        *_find_names(text, index),
    ]


def redact(text: str, index: IdentifierIndex, *, mask: Callable[[str], str]) -> str:
    """Replace every identifying value found in ``text`` by ``mask(value)``.

    Used on the file names and locations printed by the check, which may themselves hold an
    identifier (``report_759999907.md``, a column named after a host).
    """
    for value in sorted({hit.value for hit in find_identifiers(text, index)}, key=len, reverse=True):
        text = text.replace(value, mask(value))
    return text
