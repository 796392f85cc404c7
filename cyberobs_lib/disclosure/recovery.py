"""Recompute hidden cells from the published numbers of every table of a report folder.

A cell is *hidden* when it is blank and its row is flagged suppressed (``suppressed``/``secret`` true),
or when it is a blank count of establishments (a row may publish its value and hide its count). Every number of every table read by the check (CSV, workbook sheets, HTML and Markdown tables of
the pages and notebooks, JSON, Parquet) goes into one store keyed independently of the table: the
column (``value``, ``n_establishments``...) and the row's dimensions (``indicator``, ``group``,
``period``, ``region``..., labels read back to contract keys, ``year`` read as ``period``). An attacker
holds all of them at once; so does this audit. Each relation below that gives a hidden cell back is a
finding (kind ``recovered_cell``, or ``small_cell`` for a small count obtained by difference) naming the
hidden cell, the rule, the tables and rows used and the value recovered.

Relations audited
-----------------
``same_cell_published``
    The same key published in another table or file (``Private clinic (MCO) 2025`` suppressed in
    ``indicators.csv``, published in ``annual_indicators.csv``). Wide tables whose columns are indicators
    (``incidents_side_by_side``: ``has_kev``, ``has_kev_ci_low``...) are read as rows of those indicators;
    tables without a group column (national totals) as the ``all`` group.
``margin``
    Rows sharing every key but the group (``group``, ``family`` or ``level``) and a total row (group
    ``all``/``total``/``ensemble``..., or a group-less table of totals); and, for counts of events
    (declarations, malicious, ransomware, impact on care), rows sharing every key but the period with an
    ``all`` period row (establishments counted once in ``all`` are not additive over periods: a margin
    over periods is used for them only when complete slices show it adds up). Additive measures: counts of
    establishments and audits, the numerators ``value × n_establishments`` of shares of establishments
    (a share is recognised when every published value lies in [0, 1] and gives an integer numerator
    within its printed precision), and any other measure whose published complete slices add up. The
    margin is an equality when the complete slices (every group and the total published) add up exactly,
    an inequality (total ≥ sum) when they fall short (groups that do not cover the total), and, for
    counts without a complete slice to learn from, an equality when the slice lists every group seen
    for its group column anywhere in the folder (unless the published numbers contradict it), an
    inequality otherwise. Each hidden count, numerator and total is bounded by linear programming
    (:func:`scipy.optimize.linprog`, HiGHS): minimum and maximum subject to the margins, ``0 ≤ k ≤ n``,
    ``k = value × n`` when the share is published and its count hidden, non-negativity and the total as
    upper bound. An interval holding a single integer recovers the cell; a share is recovered when its
    numerator and its count are, or its numerator is 0, or equals its count.
``model_partition``
    Model tables (``term``, ``level``, ``reference``, ``n``, ``n_family``, ``n_reference``): the model's
    ``n`` is the reference group's ``n_reference`` plus every level's ``n_family`` (family terms), so a
    single hidden ``n_family`` comes back; a sum short of ``n`` by fewer than ``min_cell`` reveals a group
    not listed.
``pairwise_difference``
    A test row comparing ``group_a`` and ``group_b`` on a metric with a published effect: risk or mean
    difference (``v_a − v_b``), risk ratio (``v_a / v_b``), crude odds ratio. With one group's value
    published (same metric as ``indicator``, same other keys) and the other hidden, the hidden value comes
    back. A candidate counts only if it is consistent: a share in [0, 1] and, when the group's count is
    known (the test's ``n_a``/``n_b`` or the indicator row), an integer numerator within the printed
    precision; when several periods could be meant, the counts must match.
``global_test_includes_hidden_cell``
    A global test row (``group_a`` listing groups ``A|B|C`` or ``all``) whose ``n_a`` exceeds the sum of
    the groups' published counts in the pairwise rows of the same study and metric: it is computed over
    a hidden cell, a finding unless its statistic, p-value, effect size and interval are all blank.
    With a single group's count unknown, that count is recovered.
``small_cell_by_difference``
    Within one row of a 2×2 table (``n``, ``n_exposed``, ``events``, ``events_exposed``): the unexposed
    count, the events among the unexposed and the non-events of each side, when ``0 < cell < min_cell``.

Not audited
-----------
A 0 recovered from a published total of 0 (every group then has 0: the total says it for all of them,
and zero cells describe no establishment). Model coefficients (odds and rate ratios adjusted for
covariates), rank statistics (Cliff's delta,
rank-biserial, epsilon squared), p-values and confidence limits are not inverted; medians and other
non-additive statistics are not bounded; counts of establishments are not summed over periods (an
establishment counts once in ``all`` whatever its number of years); free text (a share printed in a sentence) is not parsed; a
numerator ``value × n`` below ``min_cell`` in a published group is not a small cell by itself. Bounds
are those of the linear relaxation: a hidden count narrowed to two or more integers is not reported.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from cyberobs_lib.disclosure._tables import (
    COUNT_COLUMNS,
    DESCRIPTIVE_COLUMNS,
    DIMENSION_COLUMNS,
    GROUP_COLUMNS,
    NUMERIC_DIMENSIONS,
    TOTAL_LABELS,
    Number,
    Table,
    canonical,
    parse_number,
    rounding_error,
    significant_digits,
)

Dims = tuple[tuple[str, str], ...]
Key = tuple[str, Dims]
Finding = tuple[str, str, str, str, str, str]  # file, location, kind, value, rule, detail
#: Derived measure: the numerator ``value × n_establishments`` of a share of establishments.
NUMERATOR = "numerator"
#: Effect sizes inverted by ``pairwise_difference``.
DIFFERENCE_KINDS = frozenset({"risk_difference", "difference", "mean_difference", "proportion_difference"})
RATIO_KINDS = frozenset({"risk_ratio", "ratio", "relative_risk"})
ODDS_KINDS = frozenset({"odds_ratio"})
#: Columns of a test row that are computed over its groups.
TEST_STATISTICS = ("statistic", "p_value", "p_adjusted", "effect_size", "ci_low", "ci_high")
#: Indicators whose value is a count of establishments or incidents: additive over a partition of groups.
#: Dimensions summed by margins: the group columns, and the period for counts of events (declarations of
#: 2023, 2024 and 2025 add up to those of every year; establishments counted once in "all" do not).
MARGIN_COLUMNS = (*GROUP_COLUMNS, "period")
#: Measures that may add up over a margin (learnt or presumed); any other column is never summed.
ADDITIVE_CANDIDATES = frozenset({*COUNT_COLUMNS, NUMERATOR, "value", "declarations", "malicious", "ransomware",
                                 "impact_on_care", "open_at_start", "closed"})  # fmt: skip
#: Indicators counting events (incidents): additive over groups and over periods.
EVENT_INDICATORS = frozenset({"declarations", "malicious", "ransomware", "impact_on_care"})
COUNT_INDICATORS = frozenset(
    {"declarations", "malicious", "ransomware", "impact_on_care", "eligible_establishments"}
)
#: Columns read as dimensions under another name.
DIMENSION_ALIASES = {"year": "period"}
_TOL = 1e-6


@dataclass(frozen=True)
class Ref:
    """Where a cell is: file and location (``tables/x.csv``, ``line 4, column value``)."""

    file: str
    location: str

    def __str__(self) -> str:
        return f"{self.file} {self.location}"


@dataclass
class Store:
    """Every published number and every hidden cell of the folder, keyed independently of the table."""

    published: dict[Key, list[tuple[Number, Ref]]] = field(default_factory=lambda: defaultdict(list))
    hidden: dict[Key, list[Ref]] = field(default_factory=lambda: defaultdict(list))
    #: Keys with published values that disagree beyond their precision: never used.
    conflicting: set[Key] = field(default_factory=set)

    def value(self, key: Key) -> Number | None:
        """The most precise published value of ``key``; None when unpublished or conflicting."""
        if key in self.conflicting:
            return None
        entries = self.published.get(key)
        if not entries:
            return None
        return min((number for number, _ in entries), key=lambda n: n.error)

    def ref(self, key: Key) -> Ref | None:
        entries = self.published.get(key)
        return min(entries, key=lambda e: e[0].error)[1] if entries else None

    def finish(self) -> None:
        """Mark keys whose published values disagree (beyond their printed precision)."""
        for key, entries in self.published.items():
            values = [n for n, _ in entries]
            best = min(values, key=lambda n: n.error)
            if any(abs(n.value - best.value) > n.error + best.error + 1e-9 * abs(best.value) for n in values):
                self.conflicting.add(key)


def _dims(items: Iterable[tuple[str, str]]) -> Dims:
    return tuple(sorted(items))


def _without(dims: Dims, name: str) -> Dims:
    return tuple(item for item in dims if item[0] != name)


def _get(dims: Dims, name: str) -> str | None:
    return next((v for k, v in dims if k == name), None)


# -- reading tables into the store ---------------------------------------------------------------------
def _dimension_columns(table: Table) -> tuple[list[int], list[int]]:
    """Indices of the dimension columns and of the measure columns of a table."""
    dims, measures = [], []
    for k, key in enumerate(table.header):
        values = [row[k].strip() for row in table.rows if row[k].strip()]
        numeric = all(parse_number(v) is not None for v in values)
        if key in DIMENSION_COLUMNS or key in NUMERIC_DIMENSIONS:
            dims.append(k)
        elif key in DESCRIPTIVE_COLUMNS:
            continue
        elif numeric:
            measures.append(k)
        elif key:
            dims.append(k)
    return dims, measures


def known_indicators(tables: Iterable[Table]) -> set[str]:
    """Indicator and metric names seen in any table (to read wide tables column by column)."""
    names = set()
    for table in tables:
        for key in ("indicator", "metric"):
            k = table.column(key)
            if k is not None:
                names.update(canonical(row[k]) for row in table.rows if row[k].strip())
    return names


def _wide_cells(table: Table, k: int, indicators: set[str]) -> tuple[str, str] | None:
    """``(indicator, measure)`` a column of a wide table stands for (``has_kev_ci_low`` → has_kev, ci_low)."""
    key = table.header[k]
    if key in indicators:
        return key, "value"
    for suffix in ("ci_low", "ci_high"):
        if key.endswith("_" + suffix) and key[: -len(suffix) - 1] in indicators:
            return key[: -len(suffix) - 1], suffix
    return None


def _column_digits(table: Table, k: int) -> int:
    """Most significant digits printed in a column: its values were rounded to that many (``%.6g``)."""
    return max(
        (significant_digits(row[k]) for row in table.rows if "." in row[k] or "e" in row[k].lower()),
        default=0,
    )


def add_table(store: Store, table: Table, indicators: set[str]) -> None:
    """Put the published numbers and hidden cells of one table into the store.

    A number's rounding error is half a unit of its last printed digit, or, when its column prints
    more significant digits elsewhere (``0.5`` beside ``0.311111``: ``%.6g`` drops trailing zeros), half
    a unit of that many significant digits.
    """
    dim_cols, measure_cols = _dimension_columns(table)
    digits = {k: _column_digits(table, k) for k in measure_cols}
    suppressed = table.suppressed_rows()
    has_indicator = any(table.header[k] in ("indicator", "metric") for k in dim_cols)
    has_group = any(table.header[k] in GROUP_COLUMNS for k in dim_cols)
    for i, row in enumerate(table.rows):
        base = _dims(
            (DIMENSION_ALIASES.get(table.header[k], table.header[k]), canonical(row[k]))
            for k in dim_cols
            if table.header[k] != "suppressed"
        )
        if has_indicator:
            base = tuple((("indicator" if n == "metric" else n), v) for n, v in base)
        for k in measure_cols:
            keys = [(table.header[k], base)]
            wide = None if has_indicator else _wide_cells(table, k, indicators)
            if wide is not None:
                extra = [("indicator", wide[0])] + ([] if has_group else [("group", "all")])
                keys.append((wide[1], _dims([*base, *extra])))
            cell = row[k].strip()
            ref = Ref(table.file, table.where(i, k))
            number = parse_number(cell) if cell else None
            if number is not None and number.error and digits[k]:
                number = Number(number.value, min(number.error, rounding_error(number.value, digits[k])))
            for key in keys:
                if number is not None:
                    store.published[key].append((number, ref))
                elif not cell and (suppressed[i] or table.header[k] in COUNT_COLUMNS):
                    # A blank count is hidden even on a row not flagged (a row may publish its value and
                    # hide its count): never "not applicable" for an attacker bounding the others.
                    store.hidden[key].append(ref)


def build_store(tables: list[Table]) -> Store:
    """The store of every table, with the numerators of shares of establishments derived."""
    store = Store()
    indicators = known_indicators(tables)
    for table in tables:
        add_table(store, table, indicators)
    store.finish()
    _derive_numerators(store)
    return store


def _share_indicators(store: Store) -> set[str]:
    """Indicators whose published values are shares of ``n_establishments`` (integer numerators)."""
    verdict: dict[str, bool] = {}
    fractional: set[str] = set()
    for key in list(store.published):
        measure, dims = key
        indicator = _get(dims, "indicator")
        if measure != "value" or indicator is None or verdict.get(indicator) is False:
            continue
        v, n = store.value(key), store.value(("n_establishments", dims))
        if v is None:
            continue
        ok = 0 - v.error <= v.value <= 1 + v.error
        if 0 < v.value < 1:
            fractional.add(indicator)
        if ok and n is not None:
            k = v.value * n.value
            ok = n.value * v.error < 0.5 and abs(k - round(k)) <= n.value * v.error + 1e-6
        verdict[indicator] = ok and verdict.get(indicator, True)
    return {name for name, ok in verdict.items() if ok and name in fractional}


def _derive_numerators(store: Store) -> None:
    """``numerator`` cells: published when the share and its count are (exact integer), hidden when the
    share is hidden."""
    shares = _share_indicators(store)
    keys = {dims for (measure, dims) in [*store.published, *store.hidden] if measure == "value"}
    for dims in keys:
        if _get(dims, "indicator") not in shares:
            continue
        v, n = store.value(("value", dims)), store.value(("n_establishments", dims))
        if v is not None and n is not None and n.value * v.error < 0.5:
            store.published[(NUMERATOR, dims)].append(
                (Number(float(round(v.value * n.value)), 0.0), store.ref(("value", dims)))
            )
        elif v is None and ("value", dims) in store.hidden:
            store.hidden[(NUMERATOR, dims)] = list(store.hidden[("value", dims)])


# -- margins -------------------------------------------------------------------------------------------
@dataclass
class Slice:
    """Cells sharing every key but the group: the members and the total (group ``all``...)."""

    measure: str
    dims: Dims  # without the group
    group: str  # the group column
    members: dict[str, Key] = field(default_factory=dict)
    total: Key | None = None


def _slices(store: Store) -> list[Slice]:
    found: dict[tuple[str, Dims, str], Slice] = {}
    for key in {*store.published, *store.hidden}:
        measure, dims = key
        for group in MARGIN_COLUMNS:
            value = _get(dims, group)
            if value is None:
                continue
            rest = _without(dims, group)
            slice_ = found.setdefault((measure, rest, group), Slice(measure, rest, group))
            if value in TOTAL_LABELS:
                slice_.total = key
            else:
                slice_.members[value] = key
    return [s for s in found.values() if s.total is not None and s.members]


def _scope(slice_: Slice, with_indicator: bool) -> tuple:
    names = tuple(sorted(n for n, _ in slice_.dims))
    return (slice_.measure, slice_.group, names, _get(slice_.dims, "indicator") if with_indicator else None)


def margin_modes(store: Store, slices: list[Slice]) -> dict[tuple, str]:
    """``"eq"`` or ``"ge"`` (total ≥ sum) per scope, learnt from the complete slices (every member and
    the total published); scopes with and without the indicator.

    Only slices that can tell are evidence: at least two members different from zero (zeros add up
    whatever the measure, and a single member equals any total that is its copy).
    """
    evidence: dict[tuple, set[str]] = defaultdict(set)
    for slice_ in slices:
        keys = [slice_.total, *slice_.members.values()]
        values = [store.value(k) for k in keys]
        if any(v is None for v in values) or sum(v.value != 0 for v in values[1:]) < 2:
            continue
        total, members = values[0], values[1:]
        gap = total.value - sum(v.value for v in members)
        tolerance = total.error + sum(v.error for v in members) + 1e-9
        verdict = "eq" if abs(gap) <= tolerance else ("ge" if gap > 0 else "bad")
        for with_indicator in (True, False):
            evidence[_scope(slice_, with_indicator)].add(verdict)
    modes = {}
    for scope, verdicts in evidence.items():
        if verdicts == {"eq"}:
            modes[scope] = "eq"
        elif "bad" not in verdicts:
            modes[scope] = "ge"
    return modes


def _mode(slice_: Slice, modes: dict[tuple, str], universe: dict[str, set[str]]) -> str | None:
    """How the members of a slice relate to its total: learnt (:func:`margin_modes`), else presumed.

    Without a complete slice to learn from, a margin of counts (establishments, audits, numerators of
    shares, count indicators) is presumed an equality only when the slice lists every group seen for
    its group column anywhere in the folder (a table of a few families beside an "all" row of every
    family is not a partition); otherwise an inequality, which never pins a cell on its own.
    """
    if slice_.measure not in ADDITIVE_CANDIDATES:
        return None  # limits, p-values, ratios, medians: never summed
    # What one indicator's values do says nothing of another's (a count adds up, a share does not); a
    # count column is the same count whatever the indicator of its row.
    scopes = (True,) if slice_.measure == "value" else (True, False)
    for with_indicator in scopes:
        mode = modes.get(_scope(slice_, with_indicator))
        if mode is not None:
            return mode
    if slice_.measure == NUMERATOR:
        counts = Slice("n_establishments", slice_.dims, slice_.group, slice_.members)
        return _mode(counts, modes, universe)
    indicator = _get(slice_.dims, "indicator")
    if slice_.group == "period":
        counts = slice_.measure == "value" and indicator in EVENT_INDICATORS
    else:
        counts = slice_.measure in COUNT_COLUMNS or (
            slice_.measure == "value" and indicator in COUNT_COLUMNS | COUNT_INDICATORS
        )
    if not counts:
        return None
    return "eq" if set(slice_.members) >= universe.get(slice_.group, set()) else "ge"


class _System:
    """Linear constraints over hidden cells: ``A_eq x = b_eq``, ``A_ub x ≤ b_ub``, bounds."""

    def __init__(self) -> None:
        self.index: dict[Key, int] = {}
        self.eq: list[tuple[dict[int, float], float]] = []
        self.ub: list[tuple[dict[int, float], float]] = []
        self.upper: dict[int, float] = {}
        #: Hidden cells of a slice whose published total is 0: a 0 recovered there is implied by the
        #: total for every group alike, as publishable as the total (zero cells describe nobody).
        self.zero_total: set[Key] = set()

    def var(self, key: Key) -> int:
        return self.index.setdefault(key, len(self.index))

    def bound(self, key: Key, upper: float) -> None:
        k = self.var(key)
        self.upper[k] = min(self.upper.get(k, math.inf), upper)

    def ranges(self, objectives: dict[str, dict[int, float]]) -> dict[str, tuple[float, float]] | None:
        """Min and max of each objective that may pin a single integer; None when infeasible.

        The system splits into independent components (cells linked by a constraint). A component with
        a single constraint over a box is solved exactly by hand: the projection of
        ``{x in [0, U] : a·x = b}`` (or ``≤ b``) on one cell is an interval read from the other cells'
        extremes. Other components go to :func:`scipy.optimize.linprog` (HiGHS), where objectives that
        the solutions found so far already spread over 2 or more (hence over two integers at least: not
        recovered) are not solved.
        """
        rows = [(coefficients, b, "eq") for coefficients, b in self.eq] + [(c, b, "ub") for c, b in self.ub]
        if any(not coefficients and (kind == "ub" and b < -_TOL or kind == "eq" and abs(b) > _TOL)
               for coefficients, b, kind in rows):  # fmt: skip
            return None  # a constraint without hidden cells that the published numbers break
        component = self._components(rows)
        out: dict[str, tuple[float, float]] = {}
        by_component: dict[int, dict[str, dict[int, float]]] = defaultdict(dict)
        for name, objective in objectives.items():
            parts = {component[k] for k in objective}
            if len(parts) == 1:
                by_component[parts.pop()][name] = objective
        for part in set(component.values()):
            members = sorted(k for k, c in component.items() if c == part)
            own = [r for r in rows if r[0] and component[next(iter(r[0]))] == part]
            if len(own) <= 1:
                found = self._single_row(members, own[0] if own else None, by_component[part])
            else:
                found = self._linear_programs(members, own, by_component[part])
            if found is None:
                return None
            out.update(found)
        return out

    def _components(self, rows: list) -> dict[int, int]:
        """Component of each variable (union-find over the constraints)."""
        parent = list(range(len(self.index)))

        def find(k: int) -> int:
            while parent[k] != k:
                parent[k] = parent[parent[k]]
                k = parent[k]
            return k

        for coefficients, _, _ in rows:
            keys = list(coefficients)
            for k in keys[1:]:
                parent[find(k)] = find(keys[0])
        return {k: find(k) for k in range(len(self.index))}

    def _box(self, k: int) -> tuple[float, float]:
        return 0.0, self.upper.get(k, math.inf)

    def _single_row(self, members: list[int], row, objectives: dict) -> dict[str, tuple[float, float]] | None:
        """Exact ranges over a box and at most one constraint ``a·x = b`` or ``a·x ≤ b``."""
        bounds = {k: self._box(k) for k in members}
        if row is not None:
            coefficients, b, kind = row
            lows = {k: min(a * bounds[k][0], a * bounds[k][1]) for k, a in coefficients.items()}
            highs = {k: max(a * bounds[k][0], a * bounds[k][1]) for k, a in coefficients.items()}
            if sum(lows.values()) > b + _TOL or (kind == "eq" and sum(highs.values()) < b - _TOL):
                return None
            for k, a in coefficients.items():
                # a·x_k = b − rest, rest in [rest_low, rest_high] (≤: a·x_k ≤ b − rest_low); sums
                # without cell k (not differences: a bound may be infinite)
                rest_low = sum(v for i, v in lows.items() if i != k)
                rest_high = sum(v for i, v in highs.items() if i != k)
                lower_ax = b - rest_high if kind == "eq" else -math.inf
                upper_ax = b - rest_low
                lo_k, hi_k = bounds[k]
                if a > 0:
                    bounds[k] = (max(lo_k, lower_ax / a), min(hi_k, upper_ax / a))
                else:
                    bounds[k] = (max(lo_k, upper_ax / a), min(hi_k, lower_ax / a))
        out = {}
        for name, objective in objectives.items():
            low = sum(min(c * bounds[k][0], c * bounds[k][1]) for k, c in objective.items())
            high = sum(max(c * bounds[k][0], c * bounds[k][1]) for k, c in objective.items())
            if len(objective) == 1 and math.isfinite(low) and math.isfinite(high):
                out[name] = (low, high)  # exact for one cell; a sum of cells is not asked for here
        return out

    def _linear_programs(self, members: list[int], rows: list, objectives: dict) -> dict | None:
        from scipy.optimize import linprog

        position = {k: i for i, k in enumerate(members)}

        def matrices(kind: str):
            chosen = [(c, b) for c, b, k in rows if k == kind]
            if not chosen:
                return None, None
            a = np.zeros((len(chosen), len(members)))
            for r, (coefficients, _) in enumerate(chosen):
                for k, c in coefficients.items():
                    a[r, position[k]] += c
            return a, np.array([b for _, b in chosen])

        a_eq, b_eq = matrices("eq")
        a_ub, b_ub = matrices("ub")
        bounds = [(0, None if math.isinf(self._box(k)[1]) else self._box(k)[1]) for k in members]
        pool: list[np.ndarray] = []

        def solve(c: np.ndarray):
            result = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
            if result.status == 0:
                pool.append(result.x)
            return result

        # Two opposite vertices along a fixed +-1 direction (not the plain sum, which a margin often
        # fixes, so that its minimum and maximum are the same point).
        direction = np.where(np.arange(len(members)) % 2 == 0, 1.0, -1.0) + 0.01 * np.arange(len(members))
        if solve(direction).status == 2:
            return None
        solve(-direction)
        out = {}
        for name, objective in objectives.items():
            c = np.zeros(len(members))
            for k, v in objective.items():
                c[position[k]] += v
            if self._spread(c, pool):
                continue  # spread over two integers or more: not recovered
            high = solve(-c)
            if high.status != 0 or self._spread(c, pool):
                continue  # unbounded, or the new vertex spreads it: nothing recovered
            low = solve(c)
            if low.status != 0:
                continue
            out[name] = (low.fun, -high.fun)
        return out

    @staticmethod
    def _spread(c: np.ndarray, pool: list[np.ndarray]) -> bool:
        """Whether the solutions found so far give the objective values 2 or more apart."""
        seen = [float(c @ x) for x in pool]
        return bool(seen) and max(seen) - min(seen) >= 2 - _TOL


def _integer_measure(key: Key) -> bool:
    """Counts take integer values (the interval may then be narrowed to the integers it holds)."""
    measure, dims = key
    if measure == "value":
        return _get(dims, "indicator") in COUNT_COLUMNS | COUNT_INDICATORS
    return measure in COUNT_COLUMNS or measure in ADDITIVE_CANDIDATES


def _pinned(key: Key, interval: tuple[float, float]) -> float | None:
    """The value an interval pins: a single integer for a count, a single point otherwise."""
    if _integer_measure(key):
        return _single_integer(interval)
    low, high = interval
    return low if high - low <= 1e-6 * max(1.0, abs(low)) else None


def _single_integer(interval: tuple[float, float]) -> int | None:
    low, high = interval
    lo, hi = math.ceil(low - _TOL), math.floor(high + _TOL)
    return lo if lo == hi else None


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _describe(dims: Dims) -> str:
    return ", ".join(f"{k}={v}" for k, v in dims)


def _margin_findings(store: Store, slices: list[Slice]) -> list[Finding]:
    modes = margin_modes(store, slices)
    universe: dict[str, set[str]] = defaultdict(set)
    for slice_ in slices:
        universe[slice_.group].update(slice_.members)
    units: dict[tuple[Dims, str], list[Slice]] = defaultdict(list)
    for slice_ in slices:
        if any(
            k in store.hidden and store.value(k) is None for k in [slice_.total, *slice_.members.values()]
        ):
            units[(slice_.dims, slice_.group)].append(slice_)
    findings = []
    for (dims, group), unit in units.items():
        findings.extend(_solve_unit(store, dims, group, unit, modes, universe))
    return findings


def _solve_unit(
    store: Store, dims: Dims, group: str, unit: list[Slice], modes: dict, universe: dict[str, set[str]]
) -> list[Finding]:
    """Bound every hidden cell of one group of slices (same keys but the group), all measures at once."""
    for relaxed in (False, True):
        system = _System()
        used: list[Ref] = []
        for slice_ in unit:
            mode = _mode(slice_, modes, universe)
            if mode is None:
                continue
            if relaxed:
                mode = "ge"
            _add_margin(system, store, slice_, mode, used)
        if not system.index:
            return []
        _add_shares(system, store, unit)
        objectives = {str(k): {i: 1.0} for k, i in system.index.items()}
        objectives.update(_full_share_objectives(system, store))
        ranges = system.ranges(objectives)
        if ranges is not None:
            return _report(store, system, ranges, dims, group, used)
    return []


def _add_margin(system: _System, store: Store, slice_: Slice, mode: str, used: list[Ref]) -> None:
    coefficients: dict[int, float] = defaultdict(float)
    rhs = 0.0
    total = store.value(slice_.total)
    for key in slice_.members.values():
        known = store.value(key)
        if known is not None:
            rhs -= known.value
            used.append(store.ref(key))
        elif key in store.hidden:
            coefficients[system.var(key)] += 1.0
            if total is not None:
                system.bound(key, total.value)
                if total.value == 0:
                    system.zero_total.add(key)
        else:
            return  # a member neither published nor hidden: the margin cannot be written
    if total is not None:
        rhs += total.value
        used.append(store.ref(slice_.total))
    elif slice_.total in store.hidden:
        coefficients[system.var(slice_.total)] -= 1.0
    else:
        return
    if not coefficients:
        if mode == "eq" and abs(rhs) > 1e-6:
            system.eq.append(({}, rhs))  # contradiction: makes the system infeasible, then relaxed
        return
    if mode == "eq":
        system.eq.append((dict(coefficients), rhs))
    else:  # members ≤ total
        system.ub.append((dict(coefficients), rhs))


def _add_shares(system: _System, store: Store, unit: list[Slice]) -> None:
    """``0 ≤ numerator ≤ n`` and ``numerator = value × n`` for the shares of the unit."""
    for key in list(system.index):
        measure, dims = key
        if measure != NUMERATOR:
            continue
        n_key = ("n_establishments", dims)
        n = store.value(n_key)
        if n is not None:
            system.bound(key, n.value)
        elif n_key in system.index:
            system.ub.append(({system.var(key): 1.0, system.var(n_key): -1.0}, 0.0))
    for key in list(system.index):
        measure, dims = key
        v = store.value(("value", dims))
        if measure == "n_establishments" and v is not None and (NUMERATOR, dims) in system.index:
            k, n = system.var((NUMERATOR, dims)), system.var(key)
            system.ub.append(({k: 1.0, n: -(v.value + v.error)}, 0.0))
            system.ub.append(({k: -1.0, n: v.value - v.error}, 0.0))


def _full_share_objectives(system: _System, store: Store) -> dict[str, dict[int, float]]:
    """``n − numerator`` of hidden shares (0 means a share of 100 %)."""
    out = {}
    for key, k in system.index.items():
        measure, dims = key
        if measure != NUMERATOR:
            continue
        n_key = ("n_establishments", dims)
        if n_key in system.index:  # (with a published count, a full share is a recovered numerator)
            out[f"full {key}"] = {system.index[n_key]: 1.0, k: -1.0}
    return out


def _report(
    store: Store, system: _System, ranges: dict, dims: Dims, group: str, used: list[Ref]
) -> list[Finding]:
    findings = []
    sources = _sources(used)
    recovered: dict[Key, float] = {}
    for key in system.index:
        interval = ranges.get(str(key))
        if interval is not None and (value := _pinned(key, interval)) is not None:
            recovered[key] = value
    recovered = {k: v for k, v in recovered.items() if not (v == 0 and k in system.zero_total)}
    for key, value in recovered.items():
        measure, cell_dims = key
        if measure == NUMERATOR:
            n = store.value(("n_establishments", cell_dims))
            n_value = n.value if n is not None else recovered.get(("n_establishments", cell_dims))
            if value == 0:
                shown = "value=0"
            elif n_value:
                shown = f"value={_fmt(value / n_value)} ({value} of {_fmt(n_value)})"
            else:
                continue
            refs = store.hidden.get(("value", cell_dims), [])
        else:
            shown = f"{measure}={_fmt(value)}"
            refs = store.hidden.get(key, [])
        findings.extend(
            _at(
                refs,
                shown,
                "margin",
                f"{_describe(cell_dims)} recovered from the margin over {group} with {sources}",
            )
        )
    for key in system.index:
        measure, cell_dims = key
        interval = ranges.get(f"full {key}")
        if (
            measure == NUMERATOR
            and key not in recovered
            and interval is not None
            and _single_integer(interval) == 0
        ):
            refs = store.hidden.get(("value", cell_dims), [])
            findings.extend(
                _at(
                    refs,
                    "value=1",
                    "margin",
                    f"{_describe(cell_dims)}: every establishment counted, from {sources}",
                )
            )
    return findings


def _sources(refs: Iterable[Ref | None]) -> str:
    """``"tables/a.csv line 2, 3, 5; b.html table 1 (line 7) line 4"``: the rows used, file by file."""
    rows: dict[tuple[str, str], set[int]] = defaultdict(set)
    for ref in refs:
        if ref is None:
            continue
        match = re.match(r"(.*)line (\d+)", ref.location)
        if match is None:
            rows[(ref.file, ref.location)].add(0)
        else:
            rows[(ref.file, match.group(1))].add(int(match.group(2)))
    parts = []
    for (file, prefix), lines in sorted(rows.items()):
        shown = ", ".join(str(n) for n in sorted(lines)[:12]) + (", ..." if len(lines) > 12 else "")
        parts.append(f"{file} {prefix}line {shown}")
    return "; ".join(parts)


def _at(refs: list[Ref], value: str, rule: str, detail: str, kind: str = "recovered_cell") -> list[Finding]:
    """One finding at the first place the cell is hidden (the others are named in the detail)."""
    if not refs:
        return []
    first = sorted(refs, key=lambda r: (not r.file.endswith(".csv"), r.file, r.location))[0]
    more = f" (hidden also in {len(set(refs)) - 1} other place(s))" if len(set(refs)) > 1 else ""
    return [(first.file, first.location, kind, value, rule, detail + more)]


# -- same cell published elsewhere ---------------------------------------------------------------------
def _same_cell_findings(store: Store) -> list[Finding]:
    findings = []
    for key, refs in store.hidden.items():
        if key[0] == NUMERATOR:
            continue
        number = store.value(key)
        if number is None:
            continue
        where = store.ref(key)
        findings.extend(
            _at(
                refs,
                f"{key[0]}={_fmt(number.value)}",
                "same_cell_published",
                f"{_describe(key[1])} published in {where}",
            )
        )
    return findings


# -- model partition -----------------------------------------------------------------------------------
def _model_findings(tables: list[Table], min_cell: int) -> list[Finding]:
    findings = []
    for table in tables:
        columns = {key: table.column(key) for key in ("n", "n_family", "n_reference", "term", "level")}
        if any(k is None for k in columns.values()):
            continue
        suppressed = table.suppressed_rows()
        dim_cols, _ = _dimension_columns(table)
        models: dict[tuple, list[int]] = defaultdict(list)
        for i, row in enumerate(table.rows):
            if canonical(row[columns["term"]]) != "family":
                continue
            key = tuple(canonical(row[k]) for k in dim_cols if k != columns["level"]) + (
                row[columns["n"]].strip(),
            )
            models[key].append(i)
        for rows in models.values():
            findings.extend(_model_partition(table, rows, columns, suppressed, min_cell))
    return findings


def _model_partition(
    table: Table, rows: list[int], columns: dict, suppressed: list[bool], min_cell: int
) -> list[Finding]:
    n = parse_number(table.rows[rows[0]][columns["n"]])
    references = {parse_number(table.rows[i][columns["n_reference"]]) for i in rows} - {None}
    if n is None or len(references) != 1:
        return []
    remainder = n.value - references.pop().value
    hidden = []
    for i in rows:
        count = parse_number(table.rows[i][columns["n_family"]])
        if count is not None:
            remainder -= count.value
        elif suppressed[i]:
            hidden.append(i)
        else:
            return []
    detail = f"model n={_fmt(n.value)} = n_reference + sum of n_family ({table.file} {table.where(rows[0])})"
    if len(hidden) == 1 and remainder >= 0:
        ref = Ref(table.file, table.where(hidden[0], columns["n_family"]))
        return _at([ref], f"n_family={_fmt(remainder)}", "model_partition", detail)
    if not hidden and 0 < remainder < min_cell:
        ref = Ref(table.file, table.where(rows[0], columns["n"]))
        return _at(
            [ref],
            f"unlisted={_fmt(remainder)}",
            "model_partition",
            detail + ": a group not listed",
            kind="small_cell",
        )
    return []


# -- pairwise differences ------------------------------------------------------------------------------
def _invert(kind: str, effect: float, known: float, known_is_a: bool) -> float | None:
    """The other group's value from one group's value and the effect ``a`` versus ``b``."""
    if kind in DIFFERENCE_KINDS:
        return known - effect if known_is_a else known + effect
    if kind in RATIO_KINDS:
        if effect == 0:
            return None
        return known / effect if known_is_a else known * effect
    if kind in ODDS_KINDS:
        if not 0 < known < 1 or effect <= 0:
            return None
        odds = known / (1 - known)
        other = odds / effect if known_is_a else odds * effect
        return other / (1 + other)
    return None


def _value_keys(store: Store) -> dict[tuple[str, str], list[Dims]]:
    """``(indicator, group)`` → dims of every ``value`` cell (published or hidden)."""
    index: dict[tuple[str, str], list[Dims]] = defaultdict(list)
    for measure, dims in {*store.published, *store.hidden}:
        if measure == "value":
            indicator, group = _get(dims, "indicator"), _get(dims, "group")
            if indicator is not None and group is not None:
                index[(indicator, group)].append(dims)
    return index


def _pairwise_findings(tables: list[Table], store: Store) -> list[Finding]:
    index = _value_keys(store)
    shares = _share_indicators(store)
    findings: list[Finding] = []
    for table in tables:
        cols = {
            k: table.column(k)
            for k in ("group_a", "group_b", "effect_size", "effect_size_kind", "n_a", "n_b")
        }
        metric = table.column("metric") if table.column("metric") is not None else table.column("indicator")
        if metric is None or any(
            cols[k] is None for k in ("group_a", "group_b", "effect_size", "effect_size_kind")
        ):
            continue
        for i, row in enumerate(table.rows):
            kind = canonical(row[cols["effect_size_kind"]])
            effect = parse_number(row[cols["effect_size"]])
            if effect is None or kind not in DIFFERENCE_KINDS | RATIO_KINDS | ODDS_KINDS:
                continue
            test = (
                table,
                i,
                canonical(row[metric]),
                canonical(row[cols["group_a"]]),
                canonical(row[cols["group_b"]]),
                kind,
                effect,
            )
            findings.extend(_pairwise_row(store, index, shares, cols, test))
    return findings


def _pairwise_row(store: Store, index: dict, shares: set[str], cols: dict, test: tuple) -> list[Finding]:
    table, i, metric, group_a, group_b, kind, effect = test
    row = table.rows[i]
    test_n = {
        group_a: parse_number(row[cols["n_a"]]) if cols["n_a"] is not None else None,
        group_b: parse_number(row[cols["n_b"]]) if cols["n_b"] is not None else None,
    }
    candidates = []
    for dims_a in index.get((metric, group_a), []):
        dims_b = tuple(sorted((*_without(dims_a, "group"), ("group", group_b))))
        if ("value", dims_b) not in store.published and ("value", dims_b) not in store.hidden:
            continue
        a, b = store.value(("value", dims_a)), store.value(("value", dims_b))
        if (a is None) == (b is None):
            continue
        known_is_a = a is not None
        hidden_dims, hidden_group = (dims_b, group_b) if known_is_a else (dims_a, group_a)
        known_dims, known_group = (dims_a, group_a) if known_is_a else (dims_b, group_b)
        if not store.hidden.get(("value", hidden_dims)):
            continue
        if not _counts_match(store, test_n, ((known_dims, known_group), (hidden_dims, hidden_group))):
            continue
        known = a if known_is_a else b
        recovered = _invert(kind, effect.value, known.value, known_is_a)
        if recovered is None:
            continue
        n = test_n.get(hidden_group) or store.value(("n_establishments", hidden_dims))
        shown = _consistent(
            recovered, known.error + effect.error * (1 + abs(known.value)), n, metric in shares, kind
        )
        if shown is None:
            continue
        candidates.append((hidden_dims, shown, known_dims))
    if len(candidates) != 1:
        return []  # none, or several periods fit: not pinned down
    hidden_dims, shown, known_dims = candidates[0]
    detail = (
        f"{_describe(hidden_dims)} from the {kind} {_fmt(effect.value)} in {table.file} {table.where(i)} "
        f"and {store.ref(('value', known_dims))}"
    )
    return _at(store.hidden[("value", hidden_dims)], shown, "pairwise_difference", detail)


def _counts_match(store: Store, test_n: dict, sides: tuple) -> bool:
    """The test's ``n_a``/``n_b`` agree with the counts of the indicator rows (when both are published)."""
    for dims, group in sides:
        n_test, n_row = test_n.get(group), store.value(("n_establishments", dims))
        if n_test is not None and n_row is not None and abs(n_test.value - n_row.value) > 0.5:
            return False
    return True


