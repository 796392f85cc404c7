#!/usr/bin/env python
"""Build the packaged national reference tables (cyberobs_lib/data/reference/) from the public sources.

Usage::

    python scripts/build_reference.py ../shared/reference [--out cyberobs_lib/data/reference] [--date YYYY-MM-DD]

SOURCE is the folder described in ../shared/reference/README.md (finess/ and incident_observatory/); nothing
of it is copied: only counts per category, department and status, the published yearly figures with their
sources, and reference.json (dates, licences, hashes, caveats) are written. Running it twice on the same
sources writes the same bytes (tests/test_reference.py rebuilds and compares). Users replace the tables
without code changes with ``cyberobs reference update FILE_OR_FOLDER`` (written to a user data folder).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cyberobs_lib.reference import PACKAGED_REFERENCE, ReferenceSourceError, build_reference


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="the reference source folder (e.g. ../shared/reference)")
    p.add_argument(
        "--out", type=Path, default=PACKAGED_REFERENCE, help="output folder (default: the package's)"
    )
    p.add_argument("--date", help="FINESS extraction date, when the files do not tell it")
    args = p.parse_args(argv)
    try:
        meta = build_reference(args.source, args.out, finess_date=args.date)
    except (ReferenceSourceError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    fin = meta["sources"]["finess"]
    print(
        f"{args.out}: FINESS {fin['reference_date']} ({fin['rows_read']} sites read, {fin['rows_eligible']} "
        f"eligible, {fin['rows_other']} in other categories; {len(fin['cross_checks'])} cross-check file(s) "
        f"agree); series {', '.join(meta['sources']['incident_observatory']['periods'])}"
    )
    for t in meta["tables"].values():
        print(f"  {t['file']}: {t['rows']} rows, sha256 {t['sha256'][:16]}")
    for path in meta["ignored"]:
        print(f"  ignored (not a source): {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
