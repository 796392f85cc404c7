"""Family names given as parameters: codes of the registry or their reader-facing labels, in French or English.

The report shows families by their label (``cyberobs_lib/data/labels.csv``: ``Army`` is *hôpitaux des
armées* in French, *army hospitals* in English), the tables by their code. A parameter may name a family
either way, whatever the case and accents (``["ehpad", "Hopitaux des armees"]``); :func:`resolve_families`
turns it into the codes the data uses, or says which value is unknown and what is accepted. The runner's
up-front parameter checks and the notebooks call it (no other implementation).
"""

from __future__ import annotations

from collections.abc import Iterable

from cyberobs_lib.l10n import CATALOG as LABELS
from cyberobs_lib.text import fold

LANGS = ("fr", "en")


def family_names(code: str, lang: str | None = None) -> list[str]:
    """The names a family may be given by: its code, then its label in ``lang`` (None: French and English).

    >>> family_names("Army")
    ['Army', 'hôpitaux des armées', 'army hospitals']
    >>> family_names("EHPAD", "fr")
    ['EHPAD']
    """
    langs = LANGS if lang is None else (lang,)
    names = [code]
    for each in langs:
        name = LABELS.get(code, {}).get(each)
        if name and name not in names:
            names.append(name)
    return names


def _accepted(available: list[str], lang: str | None) -> str:
    """The accepted values, for error messages: ``code (label, label)`` per family."""
    parts = []
    for code in available:
        labels = family_names(code, lang)[1:]
        parts.append(f"{code!r}" + (f" ({', '.join(repr(x) for x in labels)})" if labels else ""))
    return ", ".join(parts)


def _as_list(values: str | Iterable[str] | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    return [str(v) for v in values]


def resolve_families(
    values: str | Iterable[str] | None,
    available: Iterable[str],
    lang: str | None = None,
    *,
    parameter: str = "families",
) -> list[str]:
    """The family codes named by ``values`` (codes or French/English labels, case- and accent-insensitive).

    Parameters
    ----------
    values : str or list of str
        Family names as a user gave them (a notebook's ``families`` parameter); a single string is one
        family. Empty: ``[]`` (every family, for the callers).
    available : iterable of str
        The family codes of the dataset (e.g. ``data.establishments["family"]``); missing values ignored.
    lang : {"fr", "en"}, optional
        Language of the labels listed in the error message (None: both). Labels of both languages are
        accepted whatever ``lang``.
    parameter : str
        The parameter's name, which the error message starts with.

    Returns
    -------
    list of str
        The codes, in the order given, each once.

    Raises
    ------
    ValueError
        A value that names no family of ``available`` (or names two): the message names the value and
        lists the accepted values (codes and labels).

    Examples
    --------
    >>> fams = ["Army", "CH", "EHPAD", "Private clinic (MCO)"]
    >>> resolve_families(["ehpad", "Hopitaux des armees", "private clinics (MCO)", "CH"], fams)
    ['EHPAD', 'Army', 'Private clinic (MCO)', 'CH']
    >>> resolve_families("Cliniques privées (mco)", fams, "fr")
    ['Private clinic (MCO)']
    >>> resolve_families([], fams)
    []
    >>> resolve_families(["CHU"], ["CH", "EHPAD"], "en")
    Traceback (most recent call last):
    ...
    ValueError: families: unknown family 'CHU'; accepted values (codes, with their labels): 'CH' ('general hospitals (CH)'), 'EHPAD' ('nursing homes (EHPAD)')
    """
    if lang is not None and lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    codes = sorted({str(a) for a in available if a is not None and a == a and str(a).strip()})
    by_name: dict[str, set[str]] = {}
    for code in codes:
        for name in family_names(code):
            by_name.setdefault(fold(name), set()).add(code)
    out: list[str] = []
    for value in _as_list(values):
        found = by_name.get(fold(value), set())
        if len(found) != 1:
            what = "unknown family" if not found else f"ambiguous family (names {sorted(found)})"
            raise ValueError(
                f"{parameter}: {what} {value!r}; accepted values (codes, with their labels): "
                f"{_accepted(codes, lang) or '(no family in the dataset)'}"
            )
        code = found.pop()
        if code not in out:
            out.append(code)
    return out


def resolve_family(
    value: str, available: Iterable[str], lang: str | None = None, *, parameter: str = "reference"
) -> str:
    """One family code (e.g. the ``reference`` family), named by its code or label: see :func:`resolve_families`.

    >>> resolve_family("hôpitaux des armées", ["Army", "CH"])
    'Army'
    >>> resolve_family("", ["CH"])
    Traceback (most recent call last):
    ...
    ValueError: reference: unknown family ''; accepted values (codes, with their labels): 'CH' ('general hospitals (CH)')
    """
    return resolve_families([value], available, lang, parameter=parameter)[0]