def _consistent(value: float, error: float, n: Number | None, share: bool, kind: str) -> str | None:
    """The recovered value as shown in a finding, or None when it cannot be the hidden cell."""
    if share and not -error <= value <= 1 + error:
        return None
    if n is not None and share and n.value > 0:
        k = value * n.value
        if abs(k - round(k)) > n.value * error + 1e-6 or n.value * error >= 0.5:
            return None
        return f"value={_fmt(round(k) / n.value)} ({int(round(k))} of {_fmt(n.value)})"
    if kind not in DIFFERENCE_KINDS:
        return None  # ratios and odds need a count to confirm them
    return f"value={value:.4g}"


# -- global tests --------------------------------------------------------------------------------------
def _global_test_findings(tables: list[Table]) -> list[Finding]:
    findings = []
    for table in tables:
        cols = {k: table.column(k) for k in ("group_a", "group_b", "n_a", "n_b")}
        if any(v is None for v in cols.values()):
            continue
        context = [
            k
            for k in (table.column("study"), table.column("metric"), table.column("indicator"))
            if k is not None
        ]
        counts: dict[tuple, dict[str, float]] = defaultdict(dict)
        for row in table.rows:
            scope = tuple(canonical(row[k]) for k in context)
            for side, n_col in (("group_a", "n_a"), ("group_b", "n_b")):
                group, n = canonical(row[cols[side]]), parse_number(row[cols[n_col]])
                if group and "|" not in group and group not in TOTAL_LABELS and n is not None:
                    counts[scope][group] = max(counts[scope].get(group, 0), n.value)
        for i, row in enumerate(table.rows):
            findings.extend(
                _global_row(table, i, row, cols, counts[tuple(canonical(row[k]) for k in context)])
            )
    return findings


