"""Stable finding identity: a fingerprint of establishment, host, port, protocol and vulnerability key.

The fingerprint never reads the title, the description or the scanner's plugin output, which change between
scans of the same vulnerability (DefectDojo's known pitfall with Nessus plugin output), so a finding keeps its
identity across audits.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

#: Version of the fingerprint algorithm, hashed into every fingerprint; bump it if the rule changes.
FINGERPRINT_VERSION = "cyberobs-fp-v1"
_FIELDS = ("finess", "host", "port", "protocol", "vuln_key")
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer (Steele, Lea & Flood 2014), on uint64 with wrap-around arithmetic."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _canon_text(u: pd.Series, field: str) -> pd.Series:
    """Canonical form of distinct values of one identity field (see :func:`canonical_parts`)."""
    if field == "port":
        num = pd.to_numeric(u, errors="coerce")
        num = num.where(num.isna() | (num == num.round()))
        return num.astype("Int64").astype("string").fillna("")
    t = u.astype("string").str.strip()
    if field == "finess":
        t = t.str.upper()
    elif field == "host":
        t = t.str.lower().str.rstrip(".")
    else:
        t = t.str.lower()
    return t.fillna("")


def _field_lanes(values: pd.Series, field: str) -> tuple[np.ndarray, np.ndarray]:
    """Two uint64 lanes per row: BLAKE2b-128 of ``field=<canonical value>`` (UTF-8), once per distinct raw value."""
    codes, uniques = pd.factorize(pd.Series(values, copy=False), use_na_sentinel=True)
    canon = _canon_text(pd.Series(list(uniques) + [None], dtype=object), field)
    lanes = np.empty((len(canon), 2), dtype=np.uint64)
    for i, u in enumerate(canon.tolist()):
        digest = hashlib.blake2b(f"{field}={u}".encode(), digest_size=16).digest()
        lanes[i, 0] = int.from_bytes(digest[:8], "big")
        lanes[i, 1] = int.from_bytes(digest[8:], "big")
    idx = np.where(codes < 0, len(uniques), codes)
    return lanes[idx, 0], lanes[idx, 1]


def canonical_parts(frame: pd.DataFrame, *, finess: str = "finess", host: str = "host", port: str = "port",
                    protocol: str = "protocol", vuln_key: str = "vuln_key") -> pd.DataFrame:  # fmt: skip
    """The five canonical identity strings: finess stripped/upper, host stripped/lower-cased (a trailing dot
    of an FQDN removed), port as a decimal integer string (empty when missing or not an integer), protocol
    lower-cased, vuln_key stripped/lower-cased; missing values are empty strings.

    Examples
    --------
    >>> canonical_parts(pd.DataFrame({"finess": ["010000024"], "host": [" WWW.Example.FR. "], "port": [443.0],
    ...                               "protocol": ["TCP"], "vuln_key": ["Nessus:19506"]})).values.tolist()
    [['010000024', 'www.example.fr', '443', 'tcp', 'nessus:19506']]
    """
    cols = dict(zip(_FIELDS, (finess, host, port, protocol, vuln_key), strict=True))
    out = {}
    for field, col in cols.items():
        raw = frame[col] if col in frame.columns else pd.Series(pd.NA, index=frame.index, dtype=object)
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)
        canon = _canon_text(pd.Series(list(uniques) + [None], dtype=object), field).to_numpy(dtype=object)
        out[field] = canon[np.where(codes < 0, len(uniques), codes)]
    return pd.DataFrame(out, index=frame.index).astype("string")


def fingerprint_lanes(frame: pd.DataFrame, *, finess: str = "finess", host: str = "host", port: str = "port",
                      protocol: str = "protocol", vuln_key: str = "vuln_key") -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The two uint64 lanes of the fingerprint (see :func:`finding_fingerprint`), from the raw columns."""
    seed = hashlib.blake2b(FINGERPRINT_VERSION.encode(), digest_size=16).digest()
    acc = [np.full(len(frame), np.uint64(int.from_bytes(seed[:8], "big")), dtype=np.uint64),
           np.full(len(frame), np.uint64(int.from_bytes(seed[8:], "big")), dtype=np.uint64)]  # fmt: skip
    cols = dict(zip(_FIELDS, (finess, host, port, protocol, vuln_key), strict=True))
    with np.errstate(over="ignore"):
        for field, col in cols.items():
            raw = frame[col] if col in frame.columns else pd.Series(pd.NA, index=frame.index, dtype=object)
            h0, h1 = _field_lanes(raw, field)
            acc[0] = _mix(acc[0] ^ h0)
            acc[1] = _mix(acc[1] ^ h1)
    return acc[0], acc[1]


