"""The pages of the studies 10_longitudinal, 20_cohorts and 30_incidents speak the reader's language only.

The approach of ``tests/test_l10n.py`` (its page check is reused: words of the other language, raw column
names of the published tables, Python-style numbers, debug lines), extended to these pages with the words and
names the English pages of these notebooks printed before their conversion ("Crude comparisons between
families", ``group_a``, ``pairwise fisher_exact``, "paired tests: 9 | pairs: 176"…), the numbers Python writes
(``0.308``, ``7.43e-14``) and what issues 19 and 21 ask these pages to say (one sign convention, the methods in
words, the national incident series with its sources, national coverage with the reference's date).

The fast tests read the code: every catalog key written in these notebooks and modules exists in both
languages, no language branch, no Markdown prose cell, no print in a check cell, words for every statistical
variant. The slow tests run the three notebooks on the demo data in French and in English (a published run, as
readers get it) and read their pages.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from test_l10n import page_problems, proper_names, published_columns, visible_text

from cyberobs_lib import l10n
from cyberobs_lib.config import NOTEBOOKS_DIR, PACKAGE_DATA, PACKAGE_DIR, PARAMETERS_DIR
from cyberobs_lib.studies import methods

NOTEBOOKS = ("10_longitudinal.ipynb", "20_cohorts.ipynb", "30_incidents.ipynb")
PAGES = tuple(n.replace(".ipynb", ".html") for n in NOTEBOOKS)
MODULES = tuple(
    PACKAGE_DIR / p
    for p in (
        "studies/methods.py",
        "studies/longitudinal.py",
        "studies/families.py",
        "studies/incidents.py",
        "studies/incident_exposure.py",
        "incident_files.py",
        "studies/indicators.py",
        "plots/longitudinal.py",
    )
)
#: What the English pages of these notebooks printed before their conversion (issue 18), on no page now.
OLD_ENGLISH = [
    "Crude comparisons between families", "Rates and counts", "pairwise", "still open", "baseline", "follow-up",
    "How to read it", "National totals per year", "Rates per family", "Year-over-year trends", "Caveats",
    "Three audits or more", "crude", "warning", "variant",
]  # fmt: skip
#: French words that are also column names of the published tables (the page check would read them as raw names).
FRENCH_COLUMN_WORDS = ("estimation", "dispersion", "estimable")
#: Proper names written the same in both languages (an English page keeps their accents).
PROPER_NAMES = ("CERT Santé", "Cramér")
#: Numbers as Python prints them: ``0.308`` on a French page, an exponent on any page.
PYTHON_NUMBERS = {
    "fr": [r"\b0\.\d{3}\b", r"\b\d+\.\d+\b", r"\de[-+]\d"],
    "en": [r"\de[-+]\d", r"\b\d+\.\d{4,}\b"],
}
LANGUAGE_BRANCH = re.compile(
    r"""lang\s*[!=]=\s*["'](fr|en)["']|["'](fr|en)["']\s*[!=]=\s*lang|\bif\s+lang\b(?!\s+is\s+(not\s+)?None)"""
)  # a missing lang tested against None is no choice of words
KEY_FUNCTIONS = {"text", "md", "md_text", "heading", "text_n"}


def studies_page_problems(html: str, lang: str, columns: set[str], ignore: tuple[str, ...] = ()) -> list[str]:
    """:func:`test_l10n.page_problems` of a page of 10/20/30, plus the old English texts of these pages on a
    French page and the numbers Python writes; French words that are column names are not raw names."""
    names = tuple(n for n in (*ignore, *PROPER_NAMES) if n.strip())  # an empty name would space out the page
    problems = page_problems(html, lang, columns - set(FRENCH_COLUMN_WORDS), ignore=names)
    seen = visible_text(html)
    for name in PROPER_NAMES:
        seen = seen.replace(name, " ")
    if lang == "fr":
        problems += [
            f"old English {w!r}"
            for w in OLD_ENGLISH
            if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", seen)
        ]
    for pattern in PYTHON_NUMBERS[lang]:
        problems += [f"Python number {m!r}" for m in re.findall(pattern, seen)[:2]]
    return sorted(set(problems))


# --------------------------------------------------------------------------------------------------
# The code of the pages
# --------------------------------------------------------------------------------------------------
def _cells(notebook: str) -> list[dict]:
    return json.loads((NOTEBOOKS_DIR / notebook).read_text(encoding="utf-8"))["cells"]


def _sources() -> list[tuple[str, str]]:
    found = [(p.name, p.read_text(encoding="utf-8")) for p in MODULES]
    for nb in NOTEBOOKS:
        found += [
            (f"{nb} cell {i}", "".join(c["source"]))
            for i, c in enumerate(_cells(nb))
            if c["cell_type"] == "code"
        ]
    return found