def _global_row(table: Table, i: int, row: list[str], cols: dict, counts: dict[str, float]) -> list[Finding]:
    group_a = canonical(row[cols["group_a"]])
    if "|" in group_a:
        groups = [canonical(g) for g in row[cols["group_a"]].split("|")]
    elif group_a in TOTAL_LABELS and not row[cols["group_b"]].strip():
        # "all": the groups are those of the pairwise rows, when the row says how many ("k=4 groups").
        stated = re.search(r"\bk\s*=\s*(\d+)\s*groups?", " ".join(row))
        if stated is None or int(stated.group(1)) != len(counts):
            return []
        groups = sorted(counts)
    else:
        return []
    n = parse_number(row[cols["n_a"]])
    if n is None or not groups:
        return []
    known = sum(counts.get(g, 0) for g in groups)
    unknown = [g for g in groups if g not in counts]
    if len(unknown) == len(groups) or n.value <= known + 0.5:
        return []  # no group count to compare with (repeated measures), or nothing hidden
    published = [
        table.labels[k] for k, key in enumerate(table.header) if key in TEST_STATISTICS and row[k].strip()
    ]
    if not published:
        return []
    hidden = n.value - known
    detail = (
        f"n={_fmt(n.value)} over {'|'.join(groups)}, published counts sum to {_fmt(known)}: "
        f"{_fmt(hidden)} establishment(s) of a hidden cell behind {', '.join(published)}"
    )
    value = f"hidden={_fmt(hidden)}"
    if len(unknown) == 1:
        detail += f"; n of {unknown[0]} recovered"
        value = f"n_{unknown[0]}={_fmt(hidden)}"
    ref = Ref(table.file, table.where(i, cols["n_a"]))
    return _at([ref], value, "global_test_includes_hidden_cell", detail)


