"""The reader's language: locale formatting, a complete catalog, and pages that speak one language only.

The last tests run the annual study on the demo data in French and in English (slow) and read the pages of
the converted notebooks (00_data_quality, 40_annual_summary) and one establishment report (50) as a reader
would: the visible text and the images' alternative text, searched for words of the other language, raw
column names of the published tables, Python-style numbers and debug lines.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from cyberobs_lib import l10n
from cyberobs_lib.config import NOTEBOOKS_DIR, PACKAGE_DIR, PARAMETERS_DIR
from cyberobs_lib.l10n import (
    fmt_ci,
    fmt_date,
    fmt_list,
    fmt_number,
    fmt_percent,
    fmt_pvalue,
    fmt_range,
    share_in_words,
    text,
    text_n,
)

NNBSP, NBSP = "\u202f", "\u00a0"  # narrow no-break space (French thousands), no-break space (before %)

#: Files converted to the catalog: no language branch may come back in them.
CONVERTED_MODULES = [
    PACKAGE_DIR / p
    for p in (
        "l10n.py",
        "report.py",
        "studies/annual.py",
        "studies/data_quality.py",
        "studies/establishment.py",
        "plots/__init__.py",
        "plots/cohorts.py",
        "plots/incidents.py",
    )
]
CONVERTED_NOTEBOOKS = [
    NOTEBOOKS_DIR / n
    for n in ("00_data_quality.ipynb", "40_annual_summary.ipynb", "50_establishment_report.ipynb")
]
#: The catalog functions whose first argument is a key (``label`` only for literal keys: data values fall back).
KEY_FUNCTIONS = {"text", "md", "md_text", "heading", "label", "text_n"}


# --------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------
def test_numbers_in_both_languages():
    assert (
        fmt_number(1230, "fr") == f"1{NNBSP}230" and fmt_number(1230, "en") == f"1{NNBSP}230"
    )  # SI grouping, see l10n
    assert fmt_number(0.308, "fr") == "0,308" and fmt_number(0.308, "en") == "0.308"
    assert (
        fmt_number(1234567.891, "fr") == f"1{NNBSP}234{NNBSP}568"
    )  # 3 significant digits, at least the units
    assert fmt_number(2.5, "fr", decimals=2) == "2,50" and fmt_number(12.345, "en") == "12.3"
    assert fmt_number(7.43e-14, "en") == "0" and "e" not in fmt_number(1.23e-5, "fr")
    assert fmt_number(float("nan"), "fr") == fmt_number(None, "en") == "–"


def test_shares_p_values_and_intervals_in_both_languages():
    assert fmt_percent(0.308, "fr") == f"30,8{NBSP}%" and fmt_percent(0.308, "en") == "30.8%"
    assert fmt_percent(1 / 3, "fr", decimals=0) == f"33{NBSP}%"
    assert fmt_pvalue(7.43e-14, "fr") == "p < 0,001" and fmt_pvalue(7.43e-14, "en") == "p < 0.001"
    assert fmt_pvalue(0.0312, "fr") == "p = 0,031" and fmt_pvalue(0.0312, "en") == "p = 0.031"
    assert fmt_pvalue(0.0312, "fr", prefix=False) == "0,031" and fmt_pvalue(1.0, "en") == "p = 1.000"
    assert fmt_ci(0.24, 0.43, kind="percent", lang="fr") == f"IC 95{NBSP}% : 24{NBSP}%–43{NBSP}%"
    assert fmt_ci(0.24, 0.43, kind="percent", lang="en") == "95% CI: 24%–43%"
    assert fmt_ci(1.1, 2.0, kind="number", lang="fr", decimals=2) == f"IC 95{NBSP}% : 1,10–2,00"
    assert fmt_ci(0.1, 0.2, kind="percent", lang="en", level=0.9) == "90% CI: 10%–20%"
    assert fmt_range(-0.5, 0.25, "en", decimals=2) == "-0.50 to 0.25"  # a dash would read as a minus
    assert fmt_ci(None, 0.3, lang="fr").endswith("–")
    with pytest.raises(ValueError, match="kind"):
        fmt_ci(0.1, 0.2, kind="ratio")


def test_dates_lists_and_plurals_in_both_languages():
    assert fmt_date("2025-03-12", "fr") == "12 mars 2025" and fmt_date("2025-03-12", "en") == "12 March 2025"
    assert fmt_date(pd.Timestamp("2025-03-12 00:00:00"), "fr") == "12 mars 2025"
    assert fmt_date(pd.NaT, "fr") == "–"
    assert fmt_list(["CH", "EHPAD", "SSR"], "fr") == "CH, EHPAD et SSR"
    assert fmt_list(["CH", "EHPAD", "SSR"], "en") == "CH, EHPAD and SSR"  # en_GB: no serial comma
    assert text_n("unit.file", 0, "fr") == "0 fichier" and text_n("unit.file", 0, "en") == "0 files"
    assert text_n("unit.file", 1230, "fr") == f"1{NNBSP}230 fichiers"


def test_shares_in_words():
    assert share_in_words(0.33, "fr") == "Un tiers" and share_in_words(0.33, "en") == "A third"
    assert share_in_words(0.31, "fr") == "Près d'un tiers" and share_in_words(0.52, "en") == "More than half"
    assert share_in_words(0.0, "fr") == f"0{NBSP}%" and share_in_words(1.0, "en") == "100%"
    assert share_in_words(0.42, "fr") == f"42{NBSP}%"  # no simple fraction within 5 points
    for name in l10n.FRACTIONS:  # every fraction has its three wordings in both languages
        for key in (f"share.{name}", f"share.nearly.{name}", f"share.more.{name}"):
            assert text(key, "fr") and text(key, "en"), key


def test_unknown_text_keys_and_languages_fail_loudly():
    with pytest.raises(l10n.MissingTextError, match="no text 'annual.no_such_key'"):
        text("annual.no_such_key", "fr")
    with pytest.raises(ValueError, match="lang must be one of fr, en"):
        text("fmt.range", "de", low=1, high=2)
    with pytest.raises(KeyError):
        text("fmt.range", "fr")  # a placeholder not given


# --------------------------------------------------------------------------------------------------
# The catalog
# --------------------------------------------------------------------------------------------------
def test_every_catalog_entry_has_both_languages_and_the_same_placeholders():
    for key, entry in l10n.CATALOG.items():
        assert entry["fr"].strip() and entry["en"].strip(), f"{key}: empty text"
        assert l10n.placeholders(entry["fr"]) == l10n.placeholders(entry["en"]), key
        if key.endswith(".one"):
            assert key[:-4] + ".other" in l10n.CATALOG, key


def _keys_used(tree: ast.AST) -> list[tuple[str, str, int]]:
    """(function, key, line) of every call of a catalog function with a literal first argument, and of every
    ``label:<prefix>`` format (the prefix must name catalog keys)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = node.args[0]
            if func in KEY_FUNCTIONS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((func, first.value, node.lineno))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("label:"):
            found.append(("prefix", node.value[6:], node.lineno))
    return found


