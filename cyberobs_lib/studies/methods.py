"""Statistical methods in the reader's words: which test, computed how, which model and why.

The tests tables (``tests.csv`` vocabulary) say in ``variant`` how each p-value was computed
(``asymptotic+cc;method=auto;…``, ``midp;statistic=b``, ``pairwise fisher_exact;choice=auto(…)``), and the
count-model tables say in ``model``/``model_choice`` which model was fitted and why. A reader of the report
reads the same facts in words, in French or English, from the catalog (``cyberobs_lib/data/labels_studies.csv``,
keys ``st.*``; see :mod:`cyberobs_lib.l10n`):

* :func:`method_key` and :func:`method_words` — the computation of one row (``mcnemar`` + ``midp`` → "McNemar
  mid-P");
* :func:`methods_markdown` — Markdown bullets: each method used and the measures it served, then the
  multiplicity adjustment;
* :func:`effect_text` — an effect size written with its kind ("r = −0,69", "−12,0 points");
* :func:`reader_tests_table` — a tests table reduced to eight columns written for readers (the report's
  appendix tables; the full table stays in ``tables/``);
* :func:`count_model_words` and :func:`logistic_words` — the model fitted for an outcome and why (likelihood-
  ratio test of overdispersion, Firth's penalised likelihood under separation), or why none could be.

Only this module turns the statistical vocabulary of :mod:`cyberobs_lib.stats` into words; the tables keep
their codes. A variant the catalog has no words for falls back to the test's name (never to the code).
"""

from __future__ import annotations

import ast
import math
import re

import pandas as pd

from cyberobs_lib.l10n import (
    fmt_list,
    fmt_number,
    fmt_percent,
    fmt_pvalue,
    fmt_range,
    has,
    label,
    text,
    text_n,
    with_interval,
)
from cyberobs_lib.markup import escape_markdown

#: No-break space: the cells of effect sizes and intervals stay on one line.
NBSP = "\u00a0"
#: Word joiner: no line break beside the en dash of a range.
WORD_JOINER = "\u2060"
#: Effect kinds that are differences of shares: written in percentage points.
POINT_EFFECTS = ("risk_difference", "paired_difference_of_proportions", "trend_slope_per_score_unit")
#: Effect kinds that are ratios: written without sign, 2 decimals.
RATIO_EFFECTS = ("rate_ratio", "odds_ratio", "rate_ratio_per_audit", "rate_ratio_per_year")
#: Columns of :func:`reader_tests_table`, in order (at most 8: a page's width).
READER_COLUMNS = ("metric", "comparison", "test", "n", "effect_size", "ci", "p_value", "p_adjusted")
#: Heading keys of :func:`reader_tests_table`' columns for :func:`cyberobs_lib.report.show`.
READER_HEADINGS = {
    "metric": "metric",
    "comparison": "st.col.comparison",
    "test": "st.col.method",
    "n": "n",
    "effect_size": "effect_size",
    "ci": "ci",
    "p_value": "p_value",
    "p_adjusted": "p_adjusted",
}


def is_undefined(variant: object) -> bool:
    """Whether a ``variant`` says that its test could not be computed (``undefined…``, ``not estimable…``).

    >>> is_undefined("undefined: no_pairs;min_days=90"), is_undefined("midp;statistic=b"), is_undefined(None)
    (True, False, False)
    """
    v = str(variant) if variant is not None and variant == variant else ""
    return v.startswith(("undefined", "not estimable"))


