"""The run-level disclosure ledger: one decision per population cell, shared by every table of a run.

A *population cell* is ``(population, dimension, group, period)`` with the number of establishments in it,
e.g. ``("audited", "family", "CHU/CHR", "2025")`` = 3 audited CHU/CHR in 2025. Every published table that
describes a cell (its count, a share, a median, a test involving the group) takes the cell's decision from
the ledger, so that the same cell is never hidden in one table and published in another (issue 16:
"Private clinic (MCO) 2025" was suppressed in ``indicators.csv`` and published in
``annual_indicators.csv``).

Decisions, made once per cell and then final:

* **primary** — fewer than ``min_cell`` establishments (``0 < n < min_cell``, or an unknown count). A
  count of 0 is published: an empty cell describes no establishment. Cells of a public population (the
  registry frame, from the public FINESS) are never primary: their counts are not secret;
* **secondary** — within a *margin set* (the groups of a dimension in one population and period, with
  their total ``all``), the hidden cells must not be recomputable from the published ones. The ledger
  solves the attacker's linear program (:func:`hidden_intervals`: the published total minus the
  published groups, with every hidden count known to be at least 1 since 0 is never hidden) and, while
  some hidden count is pinned to a single integer, or the hidden cells together hold fewer than
  ``min_cell`` establishments (their union, total minus the published groups, would be a small cell),
  hides one more *undecided* cell of the set (smallest count first, the total last). Cells already published are never taken back (hidden stays hidden,
  published stays published): a cell that could only be protected by un-publishing raises
  :class:`DisclosureError` instead of publishing a recoverable cell.

While no table has shown every group of a set (a table restricted to some families still publishes the
total of all of them), the groups not yet seen enter the equation as one unknown non-negative residual.

The ledger of a run lives in ``<output_dir>/.cyberobs/ledger.json`` (private to the run: the runner deletes
``.cyberobs/`` before publishing); without a run marker (interactive use) it is kept in memory per output
folder.

References
----------
Hundepool et al. (2012), *Statistical Disclosure Control*, Wiley, §4.2-4.4 (threshold rule, secondary cell
suppression, the attacker's linear programs bounding each suppressed cell, "protection intervals");
INSEE, *Guide du secret statistique* (2018): tables are protected together when they share cells;
τ-ARGUS manual (Statistics Netherlands): "hypercube" and "modular" secondary suppression.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: The group of a margin set that totals its other groups.
TOTAL = "all"
#: Run-private folder inside the output folder (INTERFACES §2).
PRIVATE_DIR = ".cyberobs"
LEDGER_FILE = "ledger.json"
RUN_MARKER = "run.json"

CellKey = tuple[str, str, str, str]  # population, dimension, group, period
SetKey = tuple[str, str, str]  # population, dimension, period


class DisclosureError(RuntimeError):
    """A hidden cell could only be protected by hiding a cell an earlier table already published."""


def set_of(key: CellKey) -> SetKey:
    """The margin set of a cell: its population, dimension and period."""
    return (key[0], key[1], key[3])


def _text(key: Sequence[str]) -> str:
    return "|".join(key)


@dataclass
class Cell:
    """One population cell: largest and smallest positive count seen, and the final decision."""

    n: float | None
    n_min: float | None
    status: str = "pending"  # pending (this batch only), published, hidden
    reason: str = ""  # public, primary, secondary, published
    public: bool = False


@dataclass(frozen=True)
class Observation:
    """A population cell as one table (or a notebook) sees it.

    ``n`` is the number of establishments in the cell (None when the table does not say it). ``public``
    marks cells of a public population (the registry frame), never suppressed.
    """

    key: CellKey
    n: float | None
    public: bool = False


@dataclass
class Ledger:
    """Decisions on population cells for one run (see the module docstring)."""

    min_cell: int
    cells: dict[CellKey, Cell] = field(default_factory=dict)
    path: Path | None = None

    # ---- persistence -------------------------------------------------------------------------------
    def to_json(self) -> dict:
        """A plain-JSON view (the ledger file)."""
        return {
            "min_cell": self.min_cell,
            "cells": [
                {
                    "key": list(k),
                    "n": c.n,
                    "n_min": c.n_min,
                    "status": c.status,
                    "reason": c.reason,
                    "public": c.public,
                }
                for k, c in self.cells.items()
            ],  # fmt: skip
        }

    @classmethod
    def from_json(cls, data: Mapping, *, path: Path | None = None) -> Ledger:
        """Read :meth:`to_json` back."""
        cells = {
            tuple(c["key"]): Cell(c["n"], c["n_min"], c["status"], c["reason"], c.get("public", False))
            for c in data.get("cells", [])
        }
        return cls(int(data["min_cell"]), cells, path)  # type: ignore[arg-type]

    def save(self) -> None:
        """Write the ledger file (no-op for an in-memory ledger)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
        tmp.replace(self.path)

    # ---- queries -------------------------------------------------------------------------------------
    def status(self, key: CellKey) -> str | None:
        """``published``, ``hidden``, or None for a cell the ledger has never seen."""
        cell = self.cells.get(key)
        return None if cell is None else cell.status

    def groups(self, set_key: SetKey) -> list[str]:
        """The groups of a margin set the ledger knows (total excluded), in registration order."""
        return [k[2] for k in self.cells if set_of(k) == set_key and k[2] != TOTAL]

    def periods(self, population: str, dimension: str, group: str) -> list[str]:
        """Every period in which the ledger knows the cell ``(population, dimension, group)``."""
        return [k[3] for k in self.cells if k[:3] == (population, dimension, group)]

    def counts(self, status: str | None = None) -> dict[str, int]:
        """Number of cells per reason (``primary``, ``secondary``, ``published``, ``public``)."""
        out: dict[str, int] = {}
        for cell in self.cells.values():
            if status is None or cell.status == status:
                out[cell.reason] = out.get(cell.reason, 0) + 1
        return out

    # ---- decisions -----------------------------------------------------------------------------------
    def decide(
        self,
        observations: Iterable[Observation],
        *,
        vectors: Mapping[SetKey, Sequence[Mapping[str, float]]] | None = None,
        period_vectors: Mapping[tuple[str, str, str], Sequence[Mapping[str, float]]] | None = None,
        min_cell: int | None = None,
    ) -> None:
        """Register cells, decide the new ones (primary, then secondary), and make every decision final.

        Parameters
        ----------
        observations : iterable of Observation
            Cells described by one table; a cell seen twice keeps its largest count and smallest positive
            count. Cells already decided keep their decision.
        vectors : mapping SetKey -> list of {group: count}, optional
            Other count columns of the table over the same cells (e.g. one per indicator: establishments
            with a known status), each with its total. Each must also leave every hidden count unpinned;
            the hidden cells together must hold at least ``min_cell`` establishments of the population (the
            first vector: the cells' own counts), not of each sub-count.
        period_vectors : mapping (population, dimension, group) -> list of {period: value}, optional
            Values that add up over the periods of one group (declarations: the ``all`` period is the sum
            of the years, while the establishments behind it are not): the same two rules apply across
            the periods of the group.
        min_cell : int, optional
            Threshold of the primary rule; the ledger's own when None (the larger one wins).
        """
        threshold = max(self.min_cell, int(min_cell or 0))
        touched: list[SetKey] = []
        for obs in observations:
            self._register(obs)
            if set_of(obs.key) not in touched:
                touched.append(set_of(obs.key))
        for key, cell in self.cells.items():
            if cell.status == "pending":
                self._primary(key, cell, threshold)
        changed = True
        while changed:  # the two kinds of margins share cells: until neither hides anything more
            changed = False
            for set_key in touched:
                members = {k[2]: c for k, c in self.cells.items() if set_of(k) == set_key}
                if TOTAL in members and not any(c.public for c in members.values()):
                    base = {g: c.n for g, c in members.items()}
                    extra = list((vectors or {}).get(set_key, ()))
                    changed |= _protect(
                        members, [base, *extra], threshold, _text(set_key), union_of_first_only=True
                    )
            for line, line_vectors in (period_vectors or {}).items():
                members = {k[3]: c for k, c in self.cells.items() if k[:3] == line}
                if TOTAL in members and not any(c.public for c in members.values()):
                    changed |= _protect(members, list(line_vectors), threshold, _text(line) + " over periods")
        for cell in self.cells.values():
            if cell.status == "pending":
                cell.status, cell.reason = "published", "published"

    def _register(self, obs: Observation) -> None:
        n = None if obs.n is None or (isinstance(obs.n, float) and math.isnan(obs.n)) else float(obs.n)
        cell = self.cells.get(obs.key)
        if cell is None:
            self.cells[obs.key] = Cell(n, n if n else None, public=obs.public)
            return
        if n is not None:
            cell.n = n if cell.n is None else max(cell.n, n)
            if n > 0:
                cell.n_min = n if cell.n_min is None else min(cell.n_min, n)

    @staticmethod
    def _primary(key: CellKey, cell: Cell, threshold: int) -> None:
        if cell.public:
            cell.status, cell.reason = "published", "public"
        elif cell.n is None or (cell.n_min is not None and cell.n_min < threshold):
            cell.status, cell.reason = "hidden", "primary"


