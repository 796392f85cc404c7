"""Keyed pseudonyms (HMAC-SHA256) for published outputs, and where the key comes from.

FINESS numbers are public and enumerable: an unkeyed hash of a FINESS is not a pseudonym (anyone can
hash the whole registry and read the table back). A pseudonym is therefore ``HMAC-SHA256(key, value)``
with a secret key that never sits in the repository. Demo mode (``CYBEROBS_DEMO=1``, set by
``cyberobs run --demo``), and only demo mode, falls back to the documented
:data:`cyberobs_lib.config.DEMO_KEY` when no key is set, so that demo outputs are the same on every machine.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cyberobs_lib import config
from cyberobs_lib.config import DEMO_KEY, KEY_ENV_VAR, KEY_FILE_ENV_VAR

#: Environment variable switching demo mode on (``1``); see :func:`demo_mode`.
DEMO_ENV_VAR: str = getattr(config, "DEMO_ENV_VAR", "CYBEROBS_DEMO")

#: Shortest key accepted for real data (bytes). A short key can be brute-forced from one known
#: (FINESS, pseudonym) pair, because FINESS numbers are public.
MIN_KEY_BYTES = 16

#: The per-user key file looked up last (outside any repository).
USER_KEY_FILE = Path("~/.config/cyberobs/key")

HOW_TO_SET_KEY = (
    "Set a secret pseudonymisation key before running on real data, for example:\n"
    f"    export {KEY_ENV_VAR}=$(python -c 'import secrets;print(secrets.token_hex(32))')\n"
    f"or write such a key in a file outside any git repository and point {KEY_FILE_ENV_VAR} at it\n"
    f"(or store it in {USER_KEY_FILE}, mode 600). Keep the same key from run to run so that\n"
    "pseudonyms stay comparable, and never commit it."
)


class MissingKeyError(RuntimeError):
    """No usable pseudonymisation key for real data; the message says how to set one."""


class UnsafeKeyFileError(MissingKeyError):
    """The key file sits inside a git work tree (it could be committed) or is unreadable."""


class PseudonymCollisionError(ValueError):
    """Two different values received the same truncated pseudonym: use a longer ``length``."""


def _git_work_tree(path: Path) -> Path | None:
    """Return the enclosing git work tree of ``path`` (a folder holding ``.git``), or None."""
    for folder in path.resolve().parents:
        if (folder / ".git").exists():
            return folder
    return None


def _read_key_file(path: Path, *, origin: str) -> bytes:
    path = path.expanduser()
    if not path.is_file():
        raise UnsafeKeyFileError(f"key file {path} (from {origin}) does not exist.\n{HOW_TO_SET_KEY}")
    work_tree = _git_work_tree(path)
    if work_tree is not None:
        raise UnsafeKeyFileError(
            f"refusing key file {path} (from {origin}): it is inside the git work tree {work_tree}, "
            f"where it could be committed. Move it outside any repository.\n{HOW_TO_SET_KEY}"
        )
    key = path.read_bytes().strip()
    if not key:
        raise UnsafeKeyFileError(f"key file {path} (from {origin}) is empty.\n{HOW_TO_SET_KEY}")
    return key


def _checked(key: bytes, *, origin: str, demo: bool = False) -> bytes:
    if demo and key == DEMO_KEY.encode():
        return key
    if key == DEMO_KEY.encode():
        raise MissingKeyError(
            f"the key from {origin} is the public demo key; real data needs a secret one.\n{HOW_TO_SET_KEY}"
        )
    if len(key) < MIN_KEY_BYTES:
        raise MissingKeyError(
            f"the key from {origin} is {len(key)} bytes long; at least {MIN_KEY_BYTES} are required "
            f"(FINESS numbers are public, so a short key can be guessed).\n{HOW_TO_SET_KEY}"
        )
    return key


def demo_mode() -> bool:
    """True when demo mode is switched on: the environment variable ``CYBEROBS_DEMO`` is ``1``.

    ``cyberobs run --demo`` sets it for the run and its kernels, ``make lab`` exports it and the test
    session sets it; nothing else (in particular no file of a dataset folder) switches demo mode on.
    """
    return os.environ.get(DEMO_ENV_VAR, "").strip() == "1"


def load_key(*, demo: bool = False, key: str | bytes | None = None) -> bytes:
    """Return the pseudonymisation key, or refuse to start with instructions.

    Parameters
    ----------
    demo : bool, default False
        Demo mode (``cyberobs run --demo``, which sets ``CYBEROBS_DEMO=1``): when no key is set anywhere,
        the public :data:`~cyberobs_lib.config.DEMO_KEY` is used, so that demo outputs are identical on
        every machine and in CI. Demo mode is never inferred from the files of a dataset folder.
    key : str or bytes, optional
        An explicit key (e.g. from a parameters file held outside the repository); wins over everything.

    Returns
    -------
    bytes
        The first key found in this order: ``key``; the environment variable ``CYBEROBS_KEY``; the file
        named by ``CYBEROBS_KEY_FILE``; ``~/.config/cyberobs/key``; then, in demo mode only, the demo key.
        A key that is set is always used, on the demo data as well (pseudonyms then follow that key).

    Raises
    ------
    MissingKeyError
        No key anywhere outside demo mode (the message says how to set one and that ``--demo`` exists
        for the bundled synthetic data), a key shorter than :data:`MIN_KEY_BYTES`, or the public demo key
        set as if it were a secret outside demo mode.
    UnsafeKeyFileError
        A key file that is missing, empty, or inside a git work tree.

    Notes
    -----
    Surrounding whitespace of a key (a trailing newline in a key file) is stripped. Empty environment
    variables count as unset. Issue 16: a stray ``truth.json`` in a real dataset folder used to switch the
    pseudonyms to the public key; nothing in the dataset folder is read here.

    Examples
    --------
    >>> load_key(key="0123456789abcdef0123")
    b'0123456789abcdef0123'
    """
    if key is not None:
        raw = (key.encode("utf-8") if isinstance(key, str) else bytes(key)).strip()
        return _checked(raw, origin="the key argument", demo=demo)
    from_env = os.environ.get(KEY_ENV_VAR, "").strip()
    if from_env:
        return _checked(from_env.encode("utf-8"), origin=f"${KEY_ENV_VAR}", demo=demo)
    key_file = os.environ.get(KEY_FILE_ENV_VAR, "").strip()
    if key_file:
        raw = _read_key_file(Path(key_file), origin=f"${KEY_FILE_ENV_VAR}")
        return _checked(raw, origin=key_file, demo=demo)
    user_file = USER_KEY_FILE.expanduser()
    if user_file.is_file():
        raw = _read_key_file(user_file, origin="the user key file")
        return _checked(raw, origin=str(user_file), demo=demo)
    if demo:
        return DEMO_KEY.encode("utf-8")
    raise MissingKeyError(
        "no pseudonymisation key found; the run will not start.\n"
        f"{HOW_TO_SET_KEY}\n"
        "To run on the bundled synthetic demo data without a key, use demo mode: `cyberobs run ... --demo` "
        f"(or set {DEMO_ENV_VAR}=1), which uses the public demo key (its pseudonyms protect nothing)."
    )


def pseudonymize(values: pd.Series, *, key: bytes, prefix: str = "E", length: int = 10) -> pd.Series:
    """Replace each value by a keyed pseudonym ``prefix + HMAC-SHA256(key, value)[:length]``.

    Parameters
    ----------
    values : pandas.Series
        Identifiers (FINESS, host, ...). Each is hashed as ``str(value)`` encoded in UTF-8, exactly as
        given: normalise (strip, upper-case) before calling.
    key : bytes
        The secret from :func:`load_key`.
    prefix : str, default "E"
        Marks the kind of pseudonym (``"E"`` establishment, ``"H"`` host, ...).
    length : int, default 10
        Number of hexadecimal characters kept (1 to 64).

    Returns
    -------
    pandas.Series
        Same index and name, object dtype; missing values stay missing.

    Raises
    ------
    PseudonymCollisionError
        Two distinct values of ``values`` share a truncated pseudonym (then raise ``length``).

    Notes
    -----
    HMAC (RFC 2104) with SHA-256 is computed once per distinct value and mapped back with
    :func:`pandas.factorize`, so the cost grows with the number of distinct values, not rows. The
    same key gives the same pseudonym in every table and every run (joins keep working).
    With ``length=10`` (40 bits) the chance of any collision among 40,000 establishments is about
    40,000² / 2⁴¹ ≈ 0.07 %; collisions are detected and raised, never silent. For hosts at national
    scale (10⁶ distinct) use ``length=16`` (64 bits): with 10 a collision is likely (≈ 45 %).
    Measured: 10⁷ rows with 38,000 distinct values in 1.7 s; with 10⁶ distinct values in 7.8 s.

    References
    ----------
    RFC 2104 (HMAC); RFC 4231 (HMAC-SHA256 test vectors).

    Examples
    --------
    >>> s = pd.Series(["what do ya want for nothing?", None, "what do ya want for nothing?"])
    >>> pseudonymize(s, key=b"Jefe", length=12).tolist()
    ['E5bdcc146bf60', None, 'E5bdcc146bf60']
    """
    if not isinstance(values, pd.Series):
        raise TypeError(f"values must be a pandas Series, not {type(values).__name__}")
    if not isinstance(key, bytes | bytearray) or not key:
        raise TypeError("key must be non-empty bytes (see load_key)")
    if not 1 <= int(length) <= 64:
        raise ValueError(f"length must be between 1 and 64 hexadecimal characters, not {length}")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    digests = np.array(
        [
            prefix + hmac.new(key, str(v).encode("utf-8"), hashlib.sha256).hexdigest()[:length]
            for v in uniques
        ],
        dtype=object,
    )
    if len(set(digests)) != len(digests):
        raise PseudonymCollisionError(
            f"{len(digests) - len(set(digests))} pseudonym collision(s) among {len(digests)} distinct values "
            f"with length={length}; use a longer length"
        )
    out = np.full(len(values), None, dtype=object)
    present = codes >= 0
    out[present] = digests[codes[present]]
    return pd.Series(out, index=values.index, name=values.name, dtype=object)


def pseudonymize_columns(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    key: bytes,
    prefix: str | Mapping[str, str] = "E",
    length: int = 10,
) -> pd.DataFrame:
    """Return a copy of ``frame`` with each of ``columns`` replaced by its keyed pseudonym.

    Parameters
    ----------
    frame : pandas.DataFrame
        Not modified.
    columns : sequence of str
        Columns to pseudonymise; all must exist.
    key : bytes
        The secret from :func:`load_key`.
    prefix : str or mapping, default "E"
        One prefix for all columns, or a ``{column: prefix}`` mapping (missing columns get ``"E"``).
        Columns that hold the same kind of identifier (``finess`` in two tables) must share a prefix
        so that their pseudonyms still join.
    length : int, default 10
        See :func:`pseudonymize`.

    Returns
    -------
    pandas.DataFrame
        Same shape, index and column order.

    Examples
    --------
    >>> f = pd.DataFrame({"finess": ["010000024"], "host": ["10.0.0.1"], "n": [3]})
    >>> out = pseudonymize_columns(f, ["finess", "host"], key=b"k" * 16, prefix={"host": "H"})
    >>> out["host"].str[0].tolist(), out["finess"].str.len().tolist(), out["n"].tolist()
    (['H'], [11], [3])
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"columns not in the frame: {missing}")
    out = frame.copy()
    for col in columns:
        col_prefix = prefix if isinstance(prefix, str) else prefix.get(col, "E")
        out[col] = pseudonymize(frame[col], key=key, prefix=col_prefix, length=length)
    return out