def _sources() -> list[tuple[str, str]]:
    sources = [
        (str(p.relative_to(PACKAGE_DIR.parent)), p.read_text(encoding="utf-8")) for p in CONVERTED_MODULES
    ]
    for nb in CONVERTED_NOTEBOOKS:
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        for i, cell in enumerate(cells):
            if cell["cell_type"] == "code":
                sources.append((f"{nb.name} cell {i}", "".join(cell["source"])))
    return sources


def test_every_key_used_in_the_converted_modules_and_notebooks_exists_in_both_languages():
    used = 0
    for where, source in _sources():
        for func, key, line in _keys_used(ast.parse(source)):
            used += 1
            if func == "prefix":
                assert any(k.startswith(key) for k in l10n.CATALOG), (
                    f"{where}:{line}: no key starts with {key!r}"
                )
            elif func == "text_n":
                assert f"{key}.other" in l10n.CATALOG and f"{key}.one" in l10n.CATALOG, (
                    f"{where}:{line}: {key}"
                )
            else:
                assert key in l10n.CATALOG, f"{where}:{line}: {func}({key!r}) is not in labels.csv"
    assert used > 100  # the scan found the calls


def test_no_language_branch_in_the_converted_files():
    branch = re.compile(
        r"""lang\s*[!=]=\s*["'](fr|en)["']|["'](fr|en)["']\s*[!=]=\s*lang|["'](fr|en)["']\s+if\b"""
    )
    for where, source in _sources():
        for n, line in enumerate(source.splitlines(), 1):
            assert not branch.search(line), f"{where}:{n}: {line.strip()}"


def test_converted_notebooks_hold_no_prose_of_one_language():
    """Their prose is displayed by code cells from the catalog: no Markdown cell (it could not follow lang)."""
    for nb in CONVERTED_NOTEBOOKS:
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        assert not [c for c in cells if c["cell_type"] == "markdown"], nb.name


def test_every_validation_rule_and_named_value_has_reader_words():
    from cyberobs_lib.checks import RULES
    from cyberobs_lib.schema import SEVERITY_RANK

    for rule in RULES:
        assert f"rule.{rule}" in l10n.CATALOG, rule
    for value in [
        *SEVERITY_RANK,
        "complete",
        "incomplete",
        "failed",
        "error",
        "warning",
        "fixed",
        "still open",
    ]:
        assert value in l10n.CATALOG, value
    families = pd.read_csv(PACKAGE_DIR / "data" / "finess_categories.csv", dtype=str, comment="#")
    for family in families["family"].dropna().unique():
        assert family in l10n.CATALOG, family


