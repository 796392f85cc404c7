"""Small-cell suppression of published tables, with secondary suppression against margins.

Primary suppression marks the cells that are about too few establishments (``min_count`` rule, health
practice: at least 5), or that break the French statistical-secrecy rules (``french_secrecy``: at least
3 units, and no unit above 85 % of the cell's total). Secondary suppression then hides one more cell
in every set of cells that adds up to a published total and holds exactly one hidden cell, since the
total would otherwise give that cell back. Rows are never deleted: suppressed cells keep their keys,
carry ``suppressed = True`` and an empty value (data contract, "Output: a report folder").

:func:`suppress_small_cells` takes what it needs as three small values: the secrecy rule
(:class:`SecrecyRule`), the table's layout (:class:`TableLayout`) and, for the dominance rule, the units'
contributions (:class:`UnitContributions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, get_args

import numpy as np
import pandas as pd

from cyberobs_lib.config import DEFAULT_MIN_CELL

#: French statistical secrecy (INSEE table rules): fewer units than this is secret...
FRENCH_MIN_UNITS = 3
#: ...and so is a cell where one unit holds more than this share of the total.
FRENCH_DOMINANCE = 0.85

DEFAULT_VALUE_COLS = ("value", "ci_low", "ci_high")
DEFAULT_CELL_COLS = ("indicator", "group", "period")
DEFAULT_GROUP_COLS = ("indicator", "period")
DEFAULT_TOTAL_KEYS: Mapping[str, object] = MappingProxyType({"group": "all"})
#: Columns of tests.csv blanked when a group is too small.
TESTS_BLANKED = ("statistic", "p_value", "p_adjusted", "effect_size", "ci_low", "ci_high")

Rule = Literal["min_count", "french_secrecy"]
Margin = tuple[Sequence[str], Mapping[str, object]]


@dataclass(frozen=True)
class SecrecyRule:
    """When a cell is secret.

    Parameters
    ----------
    name : {"min_count", "french_secrecy"}, default "min_count"
        ``min_count``: a cell is secret when ``0 < n < min_cell`` or ``n`` is missing.
        ``french_secrecy``: the same with ``min_cell=3``, plus dominance when contributions are given.
    min_cell : int, optional
        Fewest units a published cell may have. Default 5 (:data:`~cyberobs_lib.config.DEFAULT_MIN_CELL`)
        for ``min_count``, 3 for ``french_secrecy``.
    dominance : float, default 0.85
        Largest share of a cell's total one unit may hold (``french_secrecy`` with contributions).

    Raises
    ------
    ValueError
        For an unknown rule name or a ``min_cell`` below 1.

    Examples
    --------
    >>> SecrecyRule().threshold, SecrecyRule("french_secrecy").threshold, SecrecyRule(min_cell=11).threshold
    (5, 3, 11)
    """

    name: Rule = "min_count"
    min_cell: int | None = None
    dominance: float = FRENCH_DOMINANCE

    def __post_init__(self) -> None:
        if self.name not in get_args(Rule):
            raise ValueError(f"rule must be 'min_count' or 'french_secrecy', not {self.name!r}")
        if self.min_cell is not None and self.min_cell < 1:
            raise ValueError(f"min_cell must be at least 1, not {self.min_cell}")

    @property
    def threshold(self) -> int:
        """The fewest units a published cell may have under this rule."""
        if self.min_cell is not None:
            return self.min_cell
        return DEFAULT_MIN_CELL if self.name == "min_count" else FRENCH_MIN_UNITS


@dataclass(frozen=True)
class TableLayout:
    """Where a result table keeps its counts, its published values, its cell keys and its totals.

    Parameters
    ----------
    count_col : str, default "n_establishments"
        Number of establishments (units) behind each cell.
    value_cols : sequence of str, optional
        Columns blanked in suppressed rows; default ``value, ci_low, ci_high`` (those present). Put
        ``count_col`` here when the count itself is the published figure (a frequency table).
    cell_cols : sequence of str, default ("indicator", "group", "period")
        Columns that identify a cell, shared by the table and the contributions (dominance rule).
    group_cols : sequence of str, default ("indicator", "period")
        Rows sharing these values form one set that adds up to the set's total row.
    total_keys : mapping, default {"group": "all"}
        Column values identifying the total row of a set; None or ``{}`` disables secondary suppression.
    margins : sequence of (group_cols, total_keys), optional
        Several additive relations (e.g. the two margins of a family × region table); replaces
        ``group_cols``/``total_keys``.

    Examples
    --------
    >>> TableLayout().additive_sets()
    [(('indicator', 'period'), mappingproxy({'group': 'all'}))]
    >>> TableLayout(group_cols=["period"], total_keys=None).additive_sets()
    [(['period'], {})]
    """

    count_col: str = "n_establishments"
    value_cols: Sequence[str] | None = None
    cell_cols: Sequence[str] = DEFAULT_CELL_COLS
    group_cols: Sequence[str] = DEFAULT_GROUP_COLS
    total_keys: Mapping[str, object] | None = field(default_factory=lambda: DEFAULT_TOTAL_KEYS)
    margins: Sequence[Margin] | None = None

    def additive_sets(self) -> Sequence[Margin]:
        """The (group columns, total keys) relations secondary suppression keeps safe."""
        if self.margins is not None:
            return self.margins
        return [(self.group_cols, self.total_keys or {})]

    def values_in(self, table: pd.DataFrame) -> list[str]:
        """The columns of ``table`` blanked in suppressed rows; KeyError for a missing column."""
        if self.count_col not in table.columns:
            raise KeyError(
                f"count column {self.count_col!r} not in the table; pass TableLayout(count_col=...)"
            )
        if self.value_cols is None:
            return [c for c in DEFAULT_VALUE_COLS if c in table.columns]
        missing = [c for c in self.value_cols if c not in table.columns]
        if missing:
            raise KeyError(f"value columns not in the table: {missing}")
        return list(self.value_cols)


@dataclass(frozen=True, eq=False)
class UnitContributions:
    """Unit-level values behind the cells, for the dominance rule of ``french_secrecy``.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per unit and cell (several rows of a unit in a cell are summed): the layout's
        ``cell_cols`` + ``unit_col`` + ``contribution_col``.
    unit_col : str, default "establishment"
        Unit identifier (pseudonym).
    contribution_col : str, default "contribution"
        The unit's contribution to the cell's total (absolute values are used).
    """

    frame: pd.DataFrame
    unit_col: str = "establishment"
    contribution_col: str = "contribution"


#: The defaults of :func:`suppress_small_cells`: ``min_count`` with 5 units, an ``indicators.csv`` layout.
MIN_COUNT = SecrecyRule()
INDICATORS_LAYOUT = TableLayout()


def _as_bool(values: pd.Series) -> np.ndarray:
    """Read a ``suppressed`` column that may hold bools, 0/1 or the strings "true"/"false"."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.fillna(False).astype(bool).to_numpy()
    return values.astype("string").str.strip().str.lower().isin(["true", "1", "yes"]).fillna(False).to_numpy()