def method_key(test: object, variant: object) -> str:
    """The kind of computation of a tests row: ``<test>.<kind>`` (a catalog key after ``st.method.``), or
    ``<test>`` when the variant names none the catalog knows.

    >>> method_key("mcnemar", "midp;statistic=b;incomplete_dropped=0")
    'mcnemar.midp'
    >>> method_key("wilcoxon_signed_rank", "asymptotic+cc;method=auto;zeros=3")
    'wilcoxon_signed_rank.asymptotic_cc'
    >>> method_key("fisher_exact", "pairwise fisher_freeman_halton_monte_carlo;n_resamples=10")
    'fisher_exact.monte_carlo'
    >>> method_key("kruskal_wallis", "asymptotic chi2, tie-corrected;k=4 groups")
    'kruskal_wallis.asymptotic'
    """
    test = str(test)
    v = str(variant) if variant is not None and variant == variant else ""
    pairwise = v.startswith("pairwise")
    first = v.removeprefix("pairwise").strip().split(";")[0].strip()
    kind = {
        "asymptotic+cc": "asymptotic_cc",
        "pearson+yates": "yates",
        "fisher_freeman_halton_monte_carlo": "monte_carlo",
        "fisher_exact": "exact",
        "exact_binomial": "exact",
        "asymptotic_chi2+ties": "asymptotic",
        "asymptotic_chi2": "asymptotic",
        "asymptotic_t": "asymptotic",
    }.get(first, first)
    if first.startswith("asymptotic chi2") or first.startswith("Mantel-Haenszel"):
        kind = "asymptotic"
    if first.startswith("permutation"):
        kind = "permutation"
    if test == "cochran_armitage_trend":
        kind = "linear_by_linear" if "linear-by-linear" in v else "asymptotic"
    if test in ("negative_binomial", "poisson", "logistic", "quasi_poisson"):
        kind = "firth" if "Firth" in v else "ml"
    if test == "gee_trend":
        kind = "poisson"
    if test == "logrank":
        kind = "pairwise" if pairwise else "asymptotic"
    return f"{test}.{kind}" if has(f"st.method.{test}.{kind}") else test


def method_words(test: object, variant: object, lang: str = "fr", *, short: bool = False) -> str:
    """The method of a tests row in words (``st.method.<test>.<kind>`` of the catalog), else the test's name;
    ``short``: the few words of a table cell (``st.short.<test>.<kind>``).

    >>> method_words("mcnemar", "midp;statistic=b", "en")
    'McNemar mid-P test'
    >>> method_words("mann_whitney", "exact_conditional;ties=4", "fr")
    'Mann–Whitney, exact conditionnel aux ex-aequo'
    >>> method_words("wilcoxon_signed_rank", "asymptotic+cc;method=auto", "en", short=True)
    'Wilcoxon, normal approximation'
    """
    key = method_key(test, variant)
    if short and has(f"st.short.{key}"):
        return text(f"st.short.{key}", lang)
    if has(f"st.method.{key}"):
        return text(f"st.method.{key}", lang)
    if has(f"st.test.{key}"):
        return text(f"st.test.{key}", lang)
    return label(key, lang)


def metric_words(metric: object, lang: str = "fr") -> str:
    """A measure of a tests table in words: ``st.metric.<metric>`` of the catalog, else its label.

    >>> metric_words("time_to_fix_by_family", "en"), metric_words("no_protection", "fr")
    ('time to fix, between families', 'aucun mécanisme de protection')
    """
    key = f"st.metric.{metric}"
    return text(key, lang) if has(key) else label(metric, lang)


def adjustment_words(adjust_method: object, lang: str = "fr") -> str:
    """The multiplicity adjustment of a tests row in a sentence ("" when none).

    >>> adjustment_words("holm within metric", "en")[:40]
    'p-values of the pairwise comparisons adj'
    """
    m = str(adjust_method) if adjust_method is not None and adjust_method == adjust_method else ""
    if not m or m == "None":
        return ""
    method = m.split()[0]
    scope = (
        "within_metric" if "within metric" in m else ("across_metrics" if "across metrics" in m else "rows")
    )
    name = text(f"st.adjust.{method}", lang) if has(f"st.adjust.{method}") else method
    return text(f"st.adjust.sentence.{scope}", lang, method=name)


