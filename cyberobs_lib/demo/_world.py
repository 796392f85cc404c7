"""The planted parameters of the synthetic world, and the scale of a generated dataset.

Every number here is a *demo choice* written to ``truth.json``, not an observed rate: the point is
that the studies recover what was planted. Family names are those of ``finess_categories.csv``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from cyberobs_lib.config import PACKAGE_DATA

GENERATOR_VERSION = "2"
CATALOG_PATH = PACKAGE_DATA / "demo_cves.csv"
CATEGORIES_PATH = PACKAGE_DATA / "finess_categories.csv"

#: Family parameters. beds_median/beds_sigma: log-normal size; rate_ratio: findings per host relative to the
#: reference family CH, *after* the size effect; no_control: share with no protection mechanism at the first
#: audit; incidents: declarations per 1000 structures per year (background rate); public/nonprofit/forprofit:
#: legal status probabilities. How many structures of each family, and in which category and department,
#: comes from the population frame (``demo_frame.csv``, FINESS 2021), not from this table.
FAMILY_TABLE = pd.DataFrame(
    [
        # family, beds_median, beds_sigma, rate_ratio, no_control, incidents, public, nonprofit, forprofit
        ("EHPAD", 80, 0.35, 1.50, 0.74, 15, 0.45, 0.30, 0.25),
        ("Other elderly housing", 50, 0.40, 1.50, 0.76, 10, 0.50, 0.35, 0.15),
        ("Home care", 40, 0.50, 1.30, 0.74, 10, 0.30, 0.60, 0.10),
        ("CH", 300, 0.70, 1.00, 0.58, 120, 1.00, 0.00, 0.00),
        ("CHU/CHR", 1500, 0.40, 1.00, 0.30, 300, 1.00, 0.00, 0.00),
        ("Psychiatry", 250, 0.50, 1.20, 0.60, 80, 0.85, 0.10, 0.05),
        ("Cancer centre", 200, 0.40, 0.70, 0.40, 100, 0.00, 1.00, 0.00),
        ("Army", 200, 0.40, 0.50, 0.35, 60, 1.00, 0.00, 0.00),
        ("Private clinic (MCO)", 120, 0.60, 0.80, 0.60, 60, 0.00, 0.20, 0.80),
        ("SSR", 80, 0.50, 1.10, 0.65, 40, 0.15, 0.40, 0.45),
        ("Long stay", 60, 0.50, 1.20, 0.70, 30, 0.60, 0.30, 0.10),
        ("HAD", 40, 0.60, 0.90, 0.65, 40, 0.15, 0.70, 0.15),
        ("Dialysis", 20, 0.50, 0.90, 0.65, 30, 0.00, 0.70, 0.30),
        ("Other health", 30, 0.70, 1.00, 0.70, 30, 0.50, 0.50, 0.00),
    ],
    columns=[
        "family",
        "beds_median",
        "beds_sigma",
        "rate_ratio",
        "no_control",
        "incidents_per_1000",
        "public",
        "private_nonprofit",
        "private_forprofit",
    ],
)
REFERENCE_FAMILY = "CH"


def read_commented_csv(path) -> pd.DataFrame:
    """A package CSV whose header lines start with ``#`` (strings, empty cells as ``""``)."""
    with open(path, encoding="utf-8") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    return pd.read_csv(io.StringIO("".join(lines)), dtype=str, keep_default_na=False)


#: The population frame: FINESS geographic establishments per category code and department (extraction of
#: 2021-01-08; built by ``scripts/build_demo_frame.py``, counts only). The demo samples its structures from it.
FRAME_PATH = PACKAGE_DATA / "demo_frame.csv"
#: Synthetic FINESS numbers carry one of these digits right after their prefix: ``9`` as 3rd character in
#: metropolitan France (every metropolitan number of the FINESS extraction of 2021 has 0 there, ET and EJ
#: alike), ``4``, ``7``, ``8`` or ``9`` as 5th character overseas (real 97xx numbers have 0, 1, 2, 3, 5 or 6
#: there), so a demo number is never a real one. Capacity per prefix: 10^5 metropolitan, 4,000 overseas.
SYNTHETIC_DIGITS = {"metropolitan": "9", "overseas": "4789"}

#: The committed demo's sampling design: this fraction of every family of the frame, and at least this
#: many structures (or the whole family when it is smaller) so that small families have published figures.
SMALL_SAMPLING_FRACTION = 0.05
SMALL_MIN_PER_FAMILY = 30
SMALL_FINDINGS_PER_HOST = 0.5  # the committed demo's findings rate multiplier (file size)

