"""The CISA Known Exploited Vulnerabilities (KEV) catalog, read from the files CISA distributes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cyberobs_lib.normalize.cve import normalize_cve

KEV_COLUMNS = ("cve", "vendor", "product", "date_added", "due_date", "ransomware_use", "cwes")


class CatalogError(ValueError):
    """A catalog file that cannot be read as expected (message names the file and what was expected)."""


def read_kev(path: str | Path) -> pd.DataFrame:
    """Read the KEV catalog from its JSON or CSV distribution.

    Parameters
    ----------
    path : str or Path
        ``known_exploited_vulnerabilities.json`` (with ``catalogVersion``, ``dateReleased``,
        ``vulnerabilities``) or ``known_exploited_vulnerabilities.csv`` (one row per CVE, no version field).

    Returns
    -------
    pandas.DataFrame
        One row per CVE: ``cve`` (normalized id), ``vendor``, ``product``, ``date_added`` and ``due_date``
        (datetime64), ``ransomware_use`` (bool: ``knownRansomwareCampaignUse == "Known"``; CISA's
        ``Unknown`` means not known, so False), ``cwes`` (str). ``attrs["catalog"]`` =
        ``{"source": "CISA KEV", "version": …, "date": …, "count": …, "path": …}``; for the CSV, which carries
        no version, ``version`` is ``None`` and ``date`` is the latest ``dateAdded``.

    Raises
    ------
    CatalogError
        Unreadable file, invalid JSON, or missing ``cveID`` column / ``vulnerabilities`` list.

    References
    ----------
    CISA, Known Exploited Vulnerabilities Catalog, https://www.cisa.gov/known-exploited-vulnerabilities-catalog
    (JSON schema ``known_exploited_vulnerabilities_schema.json``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot be read as a KEV catalog ({exc})") from exc
    version = date = None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{path}: line {exc.lineno}: invalid JSON ({exc.msg})") from exc
        if not isinstance(doc.get("vulnerabilities"), list):
            raise CatalogError(f"{path}: expected a 'vulnerabilities' list (CISA KEV JSON)")
        raw = pd.DataFrame(doc["vulnerabilities"])
        version, date = doc.get("catalogVersion"), doc.get("dateReleased")
    else:
        import io

        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    if "cveID" not in raw.columns:
        raise CatalogError(f"{path}: no 'cveID' column/field; expected the CISA KEV catalog")
    cwes = raw.get("cwes", pd.Series("", index=raw.index))
    cwes = cwes.map(lambda v: ";".join(v) if isinstance(v, list) else ("" if v is None else str(v)))
    out = pd.DataFrame(
        {
            "cve": normalize_cve(raw["cveID"]),
            "vendor": raw.get("vendorProject", pd.Series(pd.NA, index=raw.index)).astype("string"),
            "product": raw.get("product", pd.Series(pd.NA, index=raw.index)).astype("string"),
            "date_added": pd.to_datetime(raw.get("dateAdded"), errors="coerce"),
            "due_date": pd.to_datetime(raw.get("dueDate"), errors="coerce"),
            "ransomware_use": raw.get("knownRansomwareCampaignUse", pd.Series("", index=raw.index))
            .astype(str)
            .str.strip()
            .str.lower()
            .eq("known"),
            "cwes": cwes.astype("string"),
        }
    )
    out = out.dropna(subset=["cve"]).drop_duplicates("cve").reset_index(drop=True)
    if date is None and len(out):
        date = out["date_added"].max().date().isoformat()
    out.attrs["catalog"] = {
        "source": "CISA KEV",
        "version": version,
        "date": date,
        "count": len(out),
        "path": str(path),
    }
    return out