def lanes_to_hex(lane0: np.ndarray, lane1: np.ndarray) -> np.ndarray:
    """32-character lower-case hex strings of two uint64 lanes (big-endian), vectorized."""
    n = len(lane0)
    b0 = np.ascontiguousarray(lane0, dtype=">u8").view(np.uint8).reshape(n, 8)
    b1 = np.ascontiguousarray(lane1, dtype=">u8").view(np.uint8).reshape(n, 8)
    be = np.hstack([b0, b1])
    return _HEX[be].view("S32").ravel().astype("U32")


def finding_fingerprint(frame: pd.DataFrame, *, finess: str = "finess", host: str = "host", port: str = "port",
                        protocol: str = "protocol", vuln_key: str = "vuln_key") -> pd.Series:  # fmt: skip
    """Stable 128-bit fingerprint of a finding's identity, as 32 hex characters.

    Parameters
    ----------
    frame : pandas.DataFrame
        Holds the five identity columns (names given by the keyword options). Missing columns or values
        count as empty strings. Title, description and plugin output are never read.

    Returns
    -------
    pandas.Series
        ``string`` dtype, 32 lower-case hex characters, same index.

    Notes
    -----
    Explicit and stable across runs, machines and pandas/numpy versions (no ``hash()``, no
    ``hash_pandas_object``): each canonical part (:func:`canonical_parts`) is hashed as the UTF-8 bytes of
    ``"<field>=<value>"`` with BLAKE2b (16-byte digest, split into two big-endian uint64 lanes); per lane, an
    accumulator seeded with BLAKE2b-128 of ``"cyberobs-fp-v1"`` absorbs the five parts in the fixed order
    finess, host, port, protocol, vuln_key as ``acc = splitmix64(acc XOR part)`` (uint64 wrap-around). The
    fingerprint is lane 0 then lane 1 in hex. Parts are hashed once per distinct value, so the cost is a few
    vectorized uint64 passes. A pure-Python reference, :func:`fingerprint_reference`, gives the same value.

    References
    ----------
    RFC 7693 (BLAKE2); Steele, Lea & Flood (2014), "Fast splittable pseudorandom number generators" (SplitMix64).

    Examples
    --------
    >>> f = pd.DataFrame({"finess": ["010000024"] * 2, "host": ["10.0.0.1", "10.0.0.1"], "port": [3389, 3389],
    ...                   "protocol": ["tcp", "TCP"], "vuln_key": ["nessus:10940", "nessus:10940"],
    ...                   "title": ["RDP on", "RDP detected (v2 wording)"]})
    >>> fp = finding_fingerprint(f)
    >>> fp[0] == fp[1], len(fp[0])
    (True, 32)
    """
    l0, l1 = fingerprint_lanes(
        frame, finess=finess, host=host, port=port, protocol=protocol, vuln_key=vuln_key
    )
    return pd.Series(pd.array(lanes_to_hex(l0, l1), dtype="string"), index=frame.index, name="fingerprint")


def fingerprint_reference(finess: str, host: str, port: str, protocol: str, vuln_key: str) -> str:
    """Pure-Python reference of the fingerprint of already canonical parts (for audits and tests).

    Examples
    --------
    >>> f = pd.DataFrame({"finess": ["010000024"], "host": ["10.0.0.1"], "port": [22], "protocol": ["tcp"],
    ...                   "vuln_key": ["nessus:10881"]})
    >>> finding_fingerprint(f)[0] == fingerprint_reference("010000024", "10.0.0.1", "22", "tcp", "nessus:10881")
    True
    """
    mask = (1 << 64) - 1

    def mix(x: int) -> int:
        x ^= x >> 30
        x = (x * 0xBF58476D1CE4E5B9) & mask
        x ^= x >> 27
        x = (x * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    seed = hashlib.blake2b(FINGERPRINT_VERSION.encode(), digest_size=16).digest()
    acc = [int.from_bytes(seed[:8], "big"), int.from_bytes(seed[8:], "big")]
    for field, value in zip(_FIELDS, (finess, host, port, protocol, vuln_key), strict=True):
        d = hashlib.blake2b(f"{field}={value}".encode(), digest_size=16).digest()
        acc[0] = mix(acc[0] ^ int.from_bytes(d[:8], "big"))
        acc[1] = mix(acc[1] ^ int.from_bytes(d[8:], "big"))
    return f"{acc[0]:016x}{acc[1]:016x}"