# --------------------------------------------------------------------------------------------------
# The pages a reader reads
# --------------------------------------------------------------------------------------------------
#: Words that must not appear on a page of the other language (case-insensitive, whole words).
NOT_FRENCH = [
    "the", "share", "establishments", "warning", "still open", "Private clinic", "families", "family", "with",
    "and", "of", "findings", "suppressed", "small cell", "audited", "median", "rate", "yes", "not", "none",
    "headline", "remediation", "declared", "evolution", "reconciles", "structures audited", "this", "been",
]  # fmt: skip
NOT_ENGLISH = [
    "les", "des", "établissements", "part", "secret statistique", "structures auditées", "famille", "familles",
    "médiane", "oui", "non", "aucun", "avec", "sans", "ensemble", "vulnérabilités", "taux", "déclarations",
]  # fmt: skip
#: Column names that are also words of a French page (a heading "table", a "test", a "note").
FRENCH_WORDS = {
    "table",
    "test",
    "note",
    "audits",
    "port",
    "model",
    "message",
    "incidents",
    "statistique",
    "n",
    "estimation",
    "dispersion",
    "estimable",
}
PYTHON_LOOK = [r"\de[-+]\d", r"\bnan\b", r"\bNaN\b", r"\bNone\b", r"\bTrue\b",
               r"\bFalse\b", r"<NA>", r"\bNaT\b", r"00:00:00", r"\w+: \d+ \| \w+",
               # a warning or a traceback printed on the page ("RuntimeWarning: Mean of empty slice")
               r"\b[A-Z]\w*(?:Warning|Error): ", r"Traceback \(most recent call last\)", r"\.py:\d+: "]  # fmt: skip


def visible_text(html: str) -> str:
    """What a reader sees of a page: its title, the text of its body without scripts and styles, and the
    alternative text of its images (what a screen reader says)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style"]):
        tag.decompose()
    alts = [img.get("alt", "") for img in soup.find_all("img")]
    title = soup.title.get_text() if soup.title else ""
    body = soup.body.get_text(" ") if soup.body else soup.get_text(" ")
    return " ".join([title, body, *alts]).replace(NBSP, " ").replace(NNBSP, " ")


def _word(term: str, flags: int = re.IGNORECASE) -> re.Pattern:
    return re.compile(r"(?<![\w-])" + re.escape(term) + r"(?![\w-])", flags)


#: File names (``establishments.csv``, ``tables.xlsx``): identifiers a reader needs to find a file, not words.
FILE_NAME = re.compile(r"[\w./-]+\.(?:csv|xlsx|json|xml|nessus|parquet|txt|zip)\b", re.IGNORECASE)


def page_problems(html: str, lang: str, columns: set[str], ignore: tuple[str, ...] = ()) -> list[str]:
    """What a reader of ``lang`` should not find on a page: words of the other language, raw column names of
    the published tables (snake_case names in both languages; any name in French pages, except the names
    that are French words; case-sensitive: "BOM" is an acronym, "bom" a column), numbers written the Python
    way, debug lines. File names and the ``ignore`` values (proper names: scanners' vulnerability titles,
    official registry names) are left out of the search."""
    seen = FILE_NAME.sub(" ", visible_text(html))
    for value in ignore:
        seen = seen.replace(value, " ")
    problems = [f"word {w!r}" for w in (NOT_FRENCH if lang == "fr" else NOT_ENGLISH) if _word(w).search(seen)]
    if lang == "en" and re.search(r"[àâçéèêëîïôùûœ]", seen):
        problems.append(f"French letters: {sorted(set(re.findall(r'[àâçéèêëîïôùûœ]+', seen)))[:5]}")
    raw = {c for c in columns if "_" in c or re.search(r"\d", c)}
    if lang == "fr":
        raw |= {c for c in columns if c.isascii() and c.lower() not in FRENCH_WORDS}
    problems += [f"raw column name {c!r}" for c in sorted(raw) if _word(c, 0).search(seen)]
    if lang == "fr":
        # IPv4 addresses (the hosts of the confidential report) are written with dots in every language
        numbers = re.sub(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", " ", seen)
        problems += [f"Python number {m!r}" for m in re.findall(r"\b\d+\.\d+\b", numbers)[:3]]
    problems += [
        f"more decimals than a reader reads {m!r}" for m in re.findall(r"\b\d+[.,]\d{5,}\b", seen)[:3]
    ]
    for pattern in PYTHON_LOOK:
        problems += [f"Python look {m!r}" for m in re.findall(pattern, seen)[:2]]
    return problems


def published_columns(folder: Path) -> set[str]:
    """Every column name of the tables a run wrote under ``tables/``."""
    names: set[str] = set()
    for table in sorted((folder / "tables").glob("*.csv")):
        names |= set(pd.read_csv(table, nrows=0).columns)
    return names


def test_the_page_check_finds_what_a_reader_would_find():
    page = (
        "<html><head><title>Synthèse</title></head><body><p>Part des structures</p><table><tr><th>group_a</th>"
        "<td>0.308</td><td>1.23e+03</td></tr></table><p>headline indicators: 4 | year: 2025</p>"
        "<p>the share of establishments</p><img alt='No description has been provided for this image'>"
        "<pre>numpy/lib/_nanfunctions_impl.py:1213: RuntimeWarning: Mean of empty slice</pre></body></html>"
    )
    found = " ".join(page_problems(page, "fr", {"group_a", "value", "test"}))
    for expected in (
        "'the'",
        "'share'",
        "group_a",
        "0.308",
        "e+0",
        "headline",
        "'of'",
        "RuntimeWarning: ",
        ".py:1213: ",
    ):
        assert expected in found, expected
    assert "'test'" not in found  # a French word
    clean = (
        "<html><body><p>Un tiers des 85 structures auditées (33 %, IC 95 % : 24 %–43 %).</p></body></html>"
    )
    assert page_problems(clean, "fr", {"group_a", "value"}) == []
    assert page_problems(clean, "en", set())  # French on an English page


def proper_names(folder: Path) -> tuple[str, ...]:
    """Names no translation changes, longest first: the scanners' vulnerability titles of a report, the
    establishments' names, and the official names of the registry (FINESS categories, departments, regions)."""
    from cyberobs_lib.registry import load_categories, load_departments

    names = (
        set(load_categories()["label"])
        | set(load_departments()["name"])
        | set(load_departments()["region_name"])
    )
    names |= set(
        pd.read_csv(PACKAGE_DIR.parent / "data" / "demo" / "establishments.csv", dtype=str)["name"].dropna()
    )
    changes = folder / "tables" / "changes_last_pair.csv"
    if changes.is_file():
        names |= set(pd.read_csv(changes, dtype=str)["title"].dropna())
    names = {n.strip() for n in names if len(str(n).strip()) >= 3}  # an empty name would match everywhere
    return tuple(sorted(names, key=len, reverse=True))


