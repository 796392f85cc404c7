"""The ``cyberobs`` command line: validate, ingest, demo, run, check-disclosure.

Every command prints a clear message and exits non-zero on failure; none prints a traceback for bad
input (``--debug`` shows it). Exit statuses of ``run``: :mod:`cyberobs_lib.run_plan` (``EXIT_*``) and
the README ("Exit status").

Each command imports what it needs inside its function: ``cyberobs --version`` and ``--help`` answer in
about 0.04 s instead of the second pandas, pyarrow and the studies take to import. This is the one module
where the package's own imports are deferred on purpose (the import contracts still see them).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _print_violations(violations, *, limit: int | None) -> None:
    import pandas as pd

    with pd.option_context(
        "display.max_rows", limit or 10_000, "display.max_colwidth", 80, "display.width", 200
    ):
        shown = violations if limit is None else violations.head(limit)
        print(shown.to_string(index=False))
        if limit is not None and len(violations) > limit:
            print(f"... {len(violations) - limit} more (use --all or --csv FILE)")


def cmd_validate(args: argparse.Namespace) -> int:
    from cyberobs_lib.ingest import validate_dataset

    if not Path(args.dataset).is_dir():
        print(f"error: {args.dataset} is not a dataset folder", file=sys.stderr)
        return EXIT_USAGE
    check = validate_dataset(args.dataset, today=args.today, pad_finess=args.pad_finess)
    v = check.violations
    if args.csv:
        v.to_csv(args.csv, index=False)
    n_err = int((v["severity"] == "error").sum())
    n_warn = int((v["severity"] == "warning").sum())
    if len(v):
        _print_violations(v, limit=None if args.all else 200)
    rows = {
        n: (len(t.frame) if t.read is not None or t.files is not None else 0) for n, t in check.tables.items()
    }
    print(
        f"\n{args.dataset}: {n_err} error(s), {n_warn} warning(s) in "
        + ", ".join(f"{n}={r}" for n, r in rows.items() if r)
    )
    return EXIT_OK if n_err == 0 else EXIT_INVALID


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.large:
        return _ingest_large(args)
    if args.workers is not None or args.dask:
        print("error: --workers and --dask apply to --large ingestion only", file=sys.stderr)
        return EXIT_USAGE
    from cyberobs_lib.ingest import ingest_dataset, write_canonical

    if not Path(args.dataset).is_dir():
        print(f"error: {args.dataset} is not a dataset folder", file=sys.stderr)
        return EXIT_USAGE
    result = ingest_dataset(
        args.dataset,
        today=args.today,
        kev_path=args.kev,
        epss_path=args.epss,
        include_info=args.include_info,
        pad_finess=args.pad_finess,
    )
    if result.fatal:
        print(f"error: {args.dataset} cannot be ingested; nothing written:", file=sys.stderr)
        for problem in result.fatal:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    write_canonical(result, args.out)
    acc = result.accounting
    print(acc.to_string(index=False))
    print(f"\nwrote {', '.join(f'{n}={len(t)}' for n, t in result.tables.items())} to {args.out}")
    print(f"rejected rows: {len(result.rejects)} (see {Path(args.out) / 'rejects.csv'})")
    status = result.summary.get("scan_status", {})
    if any(k != "complete" for k in status):
        print("audits by scan status: " + ", ".join(f"{k}={v}" for k, v in status.items()))
    if result.scan_errors:
        print(f"\n{len(result.scan_errors)} scanner file(s) refused:", file=sys.stderr)
        for err in result.scan_errors:
            print(f"  {err}", file=sys.stderr)
    if not result.ok:
        print(
            "exit status 1: rows were rejected or files refused (tables written; see rejects.csv)",
            file=sys.stderr,
        )
    return EXIT_OK if result.ok else EXIT_INVALID


def _ingest_large(args: argparse.Namespace) -> int:
    """``ingest --large``: findings.csv in chunks into a year-partitioned store (national-size datasets)."""
    from cyberobs_lib.scale import ingest_large

    if args.include_info:
        print("error: --include-info applies to scanner exports, not to --large ingestion", file=sys.stderr)
        return EXIT_USAGE
    if args.dask and args.workers:
        print(
            "error: --workers (local processes) and --dask (a Dask cluster) exclude each other",
            file=sys.stderr,
        )
        return EXIT_USAGE
    options = dict(
        today=args.today,
        kev_path=args.kev,
        epss_path=args.epss,
        workers=args.workers or 1,
        pad_finess=args.pad_finess,
    )
    if args.dask:
        try:
            from cyberobs_lib.scale import client

            cl = client(None if args.dask == "local" else args.dask)
        except ImportError as exc:
            print(f"error: --dask: {exc}", file=sys.stderr)
            return EXIT_USAGE
        try:
            summary = ingest_large(args.dataset, args.out, client=cl, **options)
        finally:
            cl.close()
            if args.dask == "local":
                cl.cluster.close()
    else:
        summary = ingest_large(args.dataset, args.out, **options)
    rows = summary.get("rows", {})
    print(f"wrote {', '.join(f'{n}={r}' for n, r in rows.items())} to {args.out} (partitioned by audit year)")
    print(f"rejected rows: {summary.get('rejected', 0)}; warnings: {summary.get('warnings', 0)}")
    errors = summary.get("scan_errors") or []
    for err in errors:
        print(f"  {err}", file=sys.stderr)
    fatal = summary.get("fatal") or []
    if fatal:
        print(f"error: {args.dataset} cannot be studied:", file=sys.stderr)
        for problem in fatal:
            print(f"  {problem}", file=sys.stderr)
    clean = not errors and not fatal and not summary.get("rejected") and not summary.get("errors")
    return EXIT_OK if clean else EXIT_INVALID


def cmd_demo(args: argparse.Namespace) -> int:
    from cyberobs_lib.demo import DemoScale, generate_dataset

    scale = DemoScale.national() if args.preset == "national" else DemoScale.small()
    overrides = {}
    if args.establishments:
        overrides["establishments"] = args.establishments
    if args.years:
        overrides["years"] = tuple(int(y) for y in args.years.split(","))
    if overrides:
        scale = scale.with_overrides(**overrides)
    truth = generate_dataset(
        Path(args.out), seed=args.seed, scale=scale, plant_remediation=not args.no_remediation
    )
    counts = truth.get("counts", {})
    print(
        f"wrote synthetic dataset to {args.out} (seed {args.seed}): "
        + ", ".join(f"{k}={v}" for k, v in counts.items())
    )
    return EXIT_OK


class _BarSafeHandler(logging.Handler):
    """Log lines to the current standard error through ``tqdm.write``: a progress bar on a terminal is not
    broken by them."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def configure_logging(level: str | None, *, quiet: bool = False) -> None:
    """Standard ``logging`` to standard error: ``cyberobs`` messages at ``level`` (default INFO, WARNING
    with ``--quiet``), other libraries' at WARNING; one line per message, with the time, for cron logs."""
    chosen = (level or ("WARNING" if quiet else "INFO")).upper()
    handler = _BarSafeHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("cyberobs").setLevel(chosen)
    # papermill and traitlets log each kernel start; the runner logs each notebook itself
    for name in ("papermill", "traitlets", "nbconvert"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _terminate_as_interrupt(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt(f"signal {signum}")


def _parameter_file(text: str) -> Path:
    """``cyberobs run`` PARAMS: a path, or the bare name of a parameter file of the project (``annual_2025``)."""
    from cyberobs_lib.config import find_parameter_file

    try:
        return find_parameter_file(text)
    except FileNotFoundError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _notebooks_folder(text: str) -> Path:
    """``cyberobs run --notebooks DIR``: an existing folder, made absolute."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    return path.resolve()


def cmd_run(args: argparse.Namespace) -> int:
    import signal

    from cyberobs_lib.run_plan import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, RunError
    from cyberobs_lib.runner import run_study

    configure_logging(args.log_level, quiet=args.quiet)
    # systemd and schedulers stop a job with SIGTERM: clean up the staging folder as for Ctrl-C
    try:
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    except ValueError:  # not the main thread (an embedding application): leave its handlers alone
        pass
    try:
        result = run_study(
            Path(args.params),
            data=args.data,
            out=args.out,
            overrides=args.param or [],
            workers=args.workers,
            progress=not args.quiet,
            canonical=args.canonical,
            large=args.large,
            demo=args.demo,
            strict=args.strict,
            **({"notebooks_dir": args.notebooks.resolve()} if args.notebooks else {}),
        )
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        logging.getLogger("cyberobs.run").error("interrupted: the report folder was not changed")
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_check_disclosure(args: argparse.Namespace) -> int:
    from cyberobs_lib.disclosure import check_disclosure, identifiers_from_dataset

    identifiers = identifiers_from_dataset(Path(args.dataset)) if args.dataset else None
    hits = check_disclosure(Path(args.report_dir), identifiers=identifiers, min_cell=args.min_cell)
    if len(hits):
        _print_violations(hits, limit=None)
        print(f"\n{len(hits)} disclosure problem(s) in {args.report_dir}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{args.report_dir}: no identifying value and no cell under {args.min_cell} found")
    return EXIT_OK


def cmd_reference(args: argparse.Namespace) -> int:
    """``cyberobs reference show|update``: the national reference tables in use (cyberobs_lib.reference)."""
    import json

    from cyberobs_lib import reference as nref

    if args.action == "update":
        target, meta = nref.update_reference(args.sources, args.dir, finess_date=args.date)
        print(f"reference written to {target}")
        for path in meta["ignored"]:
            print(f"  ignored (not a reference source): {path}")
        ref = nref.load_reference(target)
    else:
        ref = nref.load_reference(args.dir)
    info = nref.reference_info(ref, lang=args.lang)
    if args.action == "show" and args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return EXIT_OK
    fin = ref.metadata["sources"]["finess"]
    print(f"reference in use: {info['path']} ({info['origin']})")
    print(
        f"  FINESS extraction {info['finess_date']}: {fin['rows_eligible']} eligible establishments of "
        f"{ref.eligible['family'].nunique()} families ({fin['rows_read']} read); {info['finess_licence']}"
    )
    print(f"    source: {info['finess_source']}")
    print(f"  incident observatory: {', '.join(info['series_periods'])} (up to {info['series_date']})")
    for t in info["tables"].values():
        print(f"  {t['file']}: {t['rows']} rows, sha256 {t['sha256'][:16]}")
    print("caveats:")
    for text in info["caveats"].values():
        print(f"  - {text}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from cyberobs_lib import __version__

    p = argparse.ArgumentParser(prog="cyberobs", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"cyberobs {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a dataset folder against the data contract (changes nothing)")
    v.add_argument("dataset", type=Path)
    v.add_argument("--today", help="reference date for the 'not in the future' rule (default: today)")
    v.add_argument("--all", action="store_true", help="print every violation (default: first 200)")
    v.add_argument("--csv", type=Path, help="also write the violations table to this CSV")
    v.add_argument(
        "--pad-finess",
        action="store_true",
        help="accept 8-digit FINESS numbers whose zero-padded form passes the check key (a leading zero lost "
        "in a spreadsheet), zero-padded with a warning; default: rejected (finess_leading_zero)",
    )
    v.set_defaults(func=cmd_validate)

    i = sub.add_parser("ingest", help="write validated canonical Parquet tables, rejects and accounting")
    i.add_argument("dataset", type=Path)
    i.add_argument("--out", type=Path, required=True)
    i.add_argument("--today")
    i.add_argument("--kev", type=Path, help="CISA KEV catalog (JSON or CSV)")
    i.add_argument("--epss", type=Path, help="FIRST EPSS daily scores (CSV, gzip accepted)")
    i.add_argument("--include-info", action="store_true", help="keep informational scanner items")
    i.add_argument(
        "--large",
        action="store_true",
        help="national-size dataset: findings.csv read in chunks, tables partitioned by audit year",
    )
    i.add_argument("--workers", type=int, help="worker processes of --large ingestion (default 1)")
    i.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the --large chunks on a Dask cluster: 'local' (2 worker processes) or a scheduler address "
        "(tcp://host:8786; its workers must see the --out folder)",
    )
    i.add_argument(
        "--pad-finess",
        action="store_true",
        help="accept 8-digit FINESS numbers whose zero-padded form passes the check key (a leading zero lost "
        "in a spreadsheet), zero-padded with a warning; default: rejected (finess_leading_zero)",
    )
    i.set_defaults(func=cmd_ingest)

    d = sub.add_parser("demo", help="generate a synthetic dataset with planted effects (truth.json)")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--seed", type=int, default=2025, help="random seed (default 2025: the bundled demo)")
    d.add_argument("--preset", choices=["small", "national"], default="small")
    d.add_argument(
        "--establishments", type=int, help="total number of establishments (families in proportion)"
    )
    d.add_argument("--years", help="comma-separated audit years, e.g. 2023,2024,2025")
    d.add_argument("--no-remediation", action="store_true", help="plant no remediation between audits")
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser(
        "run",
        help="run a study described by a parameter file (papermill)",
        description="Run a study: every check first, notebooks into a staging folder, the report folder "
        "replaced whole only when everything succeeded.",
        epilog="exit status: 0 report replaced; 1 run failed (report untouched, <out>.failed/FAILED.md); "
        "2 refused before anything ran (parameters, command line, output folder, key); 3 dataset not one "
        "or not valid; 4 another run is writing the same folder; 130 interrupted",
    )
    r.add_argument(
        "params",
        type=_parameter_file,
        help="parameter file: a path, or the name of one of the project's (annual_2025, ...: "
        "parameters/ of the checkout, else the files installed with the package)",
    )
    r.add_argument("--data", type=Path, help="dataset folder (overrides the parameter file)")
    r.add_argument(
        "--out", type=Path, help="report folder (default reports/<run_name> under the current folder)"
    )
    r.add_argument(
        "-p",
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="set a parameter in every notebook that declares it (wins over the parameter file)",
    )
    r.add_argument(
        "--workers", type=int, default=None, help="parallel workers for batches and for --large ingestion"
    )
    r.add_argument(
        "--canonical",
        type=Path,
        help="run on this already ingested folder (cyberobs ingest [--large]) instead of ingesting the dataset",
    )
    r.add_argument(
        "--large", action="store_true", help="ingest into a year-partitioned store (storage: partitioned)"
    )
    r.add_argument(
        "--notebooks",
        type=_notebooks_folder,
        help="folder of the notebooks (default: notebooks/ of the source checkout the package runs from, "
        "else the notebooks installed with the package)",
    )
    r.add_argument(
        "--demo",
        action="store_true",
        help="demo mode for the bundled synthetic data: with no key set, the public demo key "
        "(CYBEROBS_DEMO=1 for the run and its kernels); a key that is set is always used",
    )
    r.add_argument(
        "--strict",
        action="store_true",
        help="refuse a dataset with validation errors (default: the run goes on without the rejected "
        "rows and unreadable files, logged and counted in 00_data_quality)",
    )
    r.add_argument(
        "--quiet", action="store_true", help="no progress bar, only warnings and errors in the log"
    )
    r.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="log level on standard error (default INFO; WARNING with --quiet)",
    )
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("check-disclosure", help="scan a report folder for identifying values and small cells")
    c.add_argument("report_dir", type=Path)
    c.add_argument("--dataset", type=Path, help="dataset folder whose identifiers to look for")
    c.add_argument("--min-cell", type=int, default=5)
    c.set_defaults(func=cmd_check_disclosure)

    ref = sub.add_parser(
        "reference",
        help="national reference tables (FINESS eligible establishments, incident observatory series)",
        description="Show the national reference in use, or replace it by newer sources (a FINESS extraction, "
        "the observatory's yearly series) without code changes. Updates are written to a user folder: "
        "$CYBEROBS_REFERENCE_DIR, else $XDG_DATA_HOME/cyberobs/reference (~/.local/share/cyberobs/reference), "
        "read in that order before the packaged tables.",
    )
    ref_sub = ref.add_subparsers(dest="action", required=True)
    show = ref_sub.add_parser("show", help="print the reference in use: folder, dates, sources, caveats")
    show.add_argument("--dir", type=Path, help="a reference folder (default: the one in use)")
    show.add_argument("--json", action="store_true", help="print reference_info() as JSON")
    show.add_argument("--lang", choices=["en", "fr"], default="en")
    show.set_defaults(func=cmd_reference)
    upd = ref_sub.add_parser(
        "update",
        help="rebuild the reference from a FINESS extraction and/or observatory tables (files or a folder)",
        description="Sources have the formats of ../shared/reference: a FINESS extraction (flat re-export with "
        "nofinesset/categetab/codesph, or the etalab stock file) with optional published counts to cross-check; "
        "observatoire_annual_series.csv with observatoire_figures.csv; denominators_reference.csv. Tables not "
        "given are carried over from the reference in use.",
    )
    upd.add_argument("sources", nargs="+", type=Path, help="source files or folders")
    upd.add_argument("--dir", type=Path, help="folder to write (default: the user reference folder)")
    upd.add_argument("--date", help="FINESS extraction date YYYY-MM-DD, when the files do not tell it")
    upd.add_argument("--lang", choices=["en", "fr"], default="en")
    upd.set_defaults(func=cmd_reference)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
