"""Apply the publication policy of a table (:mod:`cyberobs_lib.disclosure.policy`) with the run's ledger.

:func:`apply_policy` returns the table as it may be published: rows are kept, a row describing a hidden
population cell carries ``suppressed = True`` and empty counts and values (data contract), statistics
computed over a hidden group are withheld, adjusted p-values are recomputed over the published tests.
:func:`neutralise_formulas` makes every text cell of a CSV safe to open in a spreadsheet.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cyberobs_lib.disclosure.ledger import (
    TOTAL,
    CellKey,
    Ledger,
    Observation,
    SetKey,
    forget_ledger,
    open_ledger,
    run_marker,
    set_of,
)
from cyberobs_lib.disclosure.policy import (
    IDENTIFYING_COLUMNS,
    POLICY_MIN_CELL,
    ROW_COUNT_COLUMNS,
    CellsPolicy,
    DatasetPolicy,
    ExposurePolicy,
    IdentifyingColumnError,
    ModelPolicy,
    PerEstablishmentTableError,
    Ref,
    RowsPolicy,
    StatTestsPolicy,
    TablePolicy,
    check_min_cell,
)
from cyberobs_lib.stats.multiplicity import adjust_pvalues

__all__ = [
    "register_population",
    "apply_policy",
    "forget_ledger",
    "neutralise_formulas",
    "published_groups",
    "readjust",
    "run_settings",
]

#: Characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection"): =, +, -, @, tab, CR.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Multiple-comparison methods a family of tests can be recomputed with (``adjust_method`` prefix).
READJUSTABLE = ("holm", "fdr_bh", "fdr_by", "bonferroni", "hommel")


class PolicyError(ValueError):
    """A table does not have what its declared policy needs (a column, a period)."""


# ---- small helpers -----------------------------------------------------------------------------------


def _text(value: object) -> str:
    """A group or period as text: integral numbers without ``.0``, missing as ``""``."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _number(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _field(row: pd.Series, spec: str) -> str:
    """``"=value"`` is a constant; otherwise the row's column ``spec``."""
    if spec.startswith("="):
        return spec[1:]
    if spec not in row.index:
        raise PolicyError(f"column {spec!r} missing")
    return _text(row[spec])


def _small(value: float | None, min_cell: int) -> bool:
    return value is not None and 0 < value < min_cell


def _matching(columns: Sequence[str], patterns: Sequence[str]) -> list[str]:
    return [c for c in columns if any(fnmatch.fnmatchcase(c, p) for p in patterns)]


def blank_rows(frame: pd.DataFrame, mask: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    """Set ``columns`` to missing on the rows of ``mask`` (integer and boolean columns become nullable)."""
    out = frame.copy()
    if not mask.any():
        return out
    for col in columns:
        if col not in out.columns:
            continue
        if pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].astype("boolean")
        elif pd.api.types.is_integer_dtype(out[col]):
            out[col] = out[col].astype("Int64")
        out[col] = out[col].mask(mask)
    return out


def _check_identifiers(frame: pd.DataFrame, name: str) -> None:
    found = [c for c in frame.columns if str(c).lower() in IDENTIFYING_COLUMNS]
    if found:
        raise IdentifyingColumnError(
            f"table {name!r}: column(s) {found} identify an establishment, an audit or a host and cannot be "
            "published; drop them or aggregate the table (per-establishment rows stay in confidential reports)"
        )


def _small_row(row: pd.Series, min_cell: int, *, exempt: Sequence[str] = ()) -> bool:
    """A count of establishments or of nested units (audits, findings, events) ``0 < n < min_cell``."""
    return any(
        _small(_number(row[c]), min_cell) for c in ROW_COUNT_COLUMNS if c in row.index and c not in exempt
    )


def _mark(out: pd.DataFrame, hidden: np.ndarray, policy: object = None) -> pd.DataFrame:
    """Set ``suppressed`` (a flag already true stays true), blank the policy's ``hidden_blank`` keys on
    hidden rows and keep one row per hidden group when the policy says ``collapse_hidden``."""
    before = out["suppressed"] if "suppressed" in out.columns else pd.Series(False, index=out.index)
    before = before.astype("string").str.strip().str.lower().isin(["true", "1"]).to_numpy()
    flag = hidden | before
    out = blank_rows(out, flag, [c for c in getattr(policy, "hidden_blank", ()) if c in out.columns])
    out = out.assign(suppressed=flag)
    if getattr(policy, "collapse_hidden", False):
        out = out[~(out.duplicated(keep="first") & out["suppressed"]).to_numpy()].reset_index(drop=True)
    return out


# ---- cells -------------------------------------------------------------------------------------------