def _run(out: Path, lang: str, spec: Path = PARAMETERS_DIR / "annual_2025.yaml", pages=()) -> Path:
    """Run ``spec`` in ``lang`` into ``out``; the folder of its pages (``<out>.failed`` when a check or another
    notebook failed: the pages of ``pages``, which must have run, are read all the same)."""
    from cyberobs_lib.runner import run_study

    result = run_study(spec, out=out, progress=False, demo=True, overrides=[f"lang={lang}"])
    failed = {o.notebook: o.error for o in result.outcomes if not o.ok}
    assert not {p.replace(".html", ".ipynb") for p in pages} & set(failed), failed
    return out if out.is_dir() else out.with_name(out.name + ".failed")


@pytest.fixture(scope="module")
def annual_runs(tmp_path_factory) -> dict[str, Path]:
    """The annual study on the demo data, in French and in English."""
    root = tmp_path_factory.mktemp("l10n_runs")
    pages = ("00_data_quality.html", "40_annual_summary.html")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MPLBACKEND", "Agg")
        env.setenv("CYBEROBS_WORK_DIR", str(root / "work"))
        return {lang: _run(root / f"annual_{lang}", lang, pages=pages) for lang in ("fr", "en")}


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("page", ["00_data_quality.html", "40_annual_summary.html"])
def test_annual_pages_speak_the_readers_language_only(annual_runs, lang, page):
    folder = annual_runs[lang]
    html = (folder / page).read_text(encoding="utf-8")
    problems = page_problems(html, lang, published_columns(folder))
    assert problems == [], problems


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_establishment_report_speaks_the_readers_language_only(tmp_path, lang, monkeypatch):
    import yaml

    monkeypatch.setenv("CYBEROBS_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    spec = tmp_path / "one.yaml"
    spec.write_text(
        yaml.safe_dump({"run_name": "one", "data": "data/demo", "published": False,
                        "notebooks": [{"notebook": "50_establishment_report.ipynb"}]}),
        encoding="utf-8",
    )  # fmt: skip
    folder = _run(tmp_path / "one", lang, spec, pages=["50_establishment_report.html"])
    html = (folder / "50_establishment_report.html").read_text(encoding="utf-8")
    problems = page_problems(html, lang, published_columns(folder), ignore=proper_names(folder))
    assert problems == []
    seen = visible_text(html)
    assert not re.search(r"\bregion \d", seen) and not re.search(
        r"\brégion \d", seen
    )  # region names, not codes
