"""Benchmark of each performance kernel (cyberobs_lib.kernels) against its plain-pandas reference.

Run: ``.venv/bin/python benchmarks/bench_kernels.py [--sizes 1e5,1e6] [--only first_of_runs,...]``

For each kernel and size (rows): the kernel's time (best of ``--repeat`` runs), its reference's time (one
run: :mod:`cyberobs_lib.kernels.reference`, written with ``groupby``/``sort_values``, slow on purpose) and
their ratio, in the same run (timings on a shared machine are noisy; the ratio much less). Each pair of
results is also checked equal, so the figure is of two computations of the same thing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cyberobs_lib.kernels import arrow_frames, flag_counts, group_counts, matching  # noqa: E402
from cyberobs_lib.kernels import reference as ref  # noqa: E402

SEVERITIES = np.array(["critical", "high", "medium", "low", "info"], dtype=object)
CATEGORIES = np.array(["exposed_remote_admin", "known_exploited", "tls", "web", "other"], dtype=object)
FLAGS = {
    "n_critical": [("severity", "critical")],
    "n_high": [("severity", "high")],
    "n_remote": [("category", "exposed_remote_admin")],
    "n_kev": [("category", "known_exploited"), ("known_exploited", True)],
}


def _ids(prefix: str, codes: np.ndarray) -> np.ndarray:
    return pd.Series(codes).map((prefix + "{:08d}").format).to_numpy(dtype=object)


def _audits(rng, n: int) -> pd.DataFrame:
    """``n`` audit rows in (finess, audit_date, audit_id) order, three per establishment on average."""
    est = np.sort(rng.integers(0, max(n // 3, 1), n))
    day = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D")
    frame = pd.DataFrame({"finess": pd.Categorical(_ids("F", est)), "audit_date": day,
                          "audit_id": _ids("A", np.arange(n))})  # fmt: skip
    return frame.sort_values(["finess", "audit_date", "audit_id"], kind="stable").reset_index(drop=True)


def _findings_table(rng, n: int) -> pa.Table:
    audit = _ids("A", np.sort(rng.integers(0, max(n // 100, 1), n)))
    return pa.table(
        {
            "audit_id": pa.array(audit).dictionary_encode(),
            "severity": pa.array(SEVERITIES[rng.integers(0, 5, n)]).dictionary_encode(),
            "category": pa.array(CATEGORIES[rng.integers(0, 5, n)]).dictionary_encode(),
            "known_exploited": pa.array(rng.random(n) < 0.02),
        }
    )


def _chains(rng, n: int) -> tuple:
    """About ``n`` occurrences of items over chains of four kept positions, sorted by (item, rank)."""
    n_items = max(int(n / 2.4), 1)
    n_chains = max(n // 100, 1)
    rank = np.tile(np.arange(4), n_chains)
    pos = np.arange(4 * n_chains)
    prev_kept = np.where(rank > 0, pos - 1, -1)
    next_kept = np.where(rank < 3, pos + 1, -1)
    item_chain = rng.integers(0, n_chains, n_items)
    item, r = np.nonzero(rng.random((n_items, 4)) < 0.6)  # row-major: sorted by (item, rank)
    position = item_chain[item] * 4 + r
    m = len(item)
    return item, position, rank, prev_kept, next_kept, rng.random(m) < 0.9, rng.random(m) < 0.9


def cases(n: int, rng) -> dict[str, tuple[Callable, Callable, Callable]]:
    """Kernel name -> (kernel(), reference(), equal(a, b)) on inputs of ``n`` rows."""
    arrays_equal = lambda a, b: np.array_equal(a, b)  # noqa: E731
    tuples_equal = lambda a, b: all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))  # noqa: E731
    frames_equal = lambda a, b: a.equals(b)  # noqa: E731
    out: dict[str, tuple[Callable, Callable, Callable]] = {}

    keys = np.sort(rng.integers(0, max(n // 4, 1), n))
    out["group_counts.first_of_runs"] = (
        lambda: group_counts.first_of_runs(keys),
        lambda: ref.first_of_runs_reference(keys),
        arrays_equal,
    )
    aud = _audits(rng, n)
    order_keys = ["finess", "audit_date", "audit_id"]
    out["group_counts.stable_order (in order)"] = (
        lambda: group_counts.stable_order(aud, order_keys),
        lambda: ref.stable_order_reference(aud, order_keys),
        arrays_equal,
    )
    est, day = group_counts.value_ranks(aud["finess"]), aud["audit_date"].to_numpy().view(np.int64)
    shuffled = rng.permutation(n)
    est, day, text = est[shuffled], day[shuffled], aud["audit_id"].iloc[shuffled]
    out["group_counts.lexsort_text_ties"] = (
        lambda: group_counts.lexsort_text_ties(est, day, text),
        lambda: ref.lexsort_text_ties_reference(est, day, text),
        arrays_equal,
    )
    cells = rng.integers(0, 60, n)
    out["group_counts.rows_per_group"] = (
        lambda: group_counts.rows_per_group(cells, 60),
        lambda: ref.rows_per_group_reference(cells, 60),
        lambda a, b: all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)),
    )
    weights, known = rng.random(n), rng.random(n) < 0.8
    out["group_counts.sum_per_group"] = (
        lambda: group_counts.sum_per_group(cells, 60, weights=weights, where=known),
        lambda: ref.sum_per_group_reference(cells, 60, weights=weights, where=known),
        lambda a, b: np.allclose(a, b, rtol=1e-12, atol=0),
    )

    table = _findings_table(rng, n)
    frame_keys = pd.Series(table.column("audit_id").to_pandas().astype(object))
    masks = {name: rng.random(n) < 0.1 for name in FLAGS}
    out["flag_counts.count_by_key"] = (
        lambda: flag_counts.count_by_key(frame_keys, masks, total="n_findings"),
        lambda: ref.count_by_key_reference(frame_keys, masks, total="n_findings"),
        frames_equal,
    )
    batches = table.to_batches(max_chunksize=1 << 20)
    out["flag_counts.count_flags_batches"] = (
        lambda: flag_counts.count_flags_batches(batches, key="audit_id", flags=FLAGS, total="n_findings"),
        lambda: ref.count_flags_batches_reference(batches, key="audit_id", flags=FLAGS, total="n_findings"),
        frames_equal,
    )

    text_ids = _ids("H", rng.integers(0, max(n // 10, 1), n))
    columns = {
        "audit_id": table.column("audit_id"),
        "host": pa.chunked_array([pa.array(text_ids)]),
        "port": pa.chunked_array([pa.array(rng.integers(0, 65536, n), pa.int32())]),
        "known_exploited": table.column("known_exploited"),
        "score": pa.chunked_array([pa.array(rng.random(n))]),
    }
    order = pa.array(rng.permutation(n))
    types = {"port": "Int32"}
    out["arrow_frames.to_pandas"] = (
        lambda: arrow_frames.to_pandas(dict(columns), order=order, types=types),
        lambda: ref.to_pandas_reference(columns, order=order, types=types),
        frames_equal,
    )
    sort_table = pa.table({"audit_id": columns["audit_id"], "host": columns["host"]}).take(order)
    out["arrow_frames.stable_order"] = (
        lambda: arrow_frames.stable_order(sort_table, ["audit_id", "host"]),
        lambda: ref.stable_order_arrow_reference(sort_table, ["audit_id", "host"]),
        arrays_equal,
    )

    chain_args = _chains(rng, n)
    out["matching.step_events"] = (
        lambda: matching.step_events(*chain_args),
        lambda: ref.step_events_reference(*chain_args),
        tuples_equal,
    )
    first, second, shape = rng.integers(0, max(n // 100, 1), n), rng.integers(0, 6, n), (max(n // 100, 1), 6)
    out["matching.count_table"] = (
        lambda: matching.count_table(first, second, shape),
        lambda: ref.count_table_reference(first, second, shape),
        arrays_equal,
    )
    groups = np.sort(rng.integers(0, max(n // 250, 1), n))
    n_groups = max(n // 250, 1)
    out["matching.blocks_of_groups"] = (
        lambda: matching.blocks_of_groups(groups, n_groups, 1 << 14),
        lambda: ref.blocks_of_groups_reference(groups, n_groups, 1 << 14),
        tuples_equal,
    )
    uniques = [_ids("P", np.arange(k * 1000, k * 1000 + max(n // 40, 1))) for k in range(4)]
    codes = [rng.integers(0, len(u), n // 4) for u in uniques]
    out["matching.take_concat"] = (
        lambda: matching.take_concat(codes, uniques),
        lambda: ref.take_concat_reference(codes, uniques),
        arrays_equal,
    )
    return out


def _seconds(fn: Callable, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6", help="rows per input, comma-separated")
    parser.add_argument("--only", default="", help="comma-separated substrings of kernel names")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kernel (best kept)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    wanted = [w for w in args.only.split(",") if w]
    print(f"{'kernel':40s} {'rows':>9s} {'kernel s':>9s} {'reference s':>12s} {'ratio':>7s}  same")
    failed = False
    for size in (int(float(s)) for s in args.sizes.split(",")):
        for name, (kernel, reference, equal) in cases(size, np.random.default_rng(args.seed)).items():
            if wanted and not any(w in name for w in wanted):
                continue
            k_s, k_out = _seconds(kernel, args.repeat)
            r_s, r_out = _seconds(reference, 1)
            same = bool(equal(k_out, r_out))
            failed |= not same
            print(f"{name:40s} {size:9.0e} {k_s:9.4f} {r_s:12.4f} {r_s / max(k_s, 1e-9):7.1f}  {'yes' if same else 'NO'}",
                  flush=True)  # fmt: skip
    print("ratio = reference time / kernel time (how many times faster the kernel is than plain pandas)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