def _cell_key(row: pd.Series, ref: Ref, group: str | None = None, period: str | None = None) -> CellKey:
    return (
        ref.population,
        ref.dimension,
        group if group is not None else _field(row, ref.group),
        period if period is not None else _field(row, ref.period),
    )


def _ref_count(row: pd.Series, ref: Ref) -> float | None:
    if ref.count is not None:
        return _number(row[ref.count]) if ref.count in row.index else None
    if ref.count_from_share is not None:
        share, denominator = (_number(row[c]) for c in ref.count_from_share)
        return None if share is None or denominator is None else float(round(share * denominator))
    return None


def _span_keys(row: pd.Series, ref: Ref) -> list[CellKey]:
    first, last = (_number(row[c]) for c in ref.span)  # type: ignore[union-attr]
    group = _field(row, ref.group)
    if first is None or last is None:
        return []
    return [(ref.population, ref.dimension, group, str(y)) for y in range(int(first), int(last) + 1)]


def _apply_cells(
    frame: pd.DataFrame, policy: CellsPolicy, ledger: Ledger, min_cell: int, name: str
) -> pd.DataFrame:
    """A table under a :class:`CellsPolicy`: its cells registered and decided in the run's ledger (with the
    additive sets they belong to), then the rows and parts of rows about a withheld cell blanked and
    marked; known zeros and implied shares given back."""
    rows = [r for _, r in frame.iterrows()]
    ind_col = policy.indicator if policy.indicator in frame.columns else None
    refs_per_row = [policy.refs_for(r[ind_col] if ind_col else None) for r in rows]
    try:
        observations, vectors, lines = _observe_cells(rows, refs_per_row, ind_col)
    except PolicyError as err:
        raise PolicyError(f"table {name!r}: {err} (policy: {policy.description})") from None
    ledger.decide(
        observations,
        vectors=_published_sets(vectors, min_cell),
        period_vectors={line: [values] for line, values in lines.items() if TOTAL in values},
        min_cell=min_cell,
    )
    hide = _hidden_cells(frame, rows, refs_per_row, policy, ledger, min_cell, name)
    _give_back_known(frame, ind_col, policy, hide)
    out = frame
    for col, mask in hide.blank.items():
        out = blank_rows(out, mask, [col])
    out = out if hide.blank else frame.copy()
    if any(r.part for refs in refs_per_row for r in refs):
        out = out.assign(
            suppressed_part=["" if hide.row[i] else ",".join(p) for i, p in enumerate(hide.parts)]
        )
    return _mark(out, hide.row, policy)


def _observe_cells(rows: list, refs_per_row: list, ind_col: str | None):
    """What a table says about its cells: one :class:`Observation` per counted cell reference, the count
    vectors of each additive set (``(set, indicator:count) -> {group: count}``) and the values adding up
    over the periods of a group (``(indicator, dimension, group) -> {period: value}``)."""
    observations: list[Observation] = []
    vectors: dict[tuple[SetKey, str], dict[str, float]] = {}
    lines: dict[tuple[str, str, str], dict[str, float]] = {}
    for row, refs in zip(rows, refs_per_row, strict=True):
        for ref in refs:
            if ref.span is not None:
                continue
            if ref.additive is not None and _number(row.get(ref.additive)) is not None:
                key = _cell_key(row, ref)
                lines.setdefault(key[:3], {})[key[3]] = _number(row[ref.additive])  # type: ignore[assignment]
            count = _ref_count(row, ref)
            if ref.count is None and ref.count_from_share is None:
                continue
            key = _cell_key(row, ref)
            observations.append(Observation(key, count, public=ref.public))
            if count is not None:
                tag = f"{_text(row[ind_col]) if ind_col else ''}:{ref.count or 'share'}"
                vectors.setdefault((set_of(key), tag), {})[key[2]] = count
    return observations, vectors, lines


def _published_sets(vectors: dict, min_cell: int) -> dict[SetKey, list[dict[str, float]]]:
    """The count vectors of each additive set; a vector whose total row the small-count rule withholds
    publishes no total to subtract from, so its total is left out."""
    by_set: dict[SetKey, list[dict[str, float]]] = {}
    for (set_key, _), vector in vectors.items():
        if _small(vector.get(TOTAL), min_cell):
            vector = {g: v for g, v in vector.items() if g != TOTAL}
        by_set.setdefault(set_key, []).append(vector)
    return by_set


@dataclass
class _Hidden:
    """What a table hides: rows withheld whole, the parts of rows withheld, the cells blanked per column."""

    row: np.ndarray
    parts: list[list[str]]
    blank: dict[str, np.ndarray] = field(default_factory=dict)

    def blank_cells(self, columns: Iterable[str], i: int) -> None:
        for col in columns:
            self.blank.setdefault(col, np.zeros(len(self.row), dtype=bool))[i] = True


