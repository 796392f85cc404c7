"""Execute one notebook and write its reader's page: papermill, the HTML without code, a PDF, a failure page.

Used by :mod:`cyberobs_lib.runner` (one notebook at a time) and :mod:`cyberobs_lib.batch` (per-establishment
reports in a warm kernel), which is why it sits below both.
"""

from __future__ import annotations

import html as html_lib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from cyberobs_lib.config import NOTEBOOKS_DIR
from cyberobs_lib.io import write_bytes_atomic, write_text_atomic
from cyberobs_lib.run_errors import RunError

#: Cell tags left out of the reader's HTML: papermill's parameter cells, assertions (``check``) and
#: cells a notebook hides (``remove-cell``).
HIDDEN_TAGS = ("parameters", "injected-parameters", "check", "remove-cell")
#: nbconvert template of the reader's pages (no external script, style or font; a print style for PDFs).
TEMPLATES_DIR = Path(__file__).resolve().parent / "data" / "templates"
REPORT_TEMPLATE = "cyberobs_report"
#: Extra kernel arguments: the kernel's own log at ERROR. Its only start-up warning, "Kernel is running
#: over TCP without encryption", is harmless for a local kernel (it listens on 127.0.0.1, reached only
#: from this machine) and would otherwise print once per notebook in every scheduled run's log. Errors of
#: the kernel still show; warnings raised by notebook code stay in the notebooks' outputs.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


@dataclass
class NotebookOutcome:
    notebook: str
    ok: bool
    seconds: float
    error: str | None = None
    #: 1-based position of the failing cell in the source notebook, and its execution count.
    cell: int | None = None
    exec_count: int | None = None
    ename: str | None = None


