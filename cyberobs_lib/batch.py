"""Per-establishment reports in batch: one confidential report per establishment, in parallel workers.

Each worker process keeps **one warm Jupyter kernel** and executes the report notebook for its share of the
establishments in it, one after the other: parameters are injected exactly as papermill does (a cell tagged
``injected-parameters`` after the ``parameters`` cell), and the kernel's namespace is reset between two
reports (``%reset -f``), so no variable leaks from one report to the next, while imported modules stay
loaded. Compared with one papermill call per establishment, this saves a kernel start and the imports of
the scientific stack per report; the shared per-audit metrics are computed once (``audit_metrics.parquet``
in the canonical folder) instead of once per report. A failing report is recorded and the batch goes on;
a dead kernel is restarted.

Output: ``<run>/establishments/<FINESS>/`` with the executed notebook, its HTML without code, ``tables/``
and ``figures/``. These reports are confidential (they name the establishment and its hosts).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from cyberobs_lib.config import NOTEBOOKS_DIR
from cyberobs_lib.io import write_parquet_atomic
from cyberobs_lib.run_errors import RunError
from cyberobs_lib.run_notebook import (
    KERNEL_ARGUMENTS,
    NotebookOutcome,
    describe_failure,
    export_html,
    export_pdf,
    failing_cell,
    failure_page,
    page_title,
    scrub_paths,
)
from cyberobs_lib.studies.data import METRICS_FINDINGS, load_study_data
from cyberobs_lib.studies.indicators import audit_metrics


def batch_establishments(canonical: Path, selection: str | list) -> list[str]:
    """FINESS numbers to report on: ``"all"`` (every audited establishment) or an explicit list."""
    audits = load_study_data(canonical, columns={"audits": ["finess"]}).audits
    audited = sorted(set(audits["finess"].astype(str)))
    if selection == "all":
        return audited
    if isinstance(selection, str):
        raise ValueError(f"establishments must be 'all' or a list of FINESS numbers, got {selection!r}")
    wanted = list(dict.fromkeys(str(f).replace(" ", "") for f in selection))  # each report once
    missing = [f for f in wanted if f not in set(audited)]
    if missing:
        raise ValueError(f"establishments without any audit in the dataset: {', '.join(missing)}")
    return wanted


def precompute_metrics(canonical: Path) -> Path:
    """Write ``audit_metrics.parquet`` next to the canonical tables (read by each report)."""
    path = Path(canonical) / "audit_metrics.parquet"
    data = load_study_data(canonical, columns={"findings": METRICS_FINDINGS})
    write_parquet_atomic(audit_metrics(data), path)
    return path


def _inject(nb, params: dict):
    from papermill.parameterize import parameterize_notebook

    return parameterize_notebook(nb, params)


class WarmKernel:
    """One Jupyter kernel reused for many notebook executions (namespace reset between them)."""

    def __init__(self, cwd: Path):
        from jupyter_client.manager import KernelManager

        self.cwd = str(cwd)
        self.km = KernelManager(kernel_name="python3")
        env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # figures must go inline
        self.km.start_kernel(
            cwd=self.cwd, env={**env, "PYTHONHASHSEED": "0"}, extra_arguments=list(KERNEL_ARGUMENTS)
        )
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, nb, *, timeout: int = 600):
        from nbclient import NotebookClient

        client = NotebookClient(
            nb, km=self.km, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": self.cwd}}
        )
        client.kc = self.kc
        client.reset_execution_trackers()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        self.kc.execute_interactive(
            "%reset -f\nimport matplotlib.pyplot as _plt\n_plt.close('all')\ndel _plt",
            timeout=60,
            output_hook=lambda msg: None,
        )
        return nb

    def restart(self):
        self.km.restart_kernel(now=True)
        self.kc.wait_for_ready(timeout=120)

    def close(self):
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)


def _run_chunk(
    notebook: str, chunk: list[tuple[str, dict, str]], notebooks_dir: str, page: dict | None = None
) -> list[dict]:
    """Worker: execute the report notebook for each (finess, parameters, out_dir) of the chunk.

    ``page``: ``description``, ``scrub`` (path replacements) and ``failed_folder`` of the run, for the
    executed notebook and its HTML (a failure page when the report failed).
    """
    import nbformat
    from papermill.iorw import load_notebook_node

    page = page or {}
    template = load_notebook_node(str(Path(notebooks_dir) / notebook))  # gives every cell a tags list
    kernel = WarmKernel(Path(notebooks_dir))
    results = []
    try:
        for finess, params, out_dir in chunk:
            start = time.perf_counter()
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            failure = None
            nb = nbformat.from_dict(template)
            try:
                nb = _inject(nb, params)
                kernel.run(nb)
            except Exception as exc:  # noqa: BLE001 - recorded, the batch goes on
                failure = NotebookOutcome(
                    f"{notebook}[{finess}]",
                    False,
                    0.0,
                    describe_failure(exc),
                    None,
                    getattr(exc, "exec_count", None),
                    str(getattr(exc, "ename", type(exc).__name__)),
                )
                try:
                    kernel.restart()
                except Exception:  # noqa: BLE001
                    kernel = WarmKernel(Path(notebooks_dir))
            target = out / notebook
            nbformat.write(nb, target)
            if failure is not None:
                failure.cell = failing_cell(target, Path(notebooks_dir) / notebook)
            if page.get("scrub"):
                scrub_paths(target, page["scrub"])
            lang = str(params.get("lang", "fr"))
            title = page_title(page.get("description", ""), nbformat.read(target, as_version=4))
            if failure is None:
                html = export_html(target, target.with_suffix(".html"), title=title, lang=lang)
                if page.get("pdf"):
                    try:
                        export_pdf(html, target.with_suffix(".pdf"))
                    except (RunError, OSError, ValueError) as exc:
                        failure = NotebookOutcome(
                            f"{notebook}[{finess}]", False, 0.0, f"no PDF: {exc}", None, None, "PDF"
                        )
            else:
                failure_page(
                    target.with_suffix(".html"),
                    title=title,
                    outcome=failure,
                    lang=lang,
                    failed_folder=page.get("failed_folder", ""),
                )
            results.append(
                {
                    "finess": finess,
                    "ok": failure is None,
                    "seconds": time.perf_counter() - start,
                    "error": None if failure is None else failure.error,
                    "cell": None if failure is None else failure.cell,
                    "ename": None if failure is None else failure.ename,
                }
            )
    finally:
        kernel.close()
    return results


def run_reports(
    notebook: str,
    establishments: list[str],
    *,
    canonical: Path,
    out: Path,
    parameters: dict | None = None,
    workers: int | None = None,
    progress: bool = True,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    page: dict | None = None,
) -> list[dict]:
    """Execute ``notebook`` once per establishment into ``out/<FINESS>/`` with ``workers`` processes.

    ``page``: see :func:`_run_chunk`. Progress bar only when ``progress`` and standard error is a terminal.
    """
    import logging

    from tqdm import tqdm

    workers = max(1, min(workers or os.cpu_count() or 1, len(establishments) or 1))
    jobs = []
    for finess in establishments:
        folder = Path(out) / finess
        params = dict(parameters or {})
        params.update({"data_dir": str(canonical), "output_dir": str(folder), "finess": finess})
        jobs.append((finess, params, str(folder)))
    chunks = [jobs[i::workers] for i in range(workers)]
    results: list[dict] = []
    bar = tqdm(
        total=len(jobs),
        desc="establishment reports",
        unit="report",
        disable=not (progress and sys.stderr.isatty()),
        file=sys.stderr,
    )
    if workers == 1:
        for job in jobs:
            results.extend(_run_chunk(notebook, [job], str(notebooks_dir), page))
            bar.update(1)
    else:
        # chunks are split further so that the bar moves and work stays balanced
        pieces = [c[i : i + 10] for c in chunks for i in range(0, len(c), 10)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(_run_chunk, notebook, piece, str(notebooks_dir), page)
                for piece in pieces
                if piece
            ]
            for fut in as_completed(futures):
                done = fut.result()
                results.extend(done)
                bar.update(len(done))
    bar.close()
    log = logging.getLogger("cyberobs.batch")
    for r in results:
        if not r["ok"]:
            log.error("report %s FAILED: %s", r["finess"], r["error"])
    return sorted(results, key=lambda r: r["finess"])


def run_batch(
    plan,
    *,
    canonical: Path,
    out: Path,
    workers: int | None,
    progress: bool,
    notebooks_dir: Path,
    scrub: list[tuple[str, str]] | None = None,
) -> list:
    """The ``batch`` section of a parameter file (called by :func:`cyberobs_lib.runner.run_study`):
    reports into ``out/establishments/<FINESS>/``; one outcome per establishment."""
    import logging

    log = logging.getLogger("cyberobs.batch")
    spec = plan.spec["batch"]
    name, params = plan.batch
    establishments = batch_establishments(canonical, spec.get("establishments", "all"))
    precompute_metrics(canonical)
    log.info("start %s: %d establishment reports", name, len(establishments))
    start = time.perf_counter()
    results = run_reports(
        name,
        establishments,
        canonical=canonical,
        out=out / "establishments",
        parameters=params,
        workers=workers or spec.get("workers"),
        progress=progress,
        notebooks_dir=notebooks_dir,
        page={
            "description": plan.description_in(str(plan.batch[1].get("lang", "fr"))),
            "scrub": scrub,
            "failed_folder": f"{plan.out.name}.failed",
            "pdf": plan.batch[0] in plan.pdf,
        },
    )
    failed = sum(not r["ok"] for r in results)
    log.info(
        "end %s: %d/%d reports in %.1f s%s",
        name,
        len(results) - failed,
        len(results),
        time.perf_counter() - start,
        f", {failed} FAILED" if failed else "",
    )
    return [
        NotebookOutcome(
            f"{name}[{r['finess']}]", r["ok"], r["seconds"], r["error"], r.get("cell"), None, r.get("ename")
        )
        for r in results
    ]