def _hidden_cells(
    frame: pd.DataFrame,
    rows: list,
    refs_per_row: list,
    policy: CellsPolicy,
    ledger: Ledger,
    min_cell: int,
    name: str,
) -> _Hidden:
    """Each row's withheld cells: a row about too few units (its private counts small), or any of its
    private cell references not published by the ledger (a part of a row hides its own columns; a row all
    of whose parts are hidden is hidden); public counts are never blanked. Cells the ledger never saw are
    reported (:func:`_warn_unknown`)."""
    hide = _Hidden(row=np.zeros(len(rows), dtype=bool), parts=[[] for _ in rows])
    unknown: set[CellKey] = set()
    for i, (row, refs) in enumerate(zip(rows, refs_per_row, strict=True)):
        public_counts = {r.count for r in refs if r.public and r.count}  # a public count is never blanked
        default_blank = [c for c in frame.columns if c not in policy.keys and c not in public_counts]
        private = [r for r in refs if not r.public]
        parted = any(r.part for r in private)  # each part checks its own count
        if private and not parted and _small_row(row, min_cell, exempt=(*public_counts, *policy.exempt)):
            hide.row[i] = True
            hide.blank_cells(default_blank, i)
        for ref in private:
            keys = _span_keys(row, ref) if ref.span is not None else [_cell_key(row, ref)]
            statuses = [ledger.status(k) for k in keys]
            unknown.update(k for k, s in zip(keys, statuses, strict=True) if s is None)
            if not (any(s != "published" for s in statuses) or _small(_ref_count(row, ref), min_cell)):
                continue
            if ref.part:
                hide.parts[i].append(ref.part)
            else:
                hide.row[i] = True
            hide.blank_cells(
                default_blank if ref.blank is None else _matching(list(frame.columns), ref.blank), i
            )
        parts = [r.part for r in private if r.part]
        if parts and set(hide.parts[i]) == set(parts):
            hide.row[i] = True
    _warn_unknown(unknown, name)
    return hide


def _give_back_known(frame: pd.DataFrame, ind_col: str | None, policy: CellsPolicy, hide: _Hidden) -> None:
    """Un-hide what the published rows already tell: zero values of event counts (``zero_values``) and
    shares the other rows force (``implied_shares``: the share only; its interval and count stay blank)."""
    if policy.zero_values and ind_col and "value" in frame.columns:
        zero = _known_zeros(frame, ind_col, policy.zero_values, hide.row)
        for col in ("value", "ci_low", "ci_high", "ci_method"):
            if col in hide.blank:
                hide.blank[col] &= ~zero
        hide.row &= ~zero
    if policy.implied_shares and ind_col and {"value", "n_establishments"} <= set(frame.columns):
        implied = _implied_shares(frame, ind_col, hide.row, exclude=tuple(policy.by_indicator))
        if "value" in hide.blank:
            hide.blank[
                "value"
            ] &= ~implied  # the share only: its interval and count would give the cell's size
        hide.row &= ~implied  # published (as the zeros of event counts): its count stays blank


def _known_zeros(
    frame: pd.DataFrame, ind_col: str, indicators: Sequence[str], hidden: np.ndarray
) -> np.ndarray:
    """Hidden rows of event counts whose 0 the published rows already give, to publish as 0.

    An event count adds up over the groups of a period and over the years of a group: a total of 0 (over
    the groups, or over the years in the period ``all``) makes every part 0, and a period ``all`` whose
    every year shows 0 is 0. Such a 0 says nothing more; hidden, it would only be recovered. A 0 is never
    shown beside a non-zero total, where it would pin the remaining hidden parts.
    """
    value = pd.to_numeric(frame["value"], errors="coerce").to_numpy()
    period = (
        frame["period"].map(_text) if "period" in frame.columns else pd.Series("", index=frame.index)
    ).tolist()
    group = frame["group"].map(_text).tolist()
    indicator = frame[ind_col].tolist()
    where = {(indicator[i], group[i], period[i]): i for i in range(len(frame))}
    candidate = np.array(
        [indicator[i] in indicators and value[i] == 0 for i in range(len(frame))], dtype=bool
    )
    zero = np.zeros(len(frame), dtype=bool)
    shown = candidate & ~hidden  # zeros already published

    def shows_zero(key: tuple) -> bool:
        k = where.get(key)
        return k is not None and bool(shown[k])

    # a published total equal to the published groups' sum: the hidden groups hold no event either
    rest_zero: set[tuple[str, str]] = set()
    for (ind, g, per), k in where.items():
        if g != TOTAL or ind not in indicators or hidden[k] or np.isnan(value[k]):
            continue
        parts = [j for (i2, g2, p2), j in where.items() if i2 == ind and p2 == per and g2 != TOTAL]
        published = [value[j] for j in parts if not hidden[j]]
        if not np.isnan(published).any() and value[k] - sum(published) == 0:
            rest_zero.add((ind, per))

    changed = True
    while changed:
        changed = False
        for i in np.flatnonzero(candidate & hidden & ~zero):
            ind, g, per = indicator[i], group[i], period[i]
            years = [where[k] for k in where if k[0] == ind and k[1] == g and k[2] != TOTAL]
            if (
                shows_zero((ind, TOTAL, per))  # a total of 0 over the groups
                or (ind, per) in rest_zero  # a total the published groups already make up
                or (per != TOTAL and shows_zero((ind, g, TOTAL)))  # a total of 0 over the years
                or (per == TOTAL and years and all(shown[k] for k in years))  # every year 0
            ):
                zero[i] = shown[i] = changed = True
    return zero