_FRAME_CACHE: dict[str, pd.DataFrame] = {}


def load_frame() -> pd.DataFrame:
    """The population frame with each category's family.

    Returns
    -------
    pandas.DataFrame
        ``category_code``, ``department``, ``count`` (int), ``source``, ``family`` (from
        ``finess_categories.csv``), ``in_demo`` (the family is one of :data:`FAMILY_TABLE`), sorted by
        category code and department.

    Raises
    ------
    ValueError
        A category code of the frame is not in ``finess_categories.csv``, or a count is not a positive integer.
    """
    if "frame" not in _FRAME_CACHE:
        frame = read_commented_csv(FRAME_PATH)
        cats = read_commented_csv(CATEGORIES_PATH).set_index("category_code")["family"]
        unknown = sorted(set(frame["category_code"]) - set(cats.index))
        if unknown:
            raise ValueError(f"{FRAME_PATH.name}: category codes {unknown} are not in {CATEGORIES_PATH.name}")
        count = pd.to_numeric(frame["count"], errors="coerce")
        bad = frame.index[count.isna() | (count < 1) | (count != count.round())]
        if len(bad):
            raise ValueError(
                f"{FRAME_PATH.name}: row {int(bad[0]) + 1} has count {frame.loc[bad[0], 'count']!r}"
            )
        frame = frame.assign(count=count.astype("int64"), family=cats.loc[frame["category_code"]].to_numpy())
        frame["in_demo"] = frame["family"].isin(FAMILY_TABLE["family"])
        _FRAME_CACHE["frame"] = frame
    return _FRAME_CACHE["frame"].copy()


def frame_family_counts() -> pd.Series:
    """Establishments of the frame per demo family (``FAMILY_TABLE`` order; 0 for a family absent from it).

    >>> counts = frame_family_counts()
    >>> int(counts["EHPAD"]), int(counts["Cancer centre"])
    (7501, 30)
    """
    frame = load_frame()
    frame = frame.loc[frame["in_demo"]]
    return frame.groupby("family")["count"].sum().reindex(FAMILY_TABLE["family"], fill_value=0).rename("n")


def frame_design(fraction: float, minimum: int = 0) -> dict[str, int]:
    """Structures per family of a sample of the frame: ``fraction`` of each family, at least ``minimum``.

    A family smaller than ``minimum`` is taken whole. ``n / frame count`` is the family's sampling
    fraction (its design weight is the inverse): equal to ``fraction`` except for the oversampled families.

    >>> d = frame_design(0.05, 30)
    >>> d["EHPAD"], d["CH"], d["Cancer centre"], d["Army"]
    (375, 75, 30, 11)
    """
    if not 0 < fraction <= 1 or minimum < 0:
        raise ValueError(f"fraction must be in (0, 1] and minimum >= 0, got {fraction}, {minimum}")
    counts = frame_family_counts()
    scaled = np.floor(counts * fraction + 0.5).astype("int64")
    n = np.maximum(scaled, np.minimum(minimum, counts))
    return {str(f): int(v) for f, v in n.items()}


#: Hosts in scope ~ Poisson(lognormal mean), mean = HOSTS_COEF * beds ** HOSTS_EXPONENT.
HOSTS_COEF, HOSTS_EXPONENT, HOSTS_SIGMA = 0.6, 0.5, 0.5
HOST_REMOVAL_SHARE = 0.08  # each host leaves the perimeter between two audits with this probability
HOST_ADDITION_RATE = 0.08  # new hosts ~ Poisson(rate * previous hosts): same expectation as removals
ADDRESS_RANGES = ("192.0.2", "198.51.100", "203.0.113")  # RFC 5737 documentation ranges

#: Findings per audit ~ NegBin(mean, dispersion), mean = hosts * BASE * RR_family * (beds/100)**SIZE_BETA.
BASE_RATE_PER_HOST = 2.5
SIZE_BETA = 0.3
SIZE_REFERENCE_BEDS = 100
DISPERSION = 3.0  # NegBin size parameter k (variance = mu + mu^2/k)