def _small_counts(count: pd.Series, min_cell: int) -> np.ndarray:
    """Primary suppression: True where the count is missing or ``0 < n < min_cell``."""
    return (count.isna() | ((count > 0) & (count < min_cell))).to_numpy()


def _already_suppressed(table: pd.DataFrame) -> np.ndarray:
    """The input's own ``suppressed`` flags (all False when the column is absent)."""
    if "suppressed" not in table.columns:
        return np.zeros(len(table), dtype=bool)
    return _as_bool(table["suppressed"])


def _dominance(
    table: pd.DataFrame, rule: SecrecyRule, layout: TableLayout, contributions: UnitContributions | None
) -> np.ndarray:
    """True for the cells one unit dominates (``french_secrecy`` with contributions); else all False."""
    if rule.name != "french_secrecy" or contributions is None:
        return np.zeros(len(table), dtype=bool)
    cell_cols = [c for c in layout.cell_cols if c in table.columns]
    if not cell_cols:
        raise KeyError(f"none of cell_cols {list(layout.cell_cols)} is in the table")
    return _dominated(table, contributions, cell_cols=cell_cols, dominance=rule.dominance)


def _dominated(
    table: pd.DataFrame, contributions: UnitContributions, *, cell_cols: Sequence[str], dominance: float
) -> np.ndarray:
    """True for the rows of ``table`` whose largest unit holds more than ``dominance`` of the total."""
    frame = contributions.frame
    unit_col, contribution_col = contributions.unit_col, contributions.contribution_col
    missing = [c for c in (*cell_cols, unit_col, contribution_col) if c not in frame.columns]
    if missing:
        raise KeyError(f"contributions lacks columns {missing}")
    per_unit = (
        frame.assign(_abs=frame[contribution_col].abs())
        .groupby([*cell_cols, unit_col], dropna=False, observed=True)["_abs"]
        .sum()
    )
    per_cell = per_unit.groupby(level=list(range(len(cell_cols))), dropna=False).agg(["sum", "max"])
    share = (per_cell["max"] / per_cell["sum"].where(per_cell["sum"] > 0)).rename("_share").reset_index()
    share.columns = [*cell_cols, "_share"]
    keyed = table[list(cell_cols)].merge(share, on=list(cell_cols), how="left", validate="many_to_one")
    return (keyed["_share"] > dominance).to_numpy()