def _implied_shares(
    frame: pd.DataFrame, ind_col: str, hidden: np.ndarray, *, exclude: tuple[str, ...] = ()
) -> np.ndarray:
    """Hidden rows whose share (of ``n_establishments``) the published rows of their set already give.

    In one (indicator, period) set with a published total row, the establishments with the property in the
    hidden groups are the total's numerator minus the published groups' numerators, and the hidden groups'
    establishments the total's count minus the published counts. When the first is 0, every hidden share
    is 0; when it equals the second, every hidden share is 1. A reader recomputes those shares anyway
    (Hundepool et al. 2012, §4.2: a cell implied by the margins is disclosed, protected or not); hiding
    them protects nothing, so the share is published — never the row's count or interval, which would
    give the cell's size.
    """
    value = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float)
    count = pd.to_numeric(frame["n_establishments"], errors="coerce").to_numpy(dtype=float)
    period = frame["period"].map(_text) if "period" in frame.columns else pd.Series("", index=frame.index)
    sets = pd.DataFrame({"ind": frame[ind_col].map(_text).to_numpy(), "period": period.to_numpy(),
                         "group": frame["group"].map(_text).to_numpy()})  # fmt: skip
    implied = np.zeros(len(frame), dtype=bool)
    for (ind, _), rows in sets.groupby(["ind", "period"], sort=False).groups.items():
        idx = np.asarray(rows)
        if ind in exclude or not _share_method(frame, idx):
            continue
        total = idx[(sets["group"].to_numpy()[idx] == TOTAL)]
        parts = idx[(sets["group"].to_numpy()[idx] != TOTAL)]
        if len(total) != 1 or hidden[total[0]] or not hidden[parts].any():
            continue
        shown = parts[~hidden[parts]]
        if np.isnan(value[total[0]]) or np.isnan(count[total[0]]) or np.isnan(value[shown]).any():
            continue
        numerators = np.round(value[shown] * count[shown])
        rest_with = round(value[total[0]] * count[total[0]]) - numerators.sum()
        rest_all = count[total[0]] - count[shown].sum()
        inside = parts[hidden[parts]]
        if rest_with == 0:
            implied[inside] = value[inside] == 0
        elif rest_with == rest_all:
            implied[inside] = value[inside] == 1
    return implied


#: ``ci_method`` of a proportion's interval: the rows' ``value`` is a share of their establishments.
SHARE_METHODS = ("wilson", "clopper", "exact binomial", "agresti")


def _share_method(frame: pd.DataFrame, idx: np.ndarray) -> bool:
    if "ci_method" not in frame.columns:
        return False
    methods = frame["ci_method"].iloc[idx].map(_text).str.lower()
    return bool(methods.str.startswith(SHARE_METHODS).all())


def _warn_unknown(unknown: set[CellKey], name: str) -> None:
    if unknown:
        shown = ", ".join("|".join(k) for k in sorted(unknown)[:8])
        warnings.warn(
            f"table {name!r}: {len(unknown)} population cell(s) no published table or published_groups() has "
            f"described yet were withheld ({shown}{', ...' if len(unknown) > 8 else ''})",
            stacklevel=4,
        )


# ---- tests -------------------------------------------------------------------------------------------


def _period_of(frame: pd.DataFrame, spec: str, name: str) -> pd.Series:
    if spec.startswith("="):
        return pd.Series(spec[1:], index=frame.index)
    if spec not in frame.columns:
        raise PolicyError(
            f"table {name!r} needs a {spec!r} column naming the period of its populations (a year, or "
            "'all' for the first audit of each establishment over every year)"
        )
    return frame[spec].map(_text)


