"""Build ``cyberobs_lib/data/demo_frame.csv``: the population frame the demo generator samples from.

The frame is the number of FINESS geographic establishments (ET) of each category code in each
department, for the category codes of ``cyberobs_lib/data/finess_categories.csv``: counts only, never a
FINESS number or a name. Sources (``../shared/reference/finess/``, extraction of 2021-01-08, README there):

* ``finess_counts.csv`` — counts by category code and department (long format) for the main categories;
* ``finess_2021_flat.csv`` — the extraction itself, for the category codes ``finess_counts.csv`` does not
  list (dialysis, home nursing services, psychiatric outpatient centres, "other health" codes): its rows
  are counted by ``categetab`` and ``dept_from_finess``; when both sources list a code they must agree.

Run from the project root (deterministic output; the file is committed)::

    .venv/bin/python scripts/build_demo_frame.py [--reference ../shared/reference/finess] [--out PATH]

A missing source, a category of ``finess_categories.csv`` found in neither source, or a disagreement
between the two sources is an error naming the file and the code.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = PROJECT.parent / "shared" / "reference" / "finess"
DEFAULT_OUT = PROJECT / "cyberobs_lib" / "data" / "demo_frame.csv"
CATEGORIES = PROJECT / "cyberobs_lib" / "data" / "finess_categories.csv"
COUNTS_NAME = "finess_counts.csv"
FLAT_NAME = "finess_2021_flat.csv"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def category_codes(path: Path = CATEGORIES) -> list[str]:
    """The category codes of the project's family mapping (``finess_categories.csv``), in file order."""
    with open(path, encoding="utf-8") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    from io import StringIO

    table = pd.read_csv(StringIO("".join(lines)), dtype=str, keep_default_na=False)
    return table["category_code"].tolist()


def counts_from_counts_file(path: Path) -> pd.DataFrame:
    """Department-level rows of ``finess_counts.csv`` as ``category_code, department, count``."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    need = {"level", "dept_code", "category_code", "count", "extraction_date"}
    missing = need - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    dep = table.loc[table["level"] == "department"]
    out = pd.DataFrame(
        {
            "category_code": dep["category_code"],
            "department": dep["dept_code"],
            "count": pd.to_numeric(dep["count"], errors="raise").astype("int64"),
        }
    )
    dates = set(dep["extraction_date"])
    if dates != {"2021-01-08"}:
        raise ValueError(f"{path}: expected the extraction of 2021-01-08, found {sorted(dates)}")
    return out


def counts_from_flat_file(path: Path, codes: list[str]) -> pd.DataFrame:
    """Rows of the extraction counted by category code and department (only ``codes``)."""
    flat = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["categetab", "dept_from_finess"])
    flat = flat.loc[flat["categetab"].isin(codes)]
    if (flat["dept_from_finess"] == "").any():
        raise ValueError(f"{path}: rows of categories {codes} without dept_from_finess")
    out = flat.groupby(["categetab", "dept_from_finess"]).size().rename("count").reset_index()
    return out.rename(columns={"categetab": "category_code", "dept_from_finess": "department"})


def build_frame(reference: Path) -> pd.DataFrame:
    """The frame table: ``category_code, department, count, source`` (positive counts, sorted).

    Codes listed by ``finess_counts.csv`` are read there; the other codes of ``finess_categories.csv`` are
    counted in ``finess_2021_flat.csv``; a code listed by both must give the same counts in both.
    """
    codes = category_codes()
    counts_path, flat_path = reference / COUNTS_NAME, reference / FLAT_NAME
    if not counts_path.is_file():
        raise FileNotFoundError(f"{counts_path} not found (the FINESS reference counts; see its README)")
    from_counts = counts_from_counts_file(counts_path)
    from_counts = from_counts.loc[from_counts["category_code"].isin(codes) & (from_counts["count"] > 0)]
    in_counts = set(from_counts["category_code"])
    rest = [c for c in codes if c not in in_counts]
    parts = [from_counts.assign(source=COUNTS_NAME)]
    if not flat_path.is_file():
        raise FileNotFoundError(
            f"{flat_path} not found: needed for category codes {rest} absent from {COUNTS_NAME}"
        )
    flat = counts_from_flat_file(flat_path, codes)
    check = flat.loc[flat["category_code"].isin(in_counts)].merge(
        from_counts, on=["category_code", "department"], how="outer", suffixes=("_flat", "_counts")
    )
    differ = check.loc[check["count_flat"].fillna(0) != check["count_counts"].fillna(0)]
    if len(differ):
        raise ValueError(f"{FLAT_NAME} and {COUNTS_NAME} disagree:\n{differ.head(10).to_string(index=False)}")
    parts.append(flat.loc[flat["category_code"].isin(rest)].assign(source=FLAT_NAME))
    frame = pd.concat(parts, ignore_index=True)
    absent = sorted(set(codes) - set(frame["category_code"]))
    frame = frame.sort_values(["category_code", "department"], kind="stable").reset_index(drop=True)
    frame.attrs["absent_codes"] = absent
    return frame


def write_frame(frame: pd.DataFrame, out: Path, reference: Path) -> None:
    """Write the frame with its provenance header (``#`` lines, read by ``read_commented_csv``)."""
    absent = frame.attrs.get("absent_codes", [])
    header = [
        "# Demo population frame: FINESS geographic establishments (ET) per category code and department.",
        "# Counts only (no FINESS number, no name): the demo generator (cyberobs_lib.demo) samples synthetic",
        "# establishments from it. Built by scripts/build_demo_frame.py; do not edit by hand.",
        "# Source: FINESS open-data extraction of 2021-01-08 (etalab-cs1100507-stock-20210108-0427.csv, Licence",
        "#   Ouverte) as converted by flrt/finess-fhir@f33d5e989b679e04cd4eac5cad7a11051e4b4fe5 (MIT);",
        f"#   {COUNTS_NAME} sha256 {_sha256(reference / COUNTS_NAME)}",
        f"#   {FLAT_NAME} sha256 {_sha256(reference / FLAT_NAME)}",
        "# source column: the file each row was read from (finess_counts.csv where it lists the code, else the",
        "#   extraction counted by categetab x dept_from_finess; both agree on every code they share).",
        "# Caveats: geographic sites, not legal entities; 208 rows of the source are missing from the",
        "#   conversion: La Reunion (974) is partial, Saint-Pierre-et-Miquelon and Mayotte are absent.",
        f"# Codes of finess_categories.csv with no establishment in the extraction: {' '.join(absent) or 'none'}.",
        "# extraction_date: 2021-01-08",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="") as fh:
        fh.write("\n".join(header) + "\n")
        frame[["category_code", "department", "count", "source"]].to_csv(fh, index=False, lineterminator="\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--reference", type=Path, default=DEFAULT_REFERENCE, help="folder of the FINESS reference files"
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    try:
        frame = build_frame(args.reference)
    except (FileNotFoundError, ValueError) as exc:
        print(f"build_demo_frame: {exc}", file=sys.stderr)
        return 2
    write_frame(frame, args.out, args.reference)
    print(f"wrote {args.out}: {len(frame)} rows, {int(frame['count'].sum())} establishments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