def methods_markdown(tests: pd.DataFrame, lang: str = "fr", *, heading_key: str = "st.methods.head") -> str:
    """Markdown naming every method used in ``tests`` and the measures each served, then how the p-values
    were adjusted; "" when no row was computed.

    Rows that could not be computed are left to :func:`cyberobs_lib.studies.longitudinal.undefined_sentences`.

    >>> t = pd.DataFrame({"metric": ["no_protection", "has_critical"], "test": ["mcnemar", "mcnemar"],
    ...                   "variant": ["midp;statistic=b", "midp;statistic=b"], "adjust_method": "fdr_bh"})
    >>> print(methods_markdown(t, "en"))
    **Methods.**
    <BLANKLINE>
    - McNemar mid-P test: no protection mechanism and at least one critical finding.
    - p-values adjusted for multiple comparisons by the Benjamini–Hochberg (false discovery rate) method (column “adjusted p”).
    """
    if tests.empty or "test" not in tests.columns:
        return ""
    rows = tests[~tests["variant"].map(is_undefined)] if "variant" in tests.columns else tests
    if rows.empty:
        return ""
    keys = [method_key(t, v) for t, v in zip(rows["test"], rows.get("variant", pd.Series(index=rows.index)),
                                             strict=True)]  # fmt: skip
    lines = []
    for key in dict.fromkeys(keys):
        sub = rows[[k == key for k in keys]]
        words = method_words(sub["test"].iloc[0], sub["variant"].iloc[0] if "variant" in sub else "", lang)
        metrics = fmt_list([metric_words(m, lang) for m in dict.fromkeys(sub["metric"])], lang)
        lines.append(
            text("st.methods.item", lang, method=escape_markdown(words), metrics=escape_markdown(metrics))
        )
    if "adjust_method" in rows.columns:
        for adjust in dict.fromkeys(rows["adjust_method"].dropna().astype(str)):
            sentence = adjustment_words(adjust, lang)
            if sentence:
                lines.append(f"- {escape_markdown(sentence)}")
    return text(heading_key, lang) + "\n\n" + "\n".join(lines)


def _number(x: object) -> float:
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return value


def effect_text(value: object, kind: object, lang: str = "fr") -> str:
    """An effect size as a reader reads it, with its kind: differences of shares in percentage points,
    ratios with 2 decimals, correlations and deltas signed with 2 decimals; "" when missing.

    >>> effect_text(-0.688, "rank_biserial_paired", "fr"), effect_text(-0.1234, "risk_difference", "en")
    ('r\xa0=\xa0-0,69', '-12.3\xa0points')
    >>> effect_text(1.4405, "rate_ratio", "fr")
    '1,44'
    """
    v = _number(value)
    if math.isnan(v):
        return ""
    kind = str(kind) if kind is not None and kind == kind else ""
    if kind in POINT_EFFECTS:
        return _unbroken(text("st.points", lang, n=fmt_number(100 * v, lang, decimals=1)))
    if kind in RATIO_EFFECTS:
        return fmt_number(v, lang, decimals=2)
    number = fmt_number(v, lang, decimals=2)
    symbol = f"st.symbol.{kind}"
    if not has(symbol):
        return number
    return _unbroken(text("st.effect.with_symbol", lang, symbol=text(symbol, lang), value=number))


def _unbroken(cell: str) -> str:
    """A table cell kept on one line: its spaces made no-break spaces."""
    return cell.replace(" ", NBSP).replace("–", WORD_JOINER + "–" + WORD_JOINER)


def interval_text(low: object, high: object, kind: object, lang: str = "fr") -> str:
    """The interval of an effect in the effect's unit (points, ratio, coefficient); "" when missing.

    >>> interval_text(-0.16, -0.08, "risk_difference", "fr"), interval_text(1.1, 2.0, "odds_ratio", "en")
    ('-16,0\\xa0à\\xa0-8,0', '1.10\\u2060–\\u20602.00')
    """
    lo, hi = _number(low), _number(high)
    if math.isnan(lo) or math.isnan(hi):
        return ""
    scale = 100.0 if str(kind) in POINT_EFFECTS else 1.0
    return _unbroken(fmt_range(lo * scale, hi * scale, lang, decimals=1 if scale == 100 else 2))


def comparison_words(group_a: object, group_b: object, lang: str = "fr") -> str:
    """What a tests row compares, in words: ``a / b`` for a pair, the groups listed for a global test, a
    model term's level, baseline / follow-up.

    >>> comparison_words("Army", "Dialysis", "fr"), comparison_words("Army|Dialysis", None, "en")
    ('hôpitaux des armées / dialyse', 'army hospitals and dialysis')
    >>> comparison_words("family=Army", "Dialysis", "fr"), comparison_words("1|2|3", None, "en")
    ('hôpitaux des armées / dialyse', 'audits 1, 2 and 3')
    """

    def one(value: object) -> str:
        v = str(value)
        if "=" in v:
            term, _, level = v.partition("=")
            if level in ("True", "False"):
                return label(term, lang)
            return label(level, lang)
        return label(v, lang)

    a = "" if group_a is None or group_a != group_a else str(group_a)
    b = "" if group_b is None or group_b != group_b else str(group_b)
    if "|" in a:
        parts = a.split("|")
        if all(p.isdigit() for p in parts):
            return text("st.audit_ranks", lang, ranks=fmt_list(parts, lang))
        return fmt_list([label(p, lang) for p in parts], lang)
    if a and b and b not in ("False",):
        return text("st.versus", lang, a=one(a), b=one(b))
    if a == "audit_rank":
        return text("st.per_audit", lang)
    return one(a) if a else ""