def _global_groups(frame: pd.DataFrame, i: int) -> list[str]:
    """Groups of the pairwise rows of the same study and metric as row ``i`` (a global test over 'all')."""
    row = frame.iloc[i]
    same = frame[(frame.get("study") == row.get("study")) & (frame["metric"] == row["metric"])]
    groups: list[str] = []
    for a, b in zip(same["group_a"].map(_text), same["group_b"].map(_text), strict=True):
        if b and "|" not in a and a != TOTAL and "=" not in a:
            groups += [g for g in (a, b) if g not in groups]
    return groups


def _test_keys(
    frame: pd.DataFrame, i: int, policy: StatTestsPolicy, period: str, ledger: Ledger
) -> list[CellKey]:
    row = frame.iloc[i]
    pop = policy.population
    a, b = _text(row.get("group_a")), _text(row.get("group_b"))
    if policy.exposure:
        return [(pop, "exposure", a.split("=", 1)[0], period)]
    dimension = policy.dimension_by_metric.get(_text(row.get("metric")), policy.default_dimension)
    if dimension is None or (a in policy.continuous_terms and not b):
        return [(pop, "family", TOTAL, period)]
    if "=" in a:  # model term: term=level against the reference level in group_b
        term, level = a.split("=", 1)
        if term == "family":
            return [(pop, dimension, g, period) for g in (level, b) if g]
        return [(policy.covariates_population, term, g, period) for g in (level, b) if g]
    if "|" in a:
        return [(pop, dimension, g, period) for g in a.split("|") if g]
    if a == TOTAL and not b:
        groups = _global_groups(frame, i) or ledger.groups((pop, dimension, period))
        return [(pop, dimension, g, period) for g in groups] or [(pop, dimension, TOTAL, period)]
    if a and not b:  # one group over time (a trend): every period of that group
        periods = ledger.periods(pop, dimension, a)
        return [(pop, dimension, a, p) for p in periods] or [(pop, dimension, a, period)]
    return [(pop, dimension, g, period) for g in (a, b) if g]


def readjust(tests: pd.DataFrame, withheld: np.ndarray, original: pd.DataFrame) -> pd.DataFrame:
    """Recompute ``p_adjusted`` over the published tests of every family that lost a test.

    A family is ``(study, adjust_method)``, and the metric too when the method says ``within metric``.
    Adjusted p-values computed with a withheld p-value would give it back (a Holm-adjusted value is a
    multiple of a smaller p-value); the family is adjusted again over the published rows with the same
    method (``adjust_method`` gains ``(recomputed over the published tests)``), or ``p_adjusted`` is
    blanked when the method is not one :func:`cyberobs_lib.stats.multiplicity.adjust_pvalues` knows.
    """
    if "p_adjusted" not in tests.columns or "adjust_method" not in tests.columns:
        return tests
    out = tests.copy()
    method = original["adjust_method"].map(_text)
    had_p = (
        pd.to_numeric(original["p_value"], errors="coerce").notna().to_numpy()
        if "p_value" in original
        else withheld
    )
    within = method.str.contains("within metric")
    family = original.get("study", pd.Series("", index=original.index)).map(_text) + "\x1f" + method
    metric = (
        original["metric"].map(_text) if "metric" in original.columns else pd.Series("", index=original.index)
    )
    family = family.where(~within, family + "\x1f" + metric)
    for fam in family[withheld & had_p & method.ne("").to_numpy()].unique():
        rows = (family == fam).to_numpy() & ~withheld
        base = method[family == fam].iloc[0].split()[0]
        if base not in READJUSTABLE:
            out.loc[rows, "p_adjusted"] = np.nan
            continue
        sub = out.loc[rows, ["p_value"]].assign(
            p_value=pd.to_numeric(out.loc[rows, "p_value"], errors="coerce")
        )
        out.loc[rows, "p_adjusted"] = adjust_pvalues(sub, method=base)["p_adjusted"].to_numpy()
        out.loc[rows, "adjust_method"] = method[rows] + " (recomputed over the published tests)"
    return out


def _apply_tests(
    frame: pd.DataFrame, policy: StatTestsPolicy, ledger: Ledger, min_cell: int, name: str
) -> pd.DataFrame:
    periods = _period_of(frame, policy.period, name)
    hidden = np.zeros(len(frame), dtype=bool)
    unknown: set[CellKey] = set()
    for i in range(len(frame)):
        keys = _test_keys(frame, i, policy, periods.iloc[i], ledger)
        statuses = [ledger.status(k) for k in keys]
        unknown.update(k for k, s in zip(keys, statuses, strict=True) if s is None)
        hidden[i] = any(s != "published" for s in statuses) or _small_row(frame.iloc[i], min_cell)
    _warn_unknown(unknown, name)
    columns = [c for c in frame.columns if c not in policy.keys]
    out = blank_rows(frame, hidden, columns)
    out = readjust(out, hidden, frame)
    return _mark(out, hidden, policy)


