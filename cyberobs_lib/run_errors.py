"""Exit statuses of ``cyberobs run`` and the errors that carry them.

Below :mod:`cyberobs_lib.run_plan` and :mod:`cyberobs_lib.run_canonical`, which both raise them (and are
re-exported by :mod:`cyberobs_lib.run_plan`).
"""

from __future__ import annotations

# Exit statuses of ``cyberobs run`` (README, "Exit status").
EXIT_OK = 0
#: The run started and failed: a notebook, the workbook or the disclosure check (previous report kept).
EXIT_FAILED = 1
#: Refused before anything ran: parameter file, ``-p``, command line, output folder, missing key.
EXIT_REFUSED = 2
#: The dataset is not one, or does not validate (nothing ran; the report is named in the message).
EXIT_INVALID_DATA = 3
#: Another run is writing the same output folder.
EXIT_LOCKED = 4
#: Interrupted (Ctrl-C, SIGTERM): the staging folder is removed, the previous report kept.
EXIT_INTERRUPTED = 130


class RunError(ValueError):
    """A run that cannot start; the message names the key, parameter or file, and says what to do."""

    exit_code = EXIT_REFUSED


class DatasetError(RunError):
    """The dataset folder is not a dataset, cannot be studied, or does not validate."""

    exit_code = EXIT_INVALID_DATA


class RunLockedError(RunError):
    """Another run holds the lock of the output folder."""

    exit_code = EXIT_LOCKED