def _secondary(
    table: pd.DataFrame, suppressed: np.ndarray, count: pd.Series, margins: Sequence[Margin]
) -> np.ndarray:
    """Add secondary suppressions until no margin set holds exactly one suppressed cell."""
    suppressed = suppressed.copy()
    n = count.to_numpy(dtype=float, na_value=np.nan)
    relations = []
    for group_cols, total_keys in margins:
        present = [c for c in group_cols if c in table.columns]
        if not total_keys or any(k not in table.columns for k in total_keys):
            continue
        is_total = np.logical_and.reduce([(table[k] == v).to_numpy() for k, v in total_keys.items()])
        if not is_total.any():
            continue
        set_id = (
            table.groupby(present, dropna=False, sort=False).ngroup().to_numpy()
            if present
            else np.zeros(len(table), dtype=int)
        )
        has_total = pd.Series(is_total).groupby(set_id).transform("any").to_numpy()
        relations.append(np.where(has_total, set_id, -1))
    order = np.arange(len(table))
    changed = True
    while changed:
        changed = False
        for set_id in relations:
            frame = pd.DataFrame({"set": set_id, "supp": suppressed, "n": n, "pos": order})
            frame = frame[frame["set"] >= 0]
            n_supp = frame.groupby("set")["supp"].transform("sum")
            # A candidate must hide something: a cell of known zero count reveals nothing.
            candidates = frame[(n_supp == 1) & ~frame["supp"] & ~(frame["n"] <= 0)]
            if candidates.empty:
                continue
            picked = (
                candidates.sort_values(["set", "n", "pos"], na_position="first").groupby("set")["pos"].first()
            )
            suppressed[picked.to_numpy()] = True
            changed = True
    return suppressed


def _blank(table: pd.DataFrame, value_cols: Sequence[str], suppressed: np.ndarray) -> pd.DataFrame:
    """A copy of ``table`` with ``value_cols`` missing in suppressed rows and the ``suppressed`` column.

    Integer and bool columns become nullable (``Int64``, ``boolean``) so that they can hold a missing value.
    """
    out = table.copy()
    for col in value_cols:
        if pd.api.types.is_integer_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].astype("Int64" if pd.api.types.is_integer_dtype(out[col]) else "boolean")
        out[col] = out[col].mask(suppressed)
    out["suppressed"] = suppressed
    return out


def _reasons(primary: np.ndarray, dominated: np.ndarray, suppressed: np.ndarray) -> np.ndarray:
    """Why each cell is hidden: ``primary``, ``dominance``, ``secondary`` or empty (published)."""
    return np.select([primary, dominated, suppressed], ["primary", "dominance", "secondary"], "")