def reader_tests_table(tests: pd.DataFrame, lang: str = "fr") -> pd.DataFrame:
    """A tests table (as published) reduced to :data:`READER_COLUMNS`, written for readers.

    ``metric`` and ``comparison`` in words, ``test`` the method in words (:func:`method_words`), ``n`` the
    units behind the row (``n_a`` + ``n_b`` for two groups), ``effect_size`` with its kind
    (:func:`effect_text`), ``ci`` its interval, ``p_value`` and ``p_adjusted`` kept as numbers (formatted by
    :func:`cyberobs_lib.report.show`). Rows covered by statistical secrecy say so in ``effect_size``; rows
    that could not be computed say "not computed". Show it with ``columns=READER_HEADINGS``.
    """
    out = []
    for r in tests.to_dict("records"):
        kind = r.get("effect_size_kind")
        secret = bool(r.get("suppressed")) and str(r.get("suppressed")).lower() in ("true", "1")
        if secret:
            effect = text("st.secret", lang)
        elif is_undefined(r.get("variant")):
            effect = text("st.not_computed", lang)
        else:
            effect = effect_text(r.get("effect_size"), kind, lang)
        n_a, n_b = _number(r.get("n_a")), _number(r.get("n_b"))
        two = (
            r.get("group_b") is not None
            and r.get("group_b") == r.get("group_b")
            and "=" not in str(r.get("group_a"))
        )
        paired = str(r.get("group_a")) == "baseline"
        n = n_a + n_b if two and not paired and not math.isnan(n_b) else n_a
        out.append(
            {
                "metric": metric_words(r.get("metric"), lang),
                "comparison": comparison_words(r.get("group_a"), r.get("group_b"), lang),
                "test": method_words(r.get("test"), r.get("variant"), lang, short=True),
                "n": n,
                "effect_size": effect,
                "ci": interval_text(r.get("ci_low"), r.get("ci_high"), kind, lang),
                "p_value": _number(r.get("p_value")),
                "p_adjusted": _number(r.get("p_adjusted")),
            }
        )
    return pd.DataFrame(out, columns=list(READER_COLUMNS))


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------
_DF_RE = re.compile(r"(-?\d+) residual df < (\d+)")


def count_model_words(row: pd.Series | dict, lang: str = "fr", *, scale: bool = True) -> str:
    """The count model of one outcome in words: which model was fitted and why, or why none could be.

    ``row`` is one row of a count-model table (:func:`cyberobs_lib.stats.models.fit_count_model`, via
    ``cohorts.adjusted_rate_ratios``, or a yearly trend of :func:`cyberobs_lib.stats.models.fit_poisson_trend`):
    ``model``, ``model_choice``, ``overdispersion_p``, ``scale``, ``df_resid``. ``scale`` False: a quasi-Poisson
    model without its estimated scale (the same words for every group of a table that shows the scales).

    >>> count_model_words({"model": "negative_binomial", "overdispersion_p": 3e-47,
    ...                    "model_choice": "negative binomial (NB2, alpha by ML): LR test …"}, "en")[:46]
    'negative binomial: the likelihood-ratio test o'
    >>> count_model_words({"model": "not estimable",
    ...                    "model_choice": "not estimable: 3 residual df < 10 (overdispersion…)"}, "fr")[:40]
    'non estimable : 3 degrés de liberté rési'
    """
    get = row.get
    model = str(get("model", "") or "")
    choice = str(get("model_choice", "") or "")
    if model == "negative_binomial":
        if "requested" in choice:
            return text("st.model.nb_requested", lang)
        return text("st.model.nb", lang, p=fmt_pvalue(get("overdispersion_p"), lang))
    if model == "poisson":
        if "requested" in choice:
            return text("st.model.poisson_requested", lang)
        if "no residual df" in choice:
            return text("st.model.poisson_two_years", lang)
        return text("st.model.poisson", lang, p=fmt_pvalue(get("overdispersion_p"), lang))
    if model == "quasi_poisson":
        df = _number(get("df_resid"))
        dof = text_n("st.unit.df", df, lang) if not math.isnan(df) else "?"
        if not scale:
            return text("st.model.quasi_poisson_table", lang, df=dof)
        return text("st.model.quasi_poisson", lang, scale=fmt_number(get("scale"), lang, decimals=2), df=dof)
    if model == "not estimable" or choice.startswith("not estimable"):
        found = _DF_RE.search(choice)
        if found:
            return text("st.model.not_estimable.df", lang, df=fmt_number(int(found.group(1)), lang),
                        min_df=fmt_number(int(found.group(2)), lang))  # fmt: skip
        for token, key in (("rank-deficient", "rank"), ("did not converge", "converge"), ("a single year", "one_year"),
                           ("no event", "no_event"), ("first or last year", "edge_years")):  # fmt: skip
            if token in choice:
                return text(f"st.model.not_estimable.{key}", lang)
        return text("st.model.not_estimable", lang)
    if model == "not modelled":
        return text("st.model.not_modelled", lang)
    return label(model, lang) if model else ""