def _literal_keys(source: str) -> list[tuple[str, str, int]]:
    """(function, key, line) of every catalog call with a literal key, and every ``label:<prefix>`` format."""
    keys = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args:
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = node.args[0]
            if func in KEY_FUNCTIONS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                keys.append((func, first.value, node.lineno))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("label:"):
            keys.append(("prefix", node.value[6:], node.lineno))
        if isinstance(node, ast.Dict):  # show(columns={...}): heading keys of the catalog
            for value in node.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str) and "." in value.value:
                    if re.fullmatch(r"[a-z]+(\.[a-z_]+)+", value.value):
                        keys.append(("heading", value.value, node.lineno))
    return keys


def test_every_catalog_key_of_the_pages_exists_in_both_languages():
    used = 0
    for where, source in _sources():
        for func, key, line in _literal_keys(source):
            used += 1
            if func == "prefix":
                assert any(k.startswith(key) for k in l10n.CATALOG), (
                    f"{where}:{line}: no key starts with {key!r}"
                )
            elif func == "text_n":
                assert {f"{key}.one", f"{key}.other"} <= set(l10n.CATALOG), f"{where}:{line}: {key}"
            else:
                assert key in l10n.CATALOG, f"{where}:{line}: {func}({key!r}) is in no labels*.csv"
                assert l10n.CATALOG[key]["fr"] and l10n.CATALOG[key]["en"], key
    assert used > 150  # the scan found the calls


def test_the_studies_catalog_is_a_file_of_its_own():
    """labels_studies.csv: header key,fr,en; no key of labels.csv; no '#' (the loader reads it as a comment)."""
    own = pd.read_csv(PACKAGE_DATA / "labels_studies.csv", comment="#", dtype=str, keep_default_na=False)
    main = pd.read_csv(PACKAGE_DATA / "labels.csv", comment="#", dtype=str, keep_default_na=False)
    assert list(own.columns) == ["key", "fr", "en"]
    assert not set(own["key"]) & set(main["key"])
    assert own["key"].str.match(r"^(lon|coh|inc|st)\.").all()  # namespaced: no collision with labels.csv
    text = (PACKAGE_DATA / "labels_studies.csv").read_text(encoding="utf-8")
    assert "#" not in "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def test_no_language_branch_markdown_prose_or_debug_print():
    for where, source in _sources():
        for n, line in enumerate(source.splitlines(), 1):
            assert not LANGUAGE_BRANCH.search(line), f"{where}:{n}: {line.strip()}"
    for nb in NOTEBOOKS:
        cells = _cells(nb)
        assert not [c for c in cells if c["cell_type"] == "markdown"], nb  # prose comes from the catalog
        for cell in cells:
            body = "".join(cell["source"])
            assert "print(" not in body, f"{nb} {cell['id']}: a reader's page prints nothing"
            assert "NBVAL_CHECK_OUTPUT" not in body


def test_every_statistical_variant_has_words_in_both_languages():
    """The variants the statistics write (stats.paired, groups, proportions, survival, models) are said in
    words; a row never shows its code."""
    rows = [
        ("wilcoxon_signed_rank", "asymptotic+cc;method=auto;zeros=79"), ("wilcoxon_signed_rank", "exact;method=auto"),
        ("wilcoxon_signed_rank", "exact_conditional;method=auto"), ("sign", "exact_binomial;zeros=3"),
        ("mcnemar", "midp;statistic=b"), ("mcnemar", "exact;statistic=b"), ("mcnemar", "asymptotic_cc;statistic=b"),
        ("friedman", "asymptotic_chi2+ties;incomplete_dropped=0"), ("cochran_q", "asymptotic_chi2;incomplete_dropped=0"),
        ("gee_trend", "poisson;exchangeable"), ("logrank", "Mantel-Haenszel chi2, asymptotic; k=14 groups"),
        ("logrank", "pairwise Mantel-Haenszel chi2"), ("chi_square", "pearson;choice=auto"),
        ("chi_square", "pairwise pearson;choice=auto"), ("fisher_exact", "pairwise fisher_exact;choice=auto"),
        ("fisher_exact", "fisher_freeman_halton_monte_carlo;n_resamples=100000"),
        ("kruskal_wallis", "asymptotic chi2, tie-corrected;k=4 groups"),
        ("kruskal_wallis", "permutation_monte_carlo;n_resamples=10"), ("mann_whitney", "asymptotic+cc;ties=99"),
        ("mann_whitney", "exact;ties=0"), ("mann_whitney", "exact_conditional;ties=4"),
        ("cochran_armitage_trend", "asymptotic;variance=N (prop.trend.test)"),
        ("negative_binomial", "NB2, alpha by ML, log-exposure offset"), ("poisson", "GLM log link"),
        ("logistic", "GLM logit link"), ("logistic", "Firth penalised likelihood (separation), logit link"),
    ]  # fmt: skip
    for test, variant in rows:
        key = methods.method_key(test, variant)
        assert l10n.has(f"st.method.{key}") and l10n.has(f"st.short.{key}"), (test, variant, key)
        for lang in l10n.LANGS:
            assert "_" not in methods.method_words(test, variant, lang), (test, variant, lang)
    assert methods.method_words("mcnemar", "midp;statistic=b", "fr").startswith("McNemar mid-P")