# ---- models ------------------------------------------------------------------------------------------


def _apply_model(
    frame: pd.DataFrame, policy: ModelPolicy, ledger: Ledger, min_cell: int, name: str
) -> pd.DataFrame:
    periods = _period_of(frame, policy.period, name)
    hidden = np.zeros(len(frame), dtype=bool)
    unknown: set[CellKey] = set()
    for i in range(len(frame)):
        row = frame.iloc[i]
        term, level, reference = (_text(row.get(c)) for c in ("term", "level", "reference"))
        if not level:  # a continuous term: one coefficient over the whole model
            hidden[i] = _small_row(row, min_cell)
            continue
        population = policy.population if term == "family" else policy.covariates_population
        keys = [(population, term, g, periods.iloc[i]) for g in (level, reference) if g]
        statuses = [ledger.status(k) for k in keys]
        unknown.update(k for k, s in zip(keys, statuses, strict=True) if s is None)
        hidden[i] = any(s != "published" for s in statuses) or _small_row(row, min_cell)
    _warn_unknown(unknown, name)
    out = blank_rows(frame, hidden, [c for c in frame.columns if c not in policy.keys])
    if (
        "n" in out.columns
    ):  # the model's size adds up the published n_family: it would give a hidden family back
        model = (
            frame["outcome"].map(_text) if "outcome" in frame.columns else pd.Series("", index=frame.index)
        )
        family_rows = (frame["term"].map(_text) == "family").to_numpy() if "term" in frame.columns else hidden
        lost = model.isin(model[hidden & family_rows]).to_numpy()
        out = blank_rows(out, lost, ["n"])
    if "p_adjusted" in out.columns and "adjust_method" not in out.columns:
        out = readjust(out.assign(adjust_method=np.where(frame["p_adjusted"].notna(), "fdr_bh", "")), hidden,
                       frame.assign(adjust_method=np.where(frame["p_adjusted"].notna(), "fdr_bh", ""))
                       ).drop(columns="adjust_method")  # fmt: skip
    return _mark(out, hidden)


# ---- exposure 2 x 2 ----------------------------------------------------------------------------------


def exposure_cells(row: pd.Series) -> dict[str, float | None]:
    """The four interior cells of an exposure × outcome table from its margins.

    >>> exposure_cells(pd.Series({"n": 93, "n_exposed": 62, "events": 7, "events_exposed": 6}))
    {'exposed_event': 6.0, 'exposed_no_event': 56.0, 'unexposed_event': 1.0, 'unexposed_no_event': 30.0}
    """
    n, exposed, events, both = (_number(row.get(c)) for c in ("n", "n_exposed", "events", "events_exposed"))
    if None in (n, exposed, events, both):
        return dict.fromkeys(("exposed_event", "exposed_no_event", "unexposed_event", "unexposed_no_event"))
    return {
        "exposed_event": both,
        "exposed_no_event": exposed - both,
        "unexposed_event": events - both,
        "unexposed_no_event": n - exposed - (events - both),
    }


def _apply_exposure(
    frame: pd.DataFrame, policy: ExposurePolicy, ledger: Ledger, min_cell: int, name: str
) -> pd.DataFrame:
    if "exposure" not in frame.columns:
        raise PolicyError(f"table {name!r} needs an 'exposure' column")
    observations, interior_small = [], []
    for _, row in frame.iterrows():
        cells = exposure_cells(row)
        values = list(cells.values())
        if any(v is None for v in values):
            margins = None  # not estimable: no counts to publish
        else:
            e, f, u, g = values  # exposed with / without event, unexposed with / without
            margins = min([m for m in (e + f, u + g, e + u, f + g) if m > 0], default=0.0)
        interior_small.append(any(_small(v, min_cell) for v in values))
        key = ("incident_exposure", "exposure", _text(row["exposure"]), TOTAL)
        observations.append(Observation(key, margins))
    ledger.decide(observations, min_cell=min_cell)
    hidden = np.array(
        [ledger.status(o.key) != "published" or _small_row(r, min_cell, exempt=policy.interior)
         for o, (_, r) in zip(observations, frame.iterrows(), strict=True)], dtype=bool
    )  # fmt: skip
    out = blank_rows(frame, hidden, [c for c in frame.columns if c not in policy.keys])
    out = blank_rows(
        out, np.array(interior_small) & ~hidden, [c for c in policy.interior if c in out.columns]
    )
    return _mark(out, hidden, policy)