# -- 2×2 tables ----------------------------------------------------------------------------------------
def _two_by_two_findings(tables: list[Table], min_cell: int) -> list[Finding]:
    findings = []
    for table in tables:
        cols = {k: table.column(k) for k in ("n", "n_exposed", "events", "events_exposed")}
        if cols["n"] is None or cols["n_exposed"] is None:
            continue
        for i, row in enumerate(table.rows):
            values = {k: parse_number(row[c]) if c is not None else None for k, c in cols.items()}
            findings.extend(_two_by_two_row(table, i, values, cols, min_cell))
    return findings


def _two_by_two_row(table: Table, i: int, values: dict, cols: dict, min_cell: int) -> list[Finding]:
    get = {k: (v.value if v is not None else None) for k, v in values.items()}
    cells = {}
    if get["n"] is not None and get["n_exposed"] is not None:
        cells["unexposed"] = get["n"] - get["n_exposed"]
    if get["events"] is not None and get["events_exposed"] is not None:
        cells["events among the unexposed"] = get["events"] - get["events_exposed"]
        if get["n_exposed"] is not None:
            cells["non-events among the exposed"] = get["n_exposed"] - get["events_exposed"]
        if "unexposed" in cells:
            cells["non-events among the unexposed"] = cells["unexposed"] - cells["events among the unexposed"]
    if get["n"] is not None and get["events"] is not None:
        cells["non-events"] = get["n"] - get["events"]
    out = []
    for name, value in cells.items():
        if 0 < value < min_cell:
            ref = Ref(table.file, table.where(i, cols["n"]))
            detail = f"{name} = {_fmt(value)} by difference of the published counts of the row"
            out.extend(
                _at(
                    [ref],
                    f"{name.replace(' ', '_')}={_fmt(value)}",
                    "small_cell_by_difference",
                    detail,
                    kind="small_cell",
                )
            )
    return out


# -- entry point ---------------------------------------------------------------------------------------
def recover_hidden_cells(tables: list[Table], *, min_cell: int) -> list[Finding]:
    """Every hidden cell that the published numbers of ``tables`` give back (see the module docstring).

    Returns ``(file, location, kind, value, rule, detail)`` tuples, located at the hidden cell.
    """
    store = build_store(tables)
    slices = _slices(store)
    return [
        *_same_cell_findings(store),
        *_margin_findings(store, slices),
        *_model_findings(tables, min_cell),
        *_pairwise_findings(tables, store),
        *_global_test_findings(tables),
        *_two_by_two_findings(tables, min_cell),
    ]