# --------------------------------------------------------------------------------------------------
# Notebooks and their HTML
# --------------------------------------------------------------------------------------------------
def describe_failure(exc: BaseException) -> str:
    """One clear line for a failed notebook: which cell, which error."""
    cell = getattr(exc, "exec_count", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    where = f"cell [{cell}]" if cell is not None else "the notebook"
    return f"{where} raised {ename}: {str(evalue).strip().splitlines()[-1] if evalue else ''}"


def notebook_title(nb) -> str:
    """The first Markdown heading of a notebook (its title), or '': in a Markdown cell, or in the Markdown
    a code cell displays (notebooks whose prose comes from the catalog in the run's language)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            texts = [cell.source]
        else:
            texts = [o.get("data", {}).get("text/markdown", "") for o in cell.get("outputs", [])]
        for text in texts:
            text = "".join(text) if isinstance(text, list) else str(text)
            for line in text.splitlines():
                if line.lstrip().startswith("#"):
                    return " ".join(line.lstrip("# ").replace("*", "").replace("`", "").split())
    return ""


def page_title(description: str, nb) -> str:
    """``<description> — <notebook title>``, leaving out the title's leading parts (split on " — ") that
    the description already has.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Observatoire — synthèse")])
    >>> page_title("Observatoire — étude 2024", nb)
    'Observatoire — étude 2024 — synthèse'
    """
    known = [p.strip() for p in description.split(" — ") if p.strip()]
    parts = [p.strip() for p in notebook_title(nb).split(" — ") if p.strip()]
    while parts and parts[0] in known:
        parts.pop(0)
    return " — ".join([*known, *parts])


def _replace_strings(node, replacements: list[tuple[str, str]]):
    if isinstance(node, str):
        for old, new in replacements:
            node = node.replace(old, new)
        return node
    if isinstance(node, list):
        return [_replace_strings(v, replacements) for v in node]
    if isinstance(node, dict):
        return {k: _replace_strings(v, replacements) for k, v in node.items()}
    return node


def scrub_paths(notebook: Path, replacements: list[tuple[str, str]]) -> None:
    """Replace local absolute paths (staging, working and notebooks folders) in an executed notebook.

    Published notebooks carry papermill's record of the run (``metadata.papermill`` and the injected
    parameters cell); they must not name the machine's folders.
    """
    import nbformat

    text = notebook.read_text(encoding="utf-8")
    if not any(old in text for old, _ in replacements):
        return
    data = _replace_strings(json.loads(text), sorted(replacements, key=lambda r: -len(r[0])))
    nb = nbformat.from_dict(data)
    write_text_atomic(nbformat.writes(nb), notebook)


def export_html(notebook: Path, html: Path, *, title: str | None = None, lang: str = "fr") -> Path:
    """HTML for readers: no code cells, no prompts, no parameter, ``check`` or ``remove-cell`` cells.

    ``title``: the page's ``<title>`` (default: the notebook's first heading); ``lang``: the ``lang``
    attribute of ``<html>``.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["title"] = title or notebook_title(nb) or notebook.stem
    nb.cells = [c for c in nb.cells if not set(c.metadata.get("tags", [])) & set(HIDDEN_TAGS)]
    exporter = HTMLExporter(
        template_name=REPORT_TEMPLATE,
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.language_code = lang
    body, _ = exporter.from_notebook_node(nb)
    write_text_atomic(body, html)  # a full disk leaves no truncated page, and names it
    return html


def export_pdf(html: Path, pdf: Path) -> Path:
    """A PDF of a reader's page (WeasyPrint: no browser, no network — every resource is in the page).

    Raises :class:`RunError` naming what to install when WeasyPrint or its system libraries (Pango) are
    missing.
    """
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: the Pango/HarfBuzz system libraries are missing
        raise RunError(
            f"cannot write {pdf.name}: WeasyPrint is not usable ({exc}); install the project's dependencies "
            "(make install) and the Pango library (Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0)"
        ) from exc
    from weasyprint.urls import URLFetcher

    for name in ("weasyprint", "fontTools"):  # JupyterLab's CSS has rules WeasyPrint ignores, one line each
        logging.getLogger(name).setLevel(logging.ERROR)

    # a reader's page is self-contained (figures are data: URIs): never the network, never another file
    page = HTML(
        filename=str(html), base_url=str(html.parent), url_fetcher=URLFetcher(allowed_protocols={"data"})
    )
    write_bytes_atomic(lambda tmp: page.write_pdf(str(tmp)), pdf)
    return pdf


_FAILURE_TEXT = {
    "fr": {
        "heading": "Ce carnet n'a pas pu être produit",
        "what": "Son exécution s'est arrêtée {where} ({ename}) ; aucun de ses résultats n'est publié.",
        "where": "à la cellule {cell}",
        "nowhere": "avant sa fin",
        "next": (
            "Le carnet exécuté, avec le détail de l'erreur, est conservé pour l'équipe qui produit le rapport "
            "dans le dossier d'échec de l'exécution ({folder})."
        ),
    },
    "en": {
        "heading": "This notebook could not be produced",
        "what": "Its execution stopped {where} ({ename}); none of its results is published.",
        "where": "in cell {cell}",
        "nowhere": "before its end",
        "next": (
            "The executed notebook, with the details of the error, is kept for the team producing the report "
            "in the run's failure folder ({folder})."
        ),
    },
}


def failure_page(
    html: Path, *, title: str, outcome: NotebookOutcome, lang: str = "fr", failed_folder: str = ""
) -> Path:
    """A short page in the run's language replacing a failed notebook's HTML (no traceback, no message)."""
    text = _FAILURE_TEXT.get(lang, _FAILURE_TEXT["en"])
    where = text["where"].format(cell=outcome.cell) if outcome.cell else text["nowhere"]
    esc = html_lib.escape
    body = (
        f'<!DOCTYPE html>\n<html lang="{esc(lang)}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n</head>\n<body>\n<h1>{esc(title)}</h1>\n"
        f"<h2>{esc(text['heading'])}</h2>\n"
        f"<p>{esc(text['what'].format(where=where, ename=outcome.ename or 'error'))}</p>\n"
        f"<p>{esc(text['next'].format(folder=failed_folder))}</p>\n</body>\n</html>\n"
    )
    write_text_atomic(body, html)
    return html


def failing_cell(executed: Path, source: Path) -> int | None:
    """1-based position, in the source notebook, of the cell whose error stopped ``executed``.

    Found by the error output in the executed notebook, then by its code in the source notebook (the
    executed one has papermill's extra cells: injected parameters, error banners).
    """
    import nbformat

    try:
        ran = nbformat.read(executed, as_version=4)
        original = nbformat.read(source, as_version=4)
    except (OSError, ValueError):
        return None
    code = next(
        (
            c.source
            for c in ran.cells
            if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", []))
        ),
        None,
    )
    if code is None:
        return None
    return next((i for i, c in enumerate(original.cells, 1) if c.source == code), None)


def execute_notebook(
    name: str,
    params: dict,
    out_dir: Path,
    *,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    description: str = "",
    lang: str = "fr",
    scrub: list[tuple[str, str]] | None = None,
    failed_folder: str = "",
    pdf: bool = False,
) -> NotebookOutcome:
    """Execute one notebook with papermill into ``out_dir`` and write its reader's HTML (and its PDF when
    ``pdf``: :func:`export_pdf`).

    A failing notebook is reported in the outcome (which cell, which error); its HTML is a short failure
    page (:func:`failure_page`), the traceback staying in the executed notebook. A PDF that cannot be
    written fails the notebook's outcome too (the parameter file asked for it).
    """
    import nbformat
    import papermill as pm

    start = time.perf_counter()
    target = out_dir / name
    outcome = NotebookOutcome(name, True, 0.0)
    try:
        pm.execute_notebook(
            str(notebooks_dir / name),
            str(target),
            parameters=params,
            kernel_name="python3",
            cwd=str(notebooks_dir),
            progress_bar=False,
            log_output=False,
            extra_arguments=list(KERNEL_ARGUMENTS),
        )
    except Exception as exc:  # noqa: BLE001 - any notebook failure is reported, the run goes on
        cell = failing_cell(target, notebooks_dir / name) if target.exists() else None
        ename = str(getattr(exc, "ename", type(exc).__name__))
        count = getattr(exc, "exec_count", None)
        outcome = NotebookOutcome(name, False, 0.0, describe_failure(exc), cell, count, ename)
    if target.exists():
        if scrub:
            scrub_paths(target, scrub)
        title = page_title(description, nbformat.read(target, as_version=4))
        if outcome.ok:
            page = export_html(target, target.with_suffix(".html"), title=title, lang=lang)
            if pdf:
                try:
                    export_pdf(page, target.with_suffix(".pdf"))
                except (RunError, OSError, ValueError) as exc:
                    outcome = NotebookOutcome(name, False, 0.0, f"{name}: no PDF: {exc}", None, None, "PDF")
        else:
            failure_page(
                target.with_suffix(".html"),
                title=title,
                outcome=outcome,
                lang=lang,
                failed_folder=failed_folder,
            )
    outcome.seconds = time.perf_counter() - start
    return outcome