def _protect(
    members: dict[str, Cell],
    vectors: list[Mapping[str, float | None]],
    threshold: int,
    where: str,
    *,
    union_of_first_only: bool = False,
) -> bool:
    """Hide complements in one margin set until no hidden count is pinned and the hidden cells together
    hold at least ``threshold``; True when a cell was hidden. Complements are undecided cells: groups
    before the total, smallest count first, then registration order."""
    changed = False
    while True:
        hidden = {g for g, c in members.items() if c.status == "hidden"}
        if not hidden:
            return changed
        pinned: set[str] = set()
        for i, vector in enumerate(vectors):
            if TOTAL not in vector:
                continue
            counts = {g: vector[g] for g in vector if g in members}
            inside = hidden & set(counts)
            # the first vector counts the establishments of the cells; the others (with union_of_first_only)
            # count establishments *with a property* inside them (a known status): a hidden cell may hold
            # none, and a small number of them in a union of at least ``threshold`` is not a small cell
            population = i == 0 or not union_of_first_only
            pinned |= pinned_cells(counts, inside, complete=adds_up(counts), at_least_one=population)
            if population:
                pinned |= _union_below(counts, inside, threshold)
        if not pinned:
            return changed
        candidates = [
            (g == TOTAL, -1 if c.n is None else c.n, i, g)
            for i, (g, c) in enumerate(members.items())
            if c.status == "pending" and (c.n is None or c.n > 0)
        ]
        if not candidates:
            cells = ", ".join(sorted(pinned))
            raise DisclosureError(
                f"hidden cell(s) {cells} of {where} could be recomputed from cells an earlier table already "
                "published (the total minus the other groups); publish the complete set of groups first, or "
                "register the population with published_groups() before any table"
            )
        chosen = min(candidates)[3]
        members[chosen].status, members[chosen].reason = "hidden", "secondary"
        changed = True