# ---- entry point -------------------------------------------------------------------------------------


def apply_policy(
    frame: pd.DataFrame, policy: TablePolicy, ledger: Ledger, *, min_cell: int, name: str
) -> pd.DataFrame:
    """The table as a published run may save it (see the module docstring); ``frame`` is not modified.

    Raises
    ------
    PerEstablishmentTableError
        One row per establishment (:class:`~cyberobs_lib.disclosure.policy.RowsPolicy`).
    IdentifyingColumnError
        Any other table with an identifying column (FINESS, name, audit id, host...).
    PolicyError
        A column the policy needs is missing.
    """
    if isinstance(policy, RowsPolicy):
        instead = f"; publish {policy.aggregate!r} instead" if policy.aggregate else ""
        raise PerEstablishmentTableError(
            f"table {name!r} has one row per establishment ({policy.description}): it stays in confidential "
            f"reports and is refused in a published run{instead}"
        )
    _check_identifiers(frame, name)
    if isinstance(policy, DatasetPolicy):
        return frame.copy()
    if frame.empty:
        return _mark(frame.copy(), np.zeros(0, dtype=bool))
    if isinstance(policy, CellsPolicy):
        return _apply_cells(frame, policy, ledger, min_cell, name)
    if isinstance(policy, StatTestsPolicy):
        return _apply_tests(frame, policy, ledger, min_cell, name)
    if isinstance(policy, ModelPolicy):
        return _apply_model(frame, policy, ledger, min_cell, name)
    if isinstance(policy, ExposurePolicy):
        return _apply_exposure(frame, policy, ledger, min_cell, name)
    raise TypeError(f"unknown policy kind {type(policy).__name__}")


# ---- CSV injection -----------------------------------------------------------------------------------


