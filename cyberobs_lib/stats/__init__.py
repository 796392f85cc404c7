"""Statistical tests, intervals and models. Every function returns a tidy DataFrame whose columns
come from :data:`cyberobs_lib.schema.TESTS_COLUMNS` (tests) or are documented in its docstring."""

from cyberobs_lib.stats._tidy import make_tests_table, median_of_known, nan_if_none

__all__ = ["make_tests_table", "median_of_known", "nan_if_none"]