_NO_REFERENCE_RE = re.compile(
    r"reference family ('.*'|\".*\") has no audit with hosts in scope(?: in (\S+))?$"
)
_FEW_FAMILIES_RE = re.compile(r"fewer than two families with audits with hosts in scope(?: in (\S+))?$")
_NOT_FITTED_RE = re.compile(r"the count model of (\S+) could not be fitted: (.*)$", re.S)


def _not_modelled_reason(note: str, lang: str) -> str:
    """The reason of a ``not modelled`` rate-ratio row (``note``, written by
    :func:`cyberobs_lib.studies.cohorts.adjusted_rate_ratios`) in the reader's language."""
    if found := _NO_REFERENCE_RE.match(note):
        family = escape_markdown(label(ast.literal_eval(found.group(1)), lang))
        key = "coh.not_modelled.no_reference" + ("_period" if found.group(2) else "")
        return text(key, lang, family=family, period=found.group(2) or "")
    if found := _FEW_FAMILIES_RE.match(note):
        key = "coh.not_modelled.few_families" + ("_period" if found.group(1) else "")
        return text(key, lang, period=found.group(1) or "")
    if found := _NOT_FITTED_RE.match(note):
        return text("coh.not_modelled.not_fitted", lang, outcome=metric_words(found.group(1), lang),
                    error=escape_markdown(found.group(2)))  # fmt: skip
    return escape_markdown(note)


def not_modelled_sentence(rate_ratios: pd.DataFrame, lang: str = "fr") -> str:
    """The sentence saying why rate ratios were not computed, or "".

    Rows ``model`` = ``not modelled`` (no model at all: the reason in ``note``) and ``not estimable`` (the
    count model of one outcome cannot be estimated, e.g. too few residual degrees of freedom: the reason in
    ``model_choice``, said by :func:`count_model_words`). Names quoted in the reasons are escaped.

    >>> t = pd.DataFrame({"model": ["not modelled"], "outcome": ["n_findings"],
    ...                   "note": ["reference family 'CH' has no audit with hosts in scope in 2026"]})
    >>> not_modelled_sentence(t, "en")
    '*Rate ratios not computed: the reference family, general hospitals (CH), has no audit with hosts in scope in 2026.*'
    >>> not_modelled_sentence(t, "fr")
    "*Rapports de taux non calculés : la famille de référence, CH, n'a aucun audit avec des hôtes exposés en 2026.*"
    """
    if "model" not in rate_ratios.columns:
        return ""
    reasons: list[str] = []
    for note in rate_ratios.loc[rate_ratios["model"] == "not modelled", "note"].dropna().unique():
        reasons.append(_not_modelled_reason(str(note), lang))
    for _, row in rate_ratios[rate_ratios["model"] == "not estimable"].iterrows():
        reason = text("coh.not_modelled.outcome", lang, outcome=metric_words(row.get("outcome"), lang),
                      reason=count_model_words(row, lang))  # fmt: skip
        reasons.append(reason)
    reasons = list(dict.fromkeys(reasons))
    if not reasons:
        return ""
    return text("coh.not_modelled.sentence", lang, reasons="; ".join(reasons))