def _union_below(counts: Mapping[str, float | None], hidden: set[str], threshold: int) -> set[str]:
    """The hidden groups when, together, they hold fewer than ``threshold`` establishments.

    The published total minus the published groups is the union of the hidden cells (and of the groups
    not shown): a union of fewer than ``threshold`` establishments is itself a small cell (hiding 1 and 2
    establishments publishes a group of 3), so one more cell must be hidden. Hundepool et al. (2012) §4.3:
    the suppressed cells of a line, taken together, must not be sensitive.
    """
    total = counts.get(TOTAL)
    if total is None or TOTAL in hidden:
        return set()
    published = sum(float(n or 0) for g, n in counts.items() if g != TOTAL and g not in hidden)
    residual = float(total) - published
    return {g for g in hidden} if 0 < residual < threshold else set()


def adds_up(counts: Mapping[str, float | None]) -> bool:
    """True when the groups of a margin set add up to its total (every group with a count is known).

    >>> adds_up({"CH": 9, "EHPAD": 46, "all": 55}), adds_up({"CH": 9, "all": 55})
    (True, False)
    """
    total = counts.get(TOTAL)
    if total is None or any(v is None for v in counts.values()):
        return False
    return abs(sum(float(v) for g, v in counts.items() if g != TOTAL) - float(total)) < 1e-6


def pinned_cells(
    counts: Mapping[str, float | None], hidden: set[str], *, complete: bool, at_least_one: bool = True
) -> set[str]:
    """Hidden groups of one margin set whose count a reader can recompute exactly (an integer point).

    Parameters
    ----------
    counts : mapping group -> count
        Every cell of the set, the total under :data:`TOTAL` (true counts; those of hidden cells are used
        only to state the equation, never as bounds).
    hidden : set of str
        The hidden groups (the total may be one of them).
    complete : bool
        False while some groups of the set are not known yet: one more non-negative unknown (the groups
        not shown) enters the equation.
    at_least_one : bool
        The reader knows a hidden count is at least 1 (counts of establishments of the cell: 0 is always
        published); False for counts of establishments *with a property* inside the cells (a hidden cell
        may hold none of them).

    Returns
    -------
    set of str
        Hidden groups whose feasible interval (:func:`hidden_intervals`) holds a single integer.
    """
    intervals = hidden_intervals(counts, hidden, complete=complete, at_least_one=at_least_one)
    if intervals is None:  # inconsistent counts (two definitions of a cell): the plain one-hidden rule
        return set(hidden) if len(hidden) == 1 and TOTAL in counts and TOTAL not in hidden else set()
    return {
        g
        for g, (lo, hi) in intervals.items()
        if math.isfinite(hi) and math.floor(hi + 1e-9) <= math.ceil(lo - 1e-9)
    }