def test_the_page_check_finds_what_the_old_pages_showed():
    """Lines of the pages before their conversion (issue 18) are all found."""
    old = (
        "<html><body><h2>Crude comparisons between families</h2><p>Rates and counts: Kruskal–Wallis</p>"
        "<table><tr><th>group_a</th><th>median_ci_low</th></tr><tr><td>pairwise fisher_exact</td>"
        "<td>0.308</td><td>7.43e-14</td><td>still open</td></tr></table><p>paired tests: 9 | pairs: 176</p>"
        "<p>r (positive = fewer at follow-up), McNemar's test (exact when discordant pairs are few)</p></body></html>"
    )
    found = " ".join(studies_page_problems(old, "fr", {"group_a", "median_ci_low", "variant"}))
    for expected in ("Crude comparisons", "group_a", "median_ci_low", "pairwise", "0.308", "e-1", "still open",
                     "tests: 9 | pairs", "follow-up"):  # fmt: skip
        assert expected in found, expected
    clean = "<html><body><p>Évolution suivi − initial : r = -0,69 (IC 95 % : -0,75 à -0,61), p < 0,001.</p></body></html>"
    assert studies_page_problems(clean, "fr", {"group_a"}) == []
    assert studies_page_problems("<p>Cramér's V = 0.22 (ANS / CERT Santé)</p>", "en", set()) == []


# --------------------------------------------------------------------------------------------------
# The pages a reader reads
# --------------------------------------------------------------------------------------------------
def _spec(root: Path) -> Path:
    """The notebooks 10, 20 and 30 of the annual study (its parameters), as a published run."""
    import yaml

    annual = yaml.safe_load((PARAMETERS_DIR / "annual_2025.yaml").read_text(encoding="utf-8"))
    chosen = [n for n in annual["notebooks"] if n["notebook"] in NOTEBOOKS]
    spec = {
        **{k: v for k, v in annual.items() if k not in ("notebooks", "description")},
        "run_name": "studies",
        "notebooks": chosen,
    }
    path = root / "studies.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def study_runs(tmp_path_factory) -> dict[str, Path]:
    """10/20/30 on the demo data, in French and in English: the folder of each run's pages (``<out>.failed``
    when the disclosure check failed: the pages are read all the same, every notebook must have run)."""
    from cyberobs_lib.runner import run_study

    root = tmp_path_factory.mktemp("studies_runs")
    spec = _spec(root)
    folders = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MPLBACKEND", "Agg")
        env.setenv("CYBEROBS_WORK_DIR", str(root / "work"))
        for lang in ("fr", "en"):
            out = root / f"studies_{lang}"
            result = run_study(spec, out=out, progress=False, demo=True, overrides=[f"lang={lang}"])
            assert all(o.ok for o in result.outcomes), [
                (o.notebook, o.error) for o in result.outcomes if not o.ok
            ]
            folders[lang] = out if out.is_dir() else out.with_name(out.name + ".failed")
    return folders


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("page", PAGES)
def test_study_pages_speak_the_readers_language_only(study_runs, lang, page):
    folder = study_runs[lang]
    html = (folder / page).read_text(encoding="utf-8")
    assert studies_page_problems(html, lang, published_columns(folder), ignore=proper_names(folder)) == []


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_pages_say_one_direction_and_their_methods(study_runs, lang):
    """Issue 19 on the page: the sign convention follow-up − baseline in words, the McNemar variant, the count
    model and its choice, no opposite convention anywhere."""
    seen = {p: visible_text((study_runs[lang] / p).read_text(encoding="utf-8")) for p in PAGES}
    longitudinal, cohorts = seen["10_longitudinal.html"], seen["20_cohorts.html"]
    assert {"fr": "suivi − initial", "en": "follow-up − baseline"}[lang] in longitudinal
    assert l10n.text("st.method.mcnemar.midp", lang) in longitudinal
    assert not re.search(r"baseline − follow-up|initial − suivi|positive = fewer", longitudinal)
    assert l10n.text("st.short.mann_whitney.exact_conditional", lang) in cohorts  # small families: exact
    model = [
        l10n.CATALOG[k][lang].split(" :")[0].split(":")[0]
        for k in ("st.model.nb", "st.model.poisson", "st.model.not_estimable")
    ]
    assert any(m in cohorts for m in model)


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_pages_place_the_dataset_in_the_national_frame(study_runs, lang):
    """Issue 21 on the page: every published national declaration total and its source on 30; the FINESS date
    of the national coverage on 20."""
    from cyberobs_lib.l10n import fmt_date, fmt_number
    from cyberobs_lib.reference import incident_series, reference_info

    incidents = visible_text((study_runs[lang] / "30_incidents.html").read_text(encoding="utf-8"))
    series = incident_series()
    for value in series.loc[series["measure"] == "incidents_declared", "value"]:
        assert fmt_number(value, lang).replace("\u202f", " ") in incidents
    for urls in series["source_url"]:
        assert all(url in incidents for url in urls.split(" ; ")), urls
    cohorts = visible_text((study_runs[lang] / "20_cohorts.html").read_text(encoding="utf-8"))
    assert fmt_date(reference_info()["finess_date"], lang) in cohorts