def models_markdown(models: pd.DataFrame, lang: str = "fr", *, group: str = "group") -> str:
    """Markdown bullets of the count models of a table with one model per group (yearly trends): each model
    in words (:func:`count_model_words`, scales left to the table) and the groups it served; "" for no row.

    >>> t = pd.DataFrame({"group": ["Army", "Dialysis"], "model": ["quasi_poisson", "not estimable"],
    ...                   "df_resid": [1, None], "model_choice": ["", "not estimable: no event"]})
    >>> print(models_markdown(t, "en"))
    **Methods.**
    <BLANKLINE>
    - Quasi-Poisson: the dispersion of each group is estimated (column “dispersion”) and the intervals use Student quantiles with 1 degree of freedom: army hospitals.
    - Not estimable: no event: dialysis.
    """
    if models.empty:
        return ""
    words = [sentence_case(count_model_words(r, lang, scale=False)) for r in models.to_dict("records")]
    lines = []
    for w in dict.fromkeys(words):
        names = fmt_list([label(g, lang) for g, x in zip(models[group], words, strict=True) if x == w], lang)
        lines.append(text("st.methods.item", lang, method=escape_markdown(w), metrics=escape_markdown(names)))
    return text("st.methods.head", lang) + "\n\n" + "\n".join(lines)


def logistic_words(rows: pd.DataFrame, lang: str = "fr") -> str:
    """How the odds ratios of a logistic table were estimated, in one sentence: maximum likelihood, and
    Firth's penalised likelihood for the levels where an outcome never (or always) occurs (separation).

    >>> t = pd.DataFrame({"estimation": ["ML", "Firth (separation)"], "level": ["CH", "EHPAD"], "term": "family"})
    >>> logistic_words(t, "en")[:60]
    'logistic regression by maximum likelihood; Firth penalised l'
    """
    est = rows["estimation"].astype(str) if "estimation" in rows.columns else pd.Series("", index=rows.index)
    firth = rows[est.str.startswith("Firth")]
    if firth.empty:
        return text("st.model.logistic", lang)
    levels = fmt_list([label(v, lang) for v in dict.fromkeys(firth["level"].dropna().astype(str))], lang)
    return text("st.model.logistic_firth", lang, levels=levels)


def sentence_case(words: str) -> str:
    """``words`` with a capital first letter, the rest as it is (names keep their case).

    >>> sentence_case("binomial négatif : Poisson ignorerait…")
    'Binomial négatif : Poisson ignorerait…'
    """
    return words[:1].upper() + words[1:]


def share_text(value: object, lang: str = "fr") -> str:
    """A share written in percent with one decimal ("" when missing): a table cell.

    >>> share_text(0.308, "fr"), share_text(float("nan"), "en")
    ('30,8\\xa0%', '')
    """
    v = _number(value)
    return "" if math.isnan(v) else fmt_percent(v, lang)


# --------------------------------------------------------------------------------------------------
# Reader views of result tables
# --------------------------------------------------------------------------------------------------
#: Indicators written in percent by :func:`indicator_table` (the others are numbers).
SHARE_INDICATORS = ("no_protection", "has_critical", "exposes_remote_admin", "has_kev", "audit_coverage",
                    "national_coverage", "declaring_share", "malicious_share", "impact_on_care_share")  # fmt: skip


def value_with_interval(
    value: object, low: object, high: object, *, share: bool, lang: str = "fr", decimals: int | None = None
) -> str:
    """One table cell: a value and its interval in brackets ("27,0 % (14–44 %)"), each unbroken, the interval
    under the value when the column is narrow;
    "" when the value is missing; ``decimals`` of the value (default 1 for a share, 2 for a number).

    >>> value_with_interval(0.27, 0.14, 0.44, share=True, lang="en"), value_with_interval(1.234, 1.1, 1.4, share=False, lang="fr")
    ('27.0% (14%\\u2060–\\u206044%)', '1,23 (1,10\\u2060–\\u20601,40)')
    """
    v = _number(value)
    if math.isnan(v):
        return ""
    places = (1 if share else 2) if decimals is None else decimals
    shown = fmt_percent(v, lang, decimals=places) if share else fmt_number(v, lang, decimals=places)
    lo, hi = _number(low), _number(high)
    if math.isnan(lo) or math.isnan(hi):
        return _unbroken(shown)
    bounds = fmt_range(
        lo, hi, lang, kind="percent" if share else "number", decimals=None if share else places
    )
    # the value and its interval each on one line; a narrow column may put the interval under the value
    return _unbroken(text("st.value_ci", lang, value=shown, ci=bounds)).replace(NBSP + "(", " (", 1)