#: Remediation (when planted): time to fix ~ exponential with these medians, from first appearance.
MEDIAN_FIX_DAYS = {"critical": 45, "high": 90, "medium": 180, "low": 365, "info": 365}
NEW_FINDINGS_PER_YEAR = 0.30  # new findings between audits, per year, relative to the audit's mean count
REPLACEMENT_SHARE = 0.20  # without remediation: share of findings replaced by another one on the same host
REOPEN_PROBABILITY = 0.10  # a finding fixed at one audit is seen again at the next with this probability
TITLE_VARIATION_SHARE = 0.05  # persisting findings whose title wording changes
TITLE_VARIATION_SUFFIX = " (remote check)"
BLANK_SEVERITY_SHARE = 0.20  # of findings with a CVSS vector: severity left to be derived
BLANK_SCORE_SHARE = 0.10  # of findings with a CVSS vector: score left to be computed
CATEGORY_FILLED_SHARE = 0.05  # findings whose category is written (the rest is derived by rules)

#: Audit schedule.
GAP_DAYS = (150, 400)
PILOT_GAP_DAYS = 182
PILOT_GAP_JITTER = 7

#: Protection mechanisms (controls): presence probability when the structure has at least one.
CONTROL_PRESENCE = {
    "waf": 0.20,
    "ddos_protection": 0.15,
    "tls_modern": 0.60,
    "hsts": 0.40,
    "dnssec": 0.10,
    "spf": 0.70,
    "dkim": 0.35,
    "dmarc": 0.30,
    "security_headers": 0.30,
    "remote_access_mfa": 0.25,
}
CONTROL_ADOPTION = 0.05  # per absent control, per follow-up audit
CONTROL_LOSS = 0.02  # per present control, per follow-up audit
UNKNOWN_CONTROLS_SHARE = 0.03  # audits with no controls rows at all (unknown status)

#: Incidents.
INCIDENT_EXPOSURE_ODDS_RATIO = 2.5
INCIDENT_WINDOW_DAYS = 365
EXPOSURE_DEFINITION = (
    "the establishment's first audit has at least one finding whose catalog row (demo_cves.csv) is "
    "KEV-listed (kev=true) or an exposed remote administration/database service (remote_admin=true)"
)
NATURE_SHARES = {"malicious": 0.50, "accidental": 0.40, "unknown": 0.10}
TYPE_SHARES = {
    "malicious": {
        "ransomware": 0.15,
        "phishing": 0.30,
        "compromise": 0.25,
        "ddos": 0.10,
        "data_leak": 0.12,
        "other": 0.08,
    },
    "accidental": {"outage": 0.80, "data_leak": 0.10, "other": 0.10},
    "unknown": {"outage": 0.50, "other": 0.50},
}
IMPACT_SHARES = {"none": 0.45, "degraded": 0.42, "interrupted": 0.08, "unknown": 0.05}
INCIDENT_FINESS_MISSING_SHARE = 0.05  # incidents declared with category_code only

FAILING_KEY_SHARE = 0.01  # FINESS numbers written with a wrong check key (warning path)
FAMILY_OVERRIDE_ROWS = 3  # CHU/CHR rows with an explicit (redundant) family value