def hidden_intervals(
    counts: Mapping[str, float | None], hidden: set[str], *, complete: bool = True, at_least_one: bool = True
) -> dict[str, tuple[float, float]] | None:
    """Bounds a reader can put on each hidden count of a margin set from the published ones.

    The reader knows the published counts, that the total equals the sum of the groups, and that a hidden
    count is at least 1 (0 is always published). Each bound is a linear program (``scipy.optimize.linprog``,
    HiGHS): minimise and maximise the hidden count subject to the equation.

    Parameters
    ----------
    counts, hidden, complete
        See :func:`pinned_cells`.

    Returns
    -------
    dict group -> (low, high), or None
        ``high`` is ``inf`` when unbounded (e.g. the total is hidden too); None when the counts are
        inconsistent (no solution: the same cell counted two ways).

    Examples
    --------
    >>> c = {"CH": 9, "CHU": 3, "EHPAD": 46, "all": 58}
    >>> hidden_intervals(c, {"CHU"})
    {'CHU': (3.0, 3.0)}
    >>> hidden_intervals(c | {"Army": 2, "all": 60}, {"CHU", "Army"})
    {'CHU': (1.0, 4.0), 'Army': (1.0, 4.0)}
    """
    from scipy.optimize import linprog

    if TOTAL not in counts or not hidden:
        return {g: (1.0, math.inf) for g in hidden}
    order = [g for g in counts if g in hidden]
    n_var = len(order) + (0 if complete else 1)
    row = np.zeros(n_var)
    rhs = 0.0
    for g, n in counts.items():
        sign = -1.0 if g == TOTAL else 1.0
        if g in hidden:
            row[order.index(g)] = sign
        else:
            rhs -= sign * float(n or 0)
    if not complete:
        row[-1] = 1.0
    bounds = [(1.0 if at_least_one and (counts.get(g) or 0) >= 1 else 0.0, None) for g in order]
    bounds += [] if complete else [(0.0, None)]
    out = {}
    for i, g in enumerate(order):
        c = np.zeros(n_var)
        c[i] = 1.0
        lo = linprog(c, A_eq=row[None, :], b_eq=[rhs], bounds=bounds, method="highs")
        hi = linprog(-c, A_eq=row[None, :], b_eq=[rhs], bounds=bounds, method="highs")
        if lo.status == 2:  # infeasible
            return None
        low = float(lo.x[i]) if lo.status == 0 else 1.0
        high = math.inf if hi.status == 3 else (float(hi.x[i]) if hi.status == 0 else math.inf)
        out[g] = (low, high)
    return out


# ---- where the ledger of an output folder lives --------------------------------------------------------

_MEMORY: dict[str, Ledger] = {}


def run_marker(output_dir: str | Path | None) -> dict:
    """The run marker ``<output_dir>/.cyberobs/run.json`` written by the runner, or ``{}``."""
    if not output_dir:
        return {}
    path = Path(output_dir) / PRIVATE_DIR / RUN_MARKER
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DisclosureError(f"{path}: unreadable run marker ({err})") from err


def open_ledger(output_dir: str | Path | None, *, min_cell: int) -> Ledger:
    """The ledger of an output folder: its file inside a run, else an in-memory ledger for that folder."""
    if output_dir and run_marker(output_dir):
        path = Path(output_dir) / PRIVATE_DIR / LEDGER_FILE
        if path.is_file():
            ledger = Ledger.from_json(json.loads(path.read_text(encoding="utf-8")), path=path)
            ledger.min_cell = max(ledger.min_cell, min_cell)
            return ledger
        return Ledger(min_cell, path=path)
    folder = str(Path(output_dir).resolve()) if output_dir else ""
    ledger = _MEMORY.setdefault(folder, Ledger(min_cell))
    ledger.min_cell = max(ledger.min_cell, min_cell)
    return ledger


def forget_ledger(output_dir: str | Path | None) -> None:
    """Drop the in-memory ledger of an output folder (a new interactive run in the same folder)."""
    _MEMORY.pop(str(Path(output_dir).resolve()) if output_dir else "", None)