def indicator_table(indicators: pd.DataFrame, period: object, lang: str = "fr", *,
                    indicators_shown: tuple[str, ...] | None = None, count_from: str | None = None) -> pd.DataFrame:  # fmt: skip
    """The indicators of one period as a reader's table: one row per group, one column per indicator holding
    the value and its interval (:func:`value_with_interval`; "secret" where the cell is covered by
    statistical secrecy), and ``n_establishments`` (the establishments behind the group's ``count_from``
    indicator; default the first shown).

    ``indicators`` is an ``indicators.csv`` table as published. Groups keep their table order, ``all`` last;
    ``suppressed`` is true when every cell of the group is.

    >>> t = pd.DataFrame({"indicator": ["has_critical", "findings_per_host"], "group": "Army", "period": "2025",
    ...                   "n_establishments": [12, 12], "value": [0.25, 1.5], "ci_low": [0.1, 1.2],
    ...                   "ci_high": [0.5, 1.9], "suppressed": False})
    >>> indicator_table(t, 2025, "en").iloc[0].astype(str).tolist()
    ['Army', '12', '25.0% (10%\\u2060–\\u206050%)', '1.50 (1.20\\u2060–\\u20601.90)', 'False']
    """
    rows = indicators[indicators["period"].astype(str) == str(period)]
    names = list(indicators_shown or dict.fromkeys(rows["indicator"]))
    groups = [g for g in dict.fromkeys(rows["group"]) if g != "all"] + (
        ["all"] if "all" in set(rows["group"]) else []
    )
    out = []
    for group in groups:
        sub = rows[rows["group"] == group].set_index("indicator")
        hidden = (
            sub["suppressed"].astype("boolean").fillna(False).astype(bool)
            if "suppressed" in sub
            else pd.Series(False, index=sub.index)
        )
        record: dict[str, object] = {"group": group}
        counted = [count_from] if count_from in sub.index else [n for n in names if n in sub.index][:1]
        first = sub.loc[counted, "n_establishments"]
        record["n_establishments"] = (
            first.iloc[0] if len(first) and not hidden.get(first.index[0], False) else pd.NA
        )
        for name in names:
            if name not in sub.index:
                record[name] = ""
            elif hidden[name]:
                record[name] = text("st.secret_cell", lang)
            else:
                r = sub.loc[name]
                record[name] = value_with_interval(r["value"], r["ci_low"], r["ci_high"],
                                                   share=name in SHARE_INDICATORS, lang=lang)  # fmt: skip
        record["suppressed"] = bool(hidden.reindex(names, fill_value=False).astype(bool).all())
        out.append(record)
    return pd.DataFrame(out, columns=["group", "n_establishments", *names, "suppressed"])


def secret(table: pd.DataFrame) -> pd.Series:
    """Which rows of a table the publication policy covered by statistical secrecy (its ``suppressed``
    column; none in a confidential run's tables, which have no such column).

    >>> secret(pd.DataFrame({"suppressed": [True, None]})).tolist(), secret(pd.DataFrame({"x": [1]})).tolist()
    ([True, False], [False])
    """
    if "suppressed" not in table.columns:
        return pd.Series(False, index=table.index)
    return table["suppressed"].astype("boolean").fillna(False).astype(bool)


def with_ci(frame: pd.DataFrame, lang: str = "fr", **options) -> pd.DataFrame:
    """:func:`cyberobs_lib.report.with_interval` with its interval column kept on one line in a table cell
    (no break at the spaces or beside the dash); ``options`` as there (``low``, ``high``, ``name``, ``kind``,
    ``decimals``).

    >>> with_ci(pd.DataFrame({"ci_low": [0.241], "ci_high": [0.43]}), "fr", decimals=1)["ci"].tolist()
    ['24,1\\xa0%\\u2060–\\u206043,0\\xa0%']
    """
    name = options.get("name", "ci")
    out = with_interval(frame, lang, **options)
    return out.assign(**{name: out[name].map(_unbroken)})
