"""Statistical tests, intervals and models. Every function returns a tidy DataFrame whose columns
come from :data:`cyberobs_lib.schema.TESTS_COLUMNS` (tests) or are documented in its docstring."""
