"""FIRST EPSS scores, read from the daily CSV FIRST distributes (gzip accepted)."""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import pandas as pd

from cyberobs_lib.enrich.kev import CatalogError

_HEADER = re.compile(r"model_version:\s*(?P<model>[^,]+)\s*,\s*score_date:\s*(?P<date>\S+)")


def read_epss(path: str | Path) -> pd.DataFrame:
    """Read a daily EPSS file (``epss_scores-YYYY-MM-DD.csv[.gz]``).

    Parameters
    ----------
    path : str or Path
        The CSV, plain or gzip-compressed (detected by magic bytes), whose first line may be the comment
        ``#model_version:v2023.03.01,score_date:2024-01-13T00:00:00+0000`` followed by ``cve,epss,percentile``.

    Returns
    -------
    pandas.DataFrame
        ``cve`` (string, upper case), ``epss`` and ``percentile`` (float64 in [0, 1]).
        ``attrs["catalog"]`` = ``{"source": "FIRST EPSS", "model_version": …, "score_date": …, "count": …,
        "path": …}`` (``None`` for a file without the header line, e.g. older EPSS files).

    Raises
    ------
    CatalogError
        Unreadable/corrupt file, or missing ``cve``/``epss``/``percentile`` columns, or scores outside [0, 1].

    References
    ----------
    FIRST, Exploit Prediction Scoring System data and statistics, https://www.first.org/epss/data_stats
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8-sig")
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot be read as an EPSS file ({exc})") from exc
    model = date = None
    first, _, rest = text.partition("\n")
    if first.startswith("#"):
        m = _HEADER.search(first)
        if m:
            model, date = m.group("model").strip(), m.group("date").strip()
        text = rest
    frame = pd.read_csv(io.StringIO(text), dtype={"cve": "string"})
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in ("cve", "epss", "percentile") if c not in frame.columns]
    if missing:
        raise CatalogError(f"{path}: line 1: missing column(s) {missing}; expected 'cve,epss,percentile'")
    out = pd.DataFrame(
        {
            "cve": frame["cve"].astype("string").str.strip().str.upper(),
            "epss": pd.to_numeric(frame["epss"], errors="coerce"),
            "percentile": pd.to_numeric(frame["percentile"], errors="coerce"),
        }
    )
    bad = ~out["epss"].between(0, 1) | ~out["percentile"].between(0, 1)
    if bad.any():
        row = int(bad.to_numpy().argmax()) + 1
        raise CatalogError(f"{path}: data row {row}: epss/percentile outside [0, 1] or not a number")
    out.attrs["catalog"] = {"source": "FIRST EPSS", "model_version": model, "score_date": date,
                            "count": len(out), "path": str(path)}  # fmt: skip
    return out
