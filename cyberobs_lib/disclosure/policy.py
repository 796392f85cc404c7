"""The publication policy: what each result table of a run is, declared once, applied by one publish step.

Every table a notebook saves has a declared *kind* here (:data:`POLICIES`), keyed by its name
(``tables/<name>.csv``):

* :class:`CellsPolicy` — one row per cell (indicator × group × period, or group × period): which
  population cells a row describes (:class:`Ref`), which column counts their establishments, which columns
  are keys (never blanked) and which are values derived from the cells (blanked with them);
* :class:`StatTestsPolicy` — one row per statistical test (``tests.csv`` vocabulary): the groups each row
  compares or covers (``group_a``/``group_b``, ``A|B|C`` for a global test, ``term=level`` for a model
  term), and the population they belong to;
* :class:`ModelPolicy` — regression tables (``rate_ratios``, ``odds_ratios``): one row per model term level
  against its reference;
* :class:`ExposurePolicy` — exposure × outcome 2 × 2 tables (``incidents_odds_ratios``): every interior
  cell is a set of establishments;
* :class:`DatasetPolicy` — tables about files and rows of the dataset, with no establishment cell
  (accounting, layouts, rejects): published as computed;
* :class:`RowsPolicy` — one row per establishment (``lifecycle``): refused in a published run, where an
  aggregate is published instead (``lifecycle_by_family``).

:func:`cyberobs_lib.report.publish_table` applies the policy of a table in a published run and refuses a
table whose name is not declared here (:class:`UnknownTableError`): a new table is published only once its
kind is declared. The thresholds are the observatory's: at least :data:`POLICY_MIN_CELL` establishments
behind every published cell (health-data practice; stricter than INSEE's 3 units), zero cells published,
counts of the public registry frame (FINESS) never suppressed.

References
----------
INSEE, *Guide du secret statistique* (2018), règles de diffusion des tableaux; Hundepool et al. (2012),
*Statistical Disclosure Control*, Wiley, ch. 4 (frequency tables, secondary suppression) and ch. 5
(output checking of analyses); SACRO ``acro`` (Green et al. 2023, *SACRO: Semi-Automated Checking of
Research Outputs*): threshold, dominance and residual-degrees-of-freedom checks of tables, regressions
and survival curves — a per-output checker with no run-level secondary suppression, hence not used here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cyberobs_lib import config

#: Publication floor (INTERFACES §2): a published run refuses a lower ``min_cell``.
POLICY_MIN_CELL: int = getattr(config, "POLICY_MIN_CELL", 5)

#: Columns that identify an establishment, an audit or a host: never in a published table (a
#: per-establishment table is refused; any other table carrying one is refused too).
IDENTIFYING_COLUMNS = (
    "establishment",
    "finess",
    "finess_ej",
    "name",
    "audit_id",
    "audit_from",
    "audit_to",
    "host",
    "hostname",
    "fqdn",
    "ip",
    "ip_address",
    "scan_id",
    "scan_file",
)

#: Columns counting establishments or units nested in them (audits, findings, pairs, events): a row whose
#: count is ``0 < n < min_cell`` is about fewer than ``min_cell`` establishments and is hidden whatever
#: its cell (a family of 10 with 4 critical findings: at most 4 establishments behind that row). Counts of
#: a public population (registry) are exempt, and so are the per-time counts of a life table (``events``
#: at one time of a Kaplan-Meier curve), declared in ``exempt``.
ROW_COUNT_COLUMNS = ("n_establishments", "n_a", "n_b", "n", "n_family", "n_reference", "n_exposed", "n_unexposed",
                     "declaring_structures", "n_declaring", "audited", "n_audited", "n_pairs", "n_audits",
                     "events", "events_exposed", "events_unexposed", "crude_n_known")  # fmt: skip

#: Columns of a tests table that describe the test, not its result (never blanked).
TEST_KEYS = ("study", "metric", "test", "variant", "group_a", "group_b", "adjust_method", "effect_size_kind",
             "effect_direction", "ci_method", "period", "suppressed")  # fmt: skip


class UnknownTableError(KeyError):
    """A published run saves a table whose kind the publication policy does not declare."""

    def __str__(self) -> str:  # KeyError quotes its message; say it plainly
        return str(self.args[0]) if self.args else ""


class PerEstablishmentTableError(ValueError):
    """A published run tries to save one row per establishment."""


class IdentifyingColumnError(ValueError):
    """A published table carries a column that identifies an establishment, an audit or a host."""


class MinCellBelowFloorError(ValueError):
    """A published run asks for a ``min_cell`` below :data:`POLICY_MIN_CELL`."""


@dataclass(frozen=True)
class Ref:
    """A population cell described by every row of a table (or by the rows of one indicator).

    Parameters
    ----------
    population : str
        ``audited`` (establishments audited in the period, complete audits), ``registry`` (the frame,
        public), ``declaring`` (structures that declared an incident), ``paired`` (establishments with
        two audits far enough apart), ``followed`` (establishments whose findings are followed to their
        fix), ``incident_exposure`` (the exposure × incident 2 × 2 of one exposure).
    group, period : str
        Column holding the cell's group / period, or ``"=value"`` for a constant (``"=all"``).
    count : str, optional
        Column counting the cell's establishments; registered in the ledger (None: the row only looks the
        cell up, e.g. a rate whose count another table gives).
    count_from_share : (str, str), optional
        The count is ``round(share × denominator)`` of these two columns (audit coverage: audited =
        coverage × eligible).
    span : (str, str), optional
        Columns holding the first and last period of a trend: the row depends on every period between
        (each looked up).
    blank : tuple of str, optional
        Columns blanked when the cell is hidden (``fnmatch`` patterns); None: every column but the
        policy's keys and the counts of public cells.
    dimension : str
        The dimension of the groups (``family``, ``legal_status``, ``region``...).
    public : bool
        A public population (the registry frame): never suppressed, its count never blanked.
    additive : str, optional
        Column whose value adds up over the periods of a group (declarations: the period ``all`` is the
        sum of the years): a hidden year must not come back as ``all`` minus the published years.
    part : str, optional
        Name of the part of a row this cell fills, when a row holds several populations side by side
        (exposure shares of audited establishments beside declaration rates): only that part is blanked,
        the row is flagged ``suppressed`` when every part is, and ``suppressed_part`` names the hidden
        parts of a row flagged otherwise.
    """

    population: str
    group: str = "group"
    period: str = "period"
    count: str | None = None
    count_from_share: tuple[str, str] | None = None
    span: tuple[str, str] | None = None
    blank: tuple[str, ...] | None = None
    dimension: str = "family"
    public: bool = False
    additive: str | None = None
    part: str | None = None


@dataclass(frozen=True)
class CellsPolicy:
    """One row per cell; ``refs`` apply to every row, ``by_indicator`` to the rows of one indicator.

    ``exempt``: count columns not read by the row rule (:data:`ROW_COUNT_COLUMNS`). ``hidden_blank``: keys
    blanked on hidden rows too (the times of a hidden family's survival curve are the times its findings
    were fixed; the severities listed for a hidden family say which it has). ``collapse_hidden``: the
    rows of a hidden group, identical once blanked, are kept once (their number would say how many times
    or severities the hidden group has). ``zero_values``: indicators whose value counts events (ransomware
    attacks): where their total is 0, every group's 0 is known from it, so those values are published even
    where the population behind them is hidden (only its count of establishments left empty); a 0 is never
    shown beside a non-zero total, where it would pin the remaining hidden groups.
    """

    description: str
    keys: tuple[str, ...]
    refs: tuple[Ref, ...] = ()
    indicator: str | None = None
    by_indicator: Mapping[str, tuple[Ref, ...]] = field(default_factory=dict)
    exempt: tuple[str, ...] = ()
    hidden_blank: tuple[str, ...] = ()
    collapse_hidden: bool = False
    zero_values: tuple[str, ...] = ()
    #: ``value`` is a share of ``n_establishments``: a hidden share the published rows of its set already
    #: give (0 or 1) is published, without its count or interval (``tables._implied_shares``).
    implied_shares: bool = False
    kind: str = "cells"

    def refs_for(self, indicator: object) -> tuple[Ref, ...]:
        """The refs of a row (its indicator's when declared, else the table's)."""
        if self.indicator is not None and indicator in self.by_indicator:
            return self.by_indicator[indicator]  # type: ignore[index]
        return self.refs


@dataclass(frozen=True)
class StatTestsPolicy:
    """A tests table (``tests.csv`` vocabulary).

    ``dimension_by_metric`` maps a metric to the dimension of its groups (None: the groups are not
    establishment groups — severities, audit ranks, baseline/follow-up — and every row describes the whole
    population ``(population, family, all, period)``); ``default_dimension`` serves the other metrics.
    Every count column of :data:`ROW_COUNT_COLUMNS` (``n_a``, ``n_b``: establishments, audits or findings)
    hides its row when ``0 < n < min_cell``. ``exposure``: ``group_a`` is ``exposure=True``
    and the row describes the 2 × 2 of that exposure. ``continuous_terms``: a ``group_a`` naming a
    continuous model term (one coefficient over the whole model) describes the whole population; the
    levels of another covariate (``region=11``) are cells of ``covariates_population``.
    """

    description: str
    population: str
    default_dimension: str | None = "family"
    dimension_by_metric: Mapping[str, str | None] = field(default_factory=dict)
    period: str = "period"
    exposure: bool = False
    covariates_population: str = "cohort_model"
    continuous_terms: tuple[str, ...] = ("log_beds", "beds", "log_hosts", "year")
    keys: tuple[str, ...] = TEST_KEYS
    hidden_blank: tuple[str, ...] = ("variant",)  # it may count things (zeros=5, k=4 groups)
    kind: str = "tests"


@dataclass(frozen=True)
class ModelPolicy:
    """Regression terms (``term, level, reference``): a family level and its reference are cells of
    ``population`` (dimension ``family``), the levels of another categorical covariate (``legal_status``,
    ``region``) cells of ``covariates_population`` (the model's own rows, registered by the notebook);
    ``n_family``/``n_reference`` count the family levels; ``n`` is the model's size."""

    description: str
    population: str = "audited"
    covariates_population: str = "cohort_model"
    period: str = "period"
    keys: tuple[str, ...] = ("term", "level", "reference", "model", "ci_method", "outcome", "covariates",
                             "note", "separation", "period", "suppressed")  # fmt: skip
    kind: str = "model"


@dataclass(frozen=True)
class ExposurePolicy:
    """Exposure × outcome tables: ``n`` establishments, ``n_exposed``, ``events``, ``events_exposed``.

    A row is withheld whole when one of its margins (exposed, unexposed, with an event, without) holds
    fewer than ``min_cell`` establishments. When only an interior cell is small (one unexposed establishment
    with an incident), the interior counts (``interior``) and the crude odds ratio, which with the
    margins would give it back, are left empty; the adjusted odds ratio of the model, fitted on margins of
    at least ``min_cell`` establishments, stays (output checking of regressions: SACRO ``acro`` publishes
    coefficients of models with enough residual degrees of freedom, not the cells behind them).
    """

    description: str
    interior: tuple[str, ...] = ("events_exposed", "events_unexposed", "crude_odds_ratio", "separation")
    keys: tuple[str, ...] = ("exposure", "covariates", "window_days", "audit_choice", "separation", "model",
                             "ci_method", "suppressed")  # fmt: skip
    hidden_blank: tuple[str, ...] = ("separation",)  # separation says a cell of the 2 x 2 is empty
    kind: str = "exposure"


@dataclass(frozen=True)
class DatasetPolicy:
    """A table about the dataset's files and rows, with no establishment cell: published as computed."""

    description: str
    kind: str = "dataset"


@dataclass(frozen=True)
class RowsPolicy:
    """One row per establishment (or per audit): confidential reports only; ``aggregate`` names the table
    a published run publishes instead."""

    description: str
    aggregate: str = ""
    kind: str = "per_establishment"


@dataclass(frozen=True)
class PublicPolicy(DatasetPolicy):
    """National published figures (the incident observatory's series, FINESS counts): public sources with
    their provenance, no cell of the dataset's establishments; published as computed."""

    kind: str = "public"


TablePolicy = CellsPolicy | StatTestsPolicy | ModelPolicy | ExposurePolicy | DatasetPolicy | RowsPolicy

# ---- the declarations --------------------------------------------------------------------------------

_AUDITED = Ref("audited", count="n_establishments")
_INDICATORS = CellsPolicy(
    "indicators per family and period (indicators.csv vocabulary)",
    keys=("indicator", "group", "period", "ci_method", "suppressed"),
    refs=(_AUDITED,),
    indicator="indicator",
    implied_shares=True,
    by_indicator={
        # eligible establishments come from the public registry; the audited ones are a population cell
        "audit_coverage": (
            Ref("registry", count="n_establishments", public=True, blank=()),
            Ref("audited", count_from_share=("value", "n_establishments"),
                blank=("n_audits", "value", "ci_low", "ci_high")),
        ),
    },
)  # fmt: skip
_INCIDENT_INDICATORS = CellsPolicy(
    "incident indicators per family and year; n_establishments = declaring structures",
    keys=("indicator", "group", "period", "ci_method", "suppressed"),
    refs=(Ref("declaring", count="n_establishments"),),
    indicator="indicator",
    by_indicator={
        "eligible_establishments": (Ref("registry", count="n_establishments", public=True, blank=()),),
        "declarations": (Ref("declaring", count="n_establishments", additive="value"),),
    },
    zero_values=("ransomware",),
)
_TESTS_PAIRED = StatTestsPolicy(
    "paired baseline / follow-up tests: n_a = n_b = establishments with a pair",
    population="paired",
    default_dimension=None,
    period="=all",
)
_PAIRED_SUMMARY = CellsPolicy(
    "paired medians and shares over establishments with a pair",
    keys=("metric", "statistic", "effect_direction", "suppressed"),
    refs=(Ref("paired", group="=all", period="=all", count="n_pairs"),),
)
_FOLLOWED_ALL = Ref("followed", group="=all", period="=all")
_MEDIANS = CellsPolicy(
    "interval-censored medians of time to fix per severity, over every followed establishment",
    keys=("group", "model", "ci_method", "suppressed"),
    refs=(_FOLLOWED_ALL,),
)
_RATE_RATIOS = ModelPolicy("adjusted rate ratios of families (count model)")
_ANNUAL_RATE_RATIOS = ModelPolicy(
    "adjusted rate ratios of families (count model)", covariates_population="cohort_model"
)
_NATIONAL_TOTALS = CellsPolicy(
    "national declarations per year",
    keys=("year", "suppressed"),
    refs=(Ref("declaring", group="=all", period="year", count="declaring_structures"),),
)

POLICIES: dict[str, TablePolicy] = {
    # 00 data quality: files, rows and rules of the dataset, no establishment cell
    "accounting": DatasetPolicy("rows read, kept, rejected per input file"),
    "csv_layouts": DatasetPolicy("layout of each contract CSV file"),
    "scan_status": DatasetPolicy("audits per scan status (whole dataset)"),
    "rejects_by_reason": DatasetPolicy("rejected rows per file and reason"),
    "violations_by_rule": DatasetPolicy("contract violations per file and rule"),
    "registry_vs_reference": PublicPolicy(
        "the dataset's registry (a public frame wider than the audited) vs FINESS"
    ),
    "registry_unknown_to_reference": DatasetPolicy(
        "registry rows the national reference cannot place, by reason"
    ),
    # 10 longitudinal
    "lifecycle": RowsPolicy(
        "one row per pair of consecutive audits of an establishment", aggregate="lifecycle_by_family"
    ),  # fmt: skip
    "lifecycle_by_family": CellsPolicy(
        "finding life cycle between consecutive audits, summed per family",
        keys=("family", "suppressed"),
        refs=(Ref("lifecycle", group="family", period="=all", count="n_establishments"),),
    ),
    "longitudinal_paired_summary": _PAIRED_SUMMARY,
    "tests_longitudinal_paired": _TESTS_PAIRED,
    "tests_longitudinal_repeated": StatTestsPolicy(
        "repeated-measures tests over establishments audited several times",
        population="paired",
        default_dimension=None,
        period="=all",
    ),
    "survival": CellsPolicy(
        "Kaplan-Meier time to fix per family",
        keys=("group", "time_days", "ci_method", "suppressed"),
        refs=(Ref("followed", period="=all", count="n_establishments"),),
        exempt=("events",),
        hidden_blank=("time_days",),
        collapse_hidden=True,
    ),
    "remediation": CellsPolicy(
        "median time to fix per family and severity",
        keys=("group", "severity", "ci_method", "suppressed"),
        refs=(Ref("followed", period="=all", count="n_establishments"),),
        hidden_blank=("severity",),
        collapse_hidden=True,
    ),
    "remediation_interval_medians": _MEDIANS,
    "remediation_deadlines": CellsPolicy(
        "share fixed within the deadline per severity, over every followed establishment",
        keys=("severity", "deadline_days", "ci_method", "suppressed"),
        refs=(_FOLLOWED_ALL,),
    ),
    "remediation_close_rate": CellsPolicy(
        "monthly close rate of open findings",
        keys=("group", "month", "suppressed"),
        refs=(Ref("followed", period="=all"),),
    ),
    "tests_longitudinal_survival": StatTestsPolicy(
        "log-rank tests of time to fix (n_a, n_b count findings, not establishments)",
        population="followed",
        default_dimension=None,
        dimension_by_metric={"time_to_fix_by_family": "family"},
        period="=all",
    ),
    # 20 cohorts
    "indicators": _INDICATORS,
    "cohorts_national_coverage": CellsPolicy(
        "audited establishments per family and period against the national FINESS count (public)",
        keys=(
            "indicator",
            "group",
            "family",
            "period",
            "ci_method",
            "reference_date",
            "reference_source",
            "note",
            "suppressed",
        ),  # fmt: skip
        refs=(
            Ref("national", count="eligible", public=True, blank=()),
            Ref("audited", count="audited", blank=("audited", "n_audits", "value", "ci_low", "ci_high")),
        ),
        exempt=("n_establishments", "eligible"),
    ),
    "tests_cohorts": StatTestsPolicy(
        "family comparisons, model terms and trends (n_a/n_b of trends count audits)",
        population="audited",
    ),
    "rate_ratios": _RATE_RATIOS,
    "odds_ratios": ModelPolicy("adjusted odds ratios of families (logistic model)"),
    # 30 incidents
    "incidents_national_totals": _NATIONAL_TOTALS,
    "incidents_indicators": _INCIDENT_INDICATORS,
    "incidents_national_series": PublicPolicy("national incident observatory's yearly series, with sources"),
    "incidents_national_rates": PublicPolicy("national declarations per 1,000 FINESS establishments"),
    "incidents_dataset_share": CellsPolicy(
        "the dataset's declarations per published national period, as a share of the national total",
        keys=("period", "year", "ci_method", "source_url", "note", "suppressed"),
        refs=(
            Ref(
                "declaring",
                group="=all",
                period="year",
                additive="dataset_declarations",
                blank=("dataset_declarations", "share", "ci_low", "ci_high"),
            ),
        ),
    ),
    "incidents_trends": CellsPolicy(
        "yearly trend of declarations per family (over the years first_year..last_year)",
        keys=("group", "n_years", "first_year", "last_year", "ci_method", "suppressed"),
        refs=(
            Ref("declaring", period="=all", count="declaring_structures"),
            Ref("declaring", period="=all", span=("first_year", "last_year")),
        ),
    ),
    "incidents_side_by_side": CellsPolicy(
        "exposure shares of audited establishments beside incident rates of the registry, per family",
        keys=("group", "period", "suppressed"),
        refs=(
            Ref(
                "audited",
                count="audited",
                part="audited",
                blank=("audited", "has_kev*", "exposes_remote_admin*", "no_protection*"),
            ),
            Ref("registry", count="eligible", public=True, blank=()),
            Ref(
                "declaring",
                additive="declarations",
                part="declarations",
                blank=("declarations", "incident_rate_per_1000", "rate_ci_low", "rate_ci_high"),
            ),
        ),
    ),
    "incidents_odds_ratios": ExposurePolicy("exposure x incident within the window, one row per exposure"),
    "incidents_tests": StatTestsPolicy(
        "exposure x incident tests (group_a = exposure=True)",
        population="incident_exposure",
        exposure=True,
        period="=all",
    ),
    # 40 annual summary
    "annual_indicators": _INDICATORS,
    "annual_rate_ratios": _ANNUAL_RATE_RATIOS,
    "annual_paired_summary": _PAIRED_SUMMARY,
    "annual_tests_paired": _TESTS_PAIRED,
    "annual_remediation_medians": _MEDIANS,
    "annual_incidents_totals": _NATIONAL_TOTALS,
    "annual_incidents_indicators": _INCIDENT_INDICATORS,
}


def policy_for(name: str) -> TablePolicy:
    """The declared policy of a table, or :class:`UnknownTableError` naming the declared tables.

    >>> policy_for("indicators").kind, policy_for("lifecycle").kind
    ('cells', 'per_establishment')
    """
    try:
        return POLICIES[name]
    except KeyError:
        raise UnknownTableError(
            f"table {name!r} has no declared publication policy, so a published run cannot save it: declare "
            "its kind (counts, values, identifiers, cells) in cyberobs_lib/disclosure/policy.py POLICIES. "
            f"Declared tables: {', '.join(sorted(POLICIES))}"
        ) from None


def check_min_cell(min_cell: int, *, published: bool) -> int:
    """``min_cell`` as an int; a published run refuses one below :data:`POLICY_MIN_CELL`.

    >>> check_min_cell(5, published=True), check_min_cell(1, published=False)
    (5, 1)
    """
    value = int(min_cell)
    if published and value < POLICY_MIN_CELL:
        raise MinCellBelowFloorError(
            f"min_cell={value} is below the publication floor of {POLICY_MIN_CELL} establishments "
            "(POLICY_MIN_CELL): a published run may raise min_cell, never lower it"
        )
    if value < 1:
        raise ValueError(f"min_cell must be at least 1, not {value}")
    return value