def _numeric_text(values: pd.Series) -> bool:
    """True when every non-empty text of a column reads as a number (a numeric column written as text)."""
    text = values.dropna().astype(str).str.strip()
    text = text[text != ""]
    return not text.empty and pd.to_numeric(text, errors="coerce").notna().all()


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix with ``'`` every text cell a spreadsheet would read as a formula (OWASP CSV injection).

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe, so
    that Excel and LibreOffice show it as text. Numeric columns, and text columns whose every value is a
    number (``-0.5``), are left alone: negative numbers stay numbers. Column names are neutralised too.

    References
    ----------
    OWASP, "CSV Injection" (https://owasp.org/www-community/attacks/CSV_Injection).

    Examples
    --------
    >>> t = pd.DataFrame({"group": ['=HYPERLINK("http://x","y")', "CH", "@SUM(A1)"], "value": [-0.5, 1.0, 2.0]})
    >>> neutralise_formulas(t).to_dict("list")
    {'group': ['\\'=HYPERLINK("http://x","y")', 'CH', "'@SUM(A1)"], 'value': [-0.5, 1.0, 2.0]}
    >>> neutralise_formulas(pd.DataFrame({"reason": pd.Series([], dtype="string")})).shape  # empty text column
    (0, 1)
    """
    out = frame.copy()
    for col in out.columns:
        values = out[col]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        if _numeric_text(values):
            continue
        # a plain boolean mask (on an empty "string" column, ``map`` keeps the string dtype)
        risky = values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_STARTS)).astype(bool)
        if risky.any():
            out[col] = values.astype(object).where(~risky, "'" + values.astype(str))
    renamed = {c: "'" + c for c in out.columns if isinstance(c, str) and c.startswith(FORMULA_STARTS)}
    return out.rename(columns=renamed) if renamed else out


# ---- run settings and populations --------------------------------------------------------------------


def run_settings(output_dir: str | Path | None, *, published: bool, min_cell: int | None) -> tuple[bool, int]:
    """``(published, min_cell)`` of a call inside a run: the run marker's ``published=True`` and the larger
    ``min_cell`` win over the arguments (INTERFACES §2); a published run refuses a ``min_cell`` below the
    floor (:func:`~cyberobs_lib.disclosure.policy.check_min_cell`)."""
    marker = run_marker(output_dir)
    published = bool(published) or bool(marker.get("published", False))
    values = [int(v) for v in (min_cell, marker.get("min_cell")) if v is not None]
    chosen = max(values) if values else POLICY_MIN_CELL
    return published, check_min_cell(chosen, published=published)


def register_population(
    output_dir: str | Path | None,
    population: str,
    dimension: str,
    cells: pd.DataFrame,
    *,
    group: str = "group",
    period: str = "period",
    count: str = "n",
    additive: str | None = None,
    published: bool = True,
    min_cell: int | None = None,
) -> pd.DataFrame:
    """Register every cell of a population (groups × periods) in one decision, and say which are published.

    Like :func:`published_groups` for several periods at once; with ``additive``, a column whose values add
    up over the periods of a group (declarations per year and their ``all``), the periods of each group are
    a margin set too, decided together with the groups of each period.

    Parameters
    ----------
    output_dir, population, dimension, published, min_cell
        See :func:`published_groups`.
    cells : DataFrame
        One row per group × period (totals ``all`` included where they are published), with ``count``
        establishments and, optionally, the ``additive`` value.
    group, period, count, additive : str
        Column names in ``cells``.

    Returns
    -------
    DataFrame
        ``cells`` with a bool ``published`` column.

    Examples
    --------
    >>> cells = pd.DataFrame({"group": ["CH", "EHPAD", "all"] * 3, "period": ["2024"] * 3 + ["2025"] * 3 + ["all"] * 3,
    ...                       "n": [6, 9, 15, 1, 9, 10, 6, 14, 20], "declarations": [6, 9, 15, 1, 9, 10, 7, 18, 25]})
    >>> out = register_population(None, "declaring", "family", cells, additive="declarations")
    >>> out.loc[~out["published"], ["group", "period"]].values.tolist()
    [['CH', '2024'], ['EHPAD', '2024'], ['CH', '2025'], ['EHPAD', '2025']]
    >>> forget_ledger(None)
    """
    published, min_cell = run_settings(output_dir, published=published, min_cell=min_cell)
    keys = [
        (population, dimension, _text(g), _text(p)) for g, p in zip(cells[group], cells[period], strict=True)
    ]
    if not published:
        return cells.assign(published=True)
    lines: dict[tuple[str, str, str], dict[str, float]] = {}
    if additive is not None:
        for key, value in zip(keys, cells[additive], strict=True):
            if _number(value) is not None:
                lines.setdefault(key[:3], {})[key[3]] = _number(value)  # type: ignore[assignment]
    ledger = open_ledger(output_dir, min_cell=min_cell)
    ledger.decide(
        [Observation(k, _number(n)) for k, n in zip(keys, cells[count], strict=True)],
        period_vectors={line: [v] for line, v in lines.items() if TOTAL in v},
        min_cell=min_cell,
    )
    ledger.save()
    return cells.assign(published=[ledger.status(k) == "published" for k in keys])


def published_groups(
    output_dir: str | Path | None,
    population: str,
    dimension: str,
    period: object,
    counts: Mapping[str, float] | pd.Series,
    *,
    published: bool = True,
    min_cell: int | None = None,
) -> list[str]:
    """Register a population's cells in the run's ledger and return the groups a table may show.

    Call it before computing a statistic over several groups (a global test, a model): computed over the
    returned groups only, the statistic says nothing about a hidden group. Registering the complete
    partition up front also lets the ledger choose complementary cells with full knowledge.

    Parameters
    ----------
    output_dir : path or None
        The run's output folder (its ledger); None or "" for an in-memory ledger.
    population, dimension, period
        The cells' population (``audited``, ``declaring``...), dimension (``family``...) and period (a
        year, or ``"all"``).
    counts : mapping or Series, group -> establishments
        Every group of the dimension; the total ``all`` is their sum unless given.
    published : bool, default True
        False (a confidential run, and no run marker saying otherwise): every group is returned.
    min_cell : int, optional
        The run's threshold (the run marker's when larger).

    Returns
    -------
    list of str
        The groups (total excluded) whose cells are published, in the order of ``counts``.

    Examples
    --------
    >>> published_groups(None, "audited", "family", 2025, {"CH": 9, "CHU/CHR": 3, "EHPAD": 46, "SSR": 7})
    ['CH', 'EHPAD']
    >>> forget_ledger(None)
    """
    published, min_cell = run_settings(output_dir, published=published, min_cell=min_cell)
    counts = {_text(g): _number(n) for g, n in dict(counts).items()}
    if not published:
        return [g for g in counts if g != TOTAL]
    if TOTAL not in counts:
        counts[TOTAL] = float(sum(n or 0 for n in counts.values()))
    period = _text(period)
    ledger = open_ledger(output_dir, min_cell=min_cell)
    ledger.decide(
        [Observation((population, dimension, g, period), n) for g, n in counts.items()], min_cell=min_cell
    )
    ledger.save()
    return [
        g for g in counts if g != TOTAL and ledger.status((population, dimension, g, period)) == "published"
    ]