@dataclass(frozen=True)
class DemoScale:
    """Size of a synthetic dataset.

    Parameters
    ----------
    establishments : int
        Total number of structures, split in the national proportions of the population frame
        (``demo_frame.csv``); ignored when ``establishments_per_family`` is given.
    establishments_per_family : mapping, optional
        Explicit count per family.
    years : tuple of int
        Calendar years covered by audits and incidents.
    end_date : str
        The fixed "today": nothing is dated after it (never the wall clock).
    audits_per_establishment : (int, int)
        Inclusive range of audits per audited structure (fewer when the schedule passes ``end_date``).
    audited_share : float
        Share of structures audited at least once (audit coverage).
    pilot_establishments : int
        Structures of the "pilot" subset, audited exactly twice about 182 days apart.
    findings_per_host : float
        Multiplier of the findings rate (10 gives ten times more findings).
    chunk_establishments : int
        Structures generated together; bounds memory. Part of the random stream: changing it changes the data.
    label : str
        Preset name (``small``, ``national``) or ``custom``; written to truth.json and README.txt.
    """

    establishments: int = 200
    establishments_per_family: Mapping[str, int] | None = None
    years: tuple[int, ...] = (2023, 2024, 2025)
    end_date: str = "2025-12-31"
    audits_per_establishment: tuple[int, int] = (1, 3)
    audited_share: float = 0.85
    pilot_establishments: int = 3
    findings_per_host: float = 1.0
    chunk_establishments: int = 2000
    label: str = "custom"

    @classmethod
    def small(cls) -> DemoScale:
        """The committed demo: 5 % of every family of the FINESS frame (about 1,100 structures), small
        families oversampled to 30 structures (or all of them): see :func:`frame_design`. Half the
        default findings rate (``SMALL_FINDINGS_PER_HOST``) keeps the committed files under 3 MB."""
        counts = frame_design(SMALL_SAMPLING_FRACTION, SMALL_MIN_PER_FAMILY)
        return cls(
            establishments=sum(counts.values()),
            establishments_per_family=counts,
            findings_per_host=SMALL_FINDINGS_PER_HOST,
            label="small",
        )

    @classmethod
    def national(cls) -> DemoScale:
        """10,000 structures over five years, tens of findings per audit (about a million findings)."""
        return cls(
            establishments=10_000,
            years=(2021, 2022, 2023, 2024, 2025),
            audits_per_establishment=(1, 5),
            pilot_establishments=30,
            findings_per_host=4.0,
            label="national",
        )

    def family_counts(self) -> pd.Series:
        """Number of structures per family: the explicit counts, else ``establishments`` split in the
        frame's national proportions (largest remainder over :func:`frame_family_counts`)."""
        if self.establishments_per_family is not None:
            unknown = set(self.establishments_per_family) - set(FAMILY_TABLE["family"])
            if unknown:
                raise ValueError(f"unknown families {sorted(unknown)}; known: {list(FAMILY_TABLE['family'])}")
            counts = pd.Series(dict(self.establishments_per_family), dtype="int64")
            return counts.reindex(FAMILY_TABLE["family"], fill_value=0).rename("n")
        share = frame_family_counts().astype(float)
        exact = share / share.sum() * self.establishments
        base = np.floor(exact).astype("int64")
        extra = self.establishments - int(base.sum())
        order = (exact - base).sort_values(ascending=False, kind="stable").index[:extra]
        base[order] += 1
        return base.rename("n")

    def sampling_fractions(self) -> pd.Series:
        """Share of the frame's establishments drawn in each family (``family_counts / frame count``);
        its inverse is the family's design weight. NaN for a family absent from the frame."""
        frame = frame_family_counts().astype(float)
        return (self.family_counts() / frame.where(frame > 0)).rename("sampling_fraction")

    def validate(self) -> DemoScale:
        """Raise ``ValueError`` on an impossible scale; return ``self``."""
        lo, hi = self.audits_per_establishment
        if not 1 <= lo <= hi <= 99:
            raise ValueError(f"audits_per_establishment must satisfy 1 <= lo <= hi <= 99, got {(lo, hi)}")
        if not self.years or list(self.years) != sorted(self.years):
            raise ValueError(f"years must be a non-empty increasing tuple, got {self.years}")
        if pd.Timestamp(self.end_date) < pd.Timestamp(f"{self.years[-1]}-01-01"):
            raise ValueError(f"end_date {self.end_date} is before the last year {self.years[-1]}")
        if not 0 < self.audited_share <= 1 or self.findings_per_host <= 0 or self.chunk_establishments < 1:
            raise ValueError(
                "audited_share must be in (0, 1], findings_per_host > 0, chunk_establishments >= 1"
            )
        if int(self.family_counts().sum()) < 1:
            raise ValueError("the scale has no establishment")
        return self

    def with_overrides(self, **changes) -> DemoScale:
        """A copy with some fields changed; a new ``establishments`` total drops explicit family counts
        (the national family mix applies) and ``years`` moves ``end_date`` to the end of the last year.

        >>> s = DemoScale.small().with_overrides(establishments=50, years=(2024, 2025))
        >>> int(s.family_counts().sum()), s.end_date, s.label
        (50, '2025-12-31', 'custom')
        """
        from dataclasses import replace

        if "establishments" in changes and "establishments_per_family" not in changes:
            changes["establishments_per_family"] = None
        if "years" in changes:
            changes["years"] = tuple(int(y) for y in changes["years"])
            changes.setdefault("end_date", f"{changes['years'][-1]}-12-31")
        changes.setdefault("label", "custom")
        return replace(self, **changes).validate()

    def to_dict(self) -> dict:
        """Plain-JSON description (for truth.json)."""
        d = asdict(self)
        d["years"] = list(self.years)
        d["audits_per_establishment"] = list(self.audits_per_establishment)
        d["establishments_per_family"] = {k: int(v) for k, v in self.family_counts().items()}
        return d
