"""Performance kernels behind the headline numbers, each beside its plain-pandas reference.

Plain functions on NumPy arrays, pandas frames and Arrow columns, in domain-free words (keys, groups,
flags, positions): the domain modules pass them column names and vocabularies, and say what is counted.
This package imports only NumPy, pandas and pyarrow (the lowest floor of ``[tool.importlinter]``).

* :mod:`~cyberobs_lib.kernels.group_counts` — run heads, stable orders, rows per group
  (``studies.cells``: the audits behind each indicator cell);
* :mod:`~cyberobs_lib.kernels.flag_counts` — rows and flagged rows per key, in memory or over Arrow
  record batches (``studies.finding_counts``: findings per audit);
* :mod:`~cyberobs_lib.kernels.arrow_frames` — Arrow columns to a typed pandas frame, stable order of Arrow
  keys (``studies.data``: tables of a partitioned store);
* :mod:`~cyberobs_lib.kernels.matching` — events between consecutive positions of chains
  (``lifecycle.matching``: new, persistent, fixed, reopened findings);
* :mod:`~cyberobs_lib.kernels.reference` — the plain-pandas reference of each kernel
  (``tests/test_kernels.py`` compares them; ``benchmarks/bench_kernels.py`` times them).
"""