def suppress_small_cells(
    table: pd.DataFrame,
    *,
    rule: SecrecyRule = MIN_COUNT,
    layout: TableLayout = INDICATORS_LAYOUT,
    contributions: UnitContributions | None = None,
    reason_col: str | None = None,
) -> pd.DataFrame:
    """Mark and blank the cells of a result table that are about too few establishments.

    Parameters
    ----------
    table : pandas.DataFrame
        A result table (e.g. ``indicators.csv``) with one row per cell; not modified.
    rule : SecrecyRule, default ``SecrecyRule()``
        The secrecy rule: ``min_count`` with 5 units by default (see :class:`SecrecyRule`).
    layout : TableLayout, default ``TableLayout()``
        Count column, value columns, cell columns and additive sets of the table; the default fits
        ``indicators.csv`` (see :class:`TableLayout`).
    contributions : UnitContributions, optional
        Unit-level values for the dominance rule of ``french_secrecy`` (ignored by ``min_count``).
    reason_col : str, optional
        When given, an extra column with ``primary``, ``dominance``, ``secondary`` or empty.

    Returns
    -------
    pandas.DataFrame
        Same rows and columns as ``table`` (plus ``suppressed`` if it was absent, and ``reason_col``):

        * ``suppressed`` -- bool, True for primary and secondary suppressions (a True already present
          in the input is kept);
        * each of the layout's value columns -- missing (NaN / NA) in suppressed rows, unchanged elsewhere.

    Raises
    ------
    KeyError
        When the count column, a value column, every cell column or a contribution column is missing.

    Notes
    -----
    Secondary suppression is a "hypercube-lite": within every set (rows with equal ``group_cols``
    that include a total row), while exactly one cell is suppressed, the not-yet-suppressed cell with
    the smallest count (ties: first in table order) is suppressed too; cells with a count of 0 are
    never chosen, since hiding a known zero protects nothing. All relations are revisited until
    nothing changes. Each set must be one partition of its total (do not mix families and regions in
    one set without telling them apart in ``group_cols``). Dominance uses absolute contributions summed
    per unit. A two-cell hide protects a cell only as well as the published bounds of the other
    (shares lie in [0, 1]); this is the usual, documented limit of cell suppression.

    References
    ----------
    INSEE, "Le secret statistique" (règles de diffusion des tableaux: 3 unités, 85 %);
    Hundepool et al. (2012), *Statistical Disclosure Control*, Wiley, ch. 4 (secondary suppression).

    Examples
    --------
    >>> t = pd.DataFrame({"indicator": "no_protection", "period": "2024",
    ...                   "group": ["CH", "EHPAD", "CHU", "all"],
    ...                   "n_establishments": [10, 2, 6, 18], "value": [0.5, 1.0, 0.5, 0.56]})
    >>> suppress_small_cells(t)[["group", "value", "suppressed"]]
       group  value  suppressed
    0     CH   0.50       False
    1  EHPAD    NaN        True
    2    CHU    NaN        True
    3    all   0.56       False

    The French rule (3 units) and a frequency table whose published figure is the count itself:

    >>> freq = pd.DataFrame({"group": ["CH", "EHPAD", "all"], "period": "2024",
    ...                      "n_establishments": [9, 2, 11]})
    >>> layout = TableLayout(value_cols=["n_establishments"], group_cols=["period"])
    >>> out = suppress_small_cells(freq, rule=SecrecyRule("french_secrecy"), layout=layout, reason_col="why")
    >>> out[["group", "n_establishments", "suppressed"]]
       group  n_establishments  suppressed
    0     CH              <NA>        True
    1  EHPAD              <NA>        True
    2    all                11       False
    >>> out["why"].tolist()
    ['secondary', 'primary', '']
    """
    value_cols = layout.values_in(table)
    count = pd.to_numeric(table[layout.count_col], errors="coerce")
    primary = _small_counts(count, rule.threshold) | _already_suppressed(table)
    dominated = _dominance(table, rule, layout, contributions)
    suppressed = _secondary(table, primary | dominated, count, layout.additive_sets())
    out = _blank(table, value_cols, suppressed)
    if reason_col is not None:
        out[reason_col] = _reasons(primary, dominated, suppressed)
    return out


def suppress_tests(tests: pd.DataFrame, *, min_cell: int = DEFAULT_MIN_CELL) -> pd.DataFrame:
    """Blank the results of statistical tests that compare a group of fewer than ``min_cell`` units.

    Parameters
    ----------
    tests : pandas.DataFrame
        A ``tests.csv`` frame (:func:`cyberobs_lib.stats._tidy.make_tests_table`); not modified.
    min_cell : int, default 5
        Fewest establishments a compared group may have.

    Returns
    -------
    pandas.DataFrame
        The same rows with ``statistic, p_value, p_adjusted, effect_size, ci_low, ci_high`` missing
        where ``n_a`` or ``n_b`` is below ``min_cell``, and a bool ``suppressed`` column appended.
        ``n_a``/``n_b`` stay (they are sizes, not results); a missing ``n_b`` (one-sample test) is not small.

    Notes
    -----
    A test on a small group publishes, through its statistic and effect size, the values of the few
    units in it. ``p_adjusted`` was computed over the whole family of tests and is blanked as well.

    Examples
    --------
    >>> t = pd.DataFrame({"test": ["mannwhitneyu", "fisher"], "n_a": [12, 3], "n_b": [40, 30],
    ...                   "statistic": [50.0, 1.2], "p_value": [0.04, 0.6]})
    >>> suppress_tests(t)[["n_a", "statistic", "p_value", "suppressed"]]
       n_a  statistic  p_value  suppressed
    0   12       50.0     0.04       False
    1    3        NaN      NaN        True
    """
    missing = [c for c in ("n_a", "n_b") if c not in tests.columns]
    if missing:
        raise KeyError(f"tests table lacks {missing}")
    small = np.zeros(len(tests), dtype=bool)
    for col in ("n_a", "n_b"):
        n = pd.to_numeric(tests[col], errors="coerce")
        small |= (n.notna() & (n < min_cell)).to_numpy()
    if "suppressed" in tests.columns:
        small |= _as_bool(tests["suppressed"])
    out = tests.copy()
    for col in TESTS_BLANKED:
        if col in out.columns:
            out[col] = out[col].mask(small)
    out["suppressed"] = small
    return out
