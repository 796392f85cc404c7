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

GENERATOR_VERSION = "1"
CATALOG_PATH = PACKAGE_DATA / "demo_cves.csv"
CATEGORIES_PATH = PACKAGE_DATA / "finess_categories.csv"

#: Family parameters. share: national mix of structures (EHPAD dominant, few CHU/CHR sites, roughly the
#: FINESS registry's proportions); beds_median/beds_sigma: log-normal size; rate_ratio: findings per host
#: relative to the reference family CH, *after* the size effect; no_control: share with no protection
#: mechanism at the first audit; incidents: declarations per 1000 structures per year (background rate);
#: public/nonprofit/forprofit: legal status probabilities.
FAMILY_TABLE = pd.DataFrame(
    [
        # family, share, beds_median, beds_sigma, rate_ratio, no_control, incidents, public, nonprofit, forprofit
        ("EHPAD", 0.550, 80, 0.35, 1.50, 0.74, 15, 0.45, 0.30, 0.25),
        ("Other elderly housing", 0.050, 50, 0.40, 1.50, 0.76, 10, 0.50, 0.35, 0.15),
        ("Home care", 0.070, 40, 0.50, 1.30, 0.74, 10, 0.30, 0.60, 0.10),
        ("CH", 0.080, 300, 0.70, 1.00, 0.58, 120, 1.00, 0.00, 0.00),
        ("CHU/CHR", 0.010, 1500, 0.40, 1.00, 0.30, 300, 1.00, 0.00, 0.00),
        ("Psychiatry", 0.020, 250, 0.50, 1.20, 0.60, 80, 0.85, 0.10, 0.05),
        ("Cancer centre", 0.003, 200, 0.40, 0.70, 0.40, 100, 0.00, 1.00, 0.00),
        ("Army", 0.002, 200, 0.40, 0.50, 0.35, 60, 1.00, 0.00, 0.00),
        ("Private clinic (MCO)", 0.060, 120, 0.60, 0.80, 0.60, 60, 0.00, 0.20, 0.80),
        ("SSR", 0.070, 80, 0.50, 1.10, 0.65, 40, 0.15, 0.40, 0.45),
        ("Long stay", 0.010, 60, 0.50, 1.20, 0.70, 30, 0.60, 0.30, 0.10),
        ("HAD", 0.020, 40, 0.60, 0.90, 0.65, 40, 0.15, 0.70, 0.15),
        ("Dialysis", 0.040, 20, 0.50, 0.90, 0.65, 30, 0.00, 0.70, 0.30),
        ("Other health", 0.015, 30, 0.70, 1.00, 0.70, 30, 0.50, 0.50, 0.00),
    ],
    columns=[
        "family",
        "share",
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

#: Category codes the demo draws from, with their relative weight inside their family (the family is read
#: from ``finess_categories.csv``; a code missing there is an error).
CATEGORY_WEIGHTS = {
    "101": 1.0, "355": 4.0, "106": 1.0, "292": 1.0, "131": 1.0, "114": 1.0, "115": 1.0, "365": 5.0,
    "128": 2.0, "129": 2.0, "122": 1.0, "109": 1.0, "362": 1.0, "127": 1.0, "146": 1.0, "141": 2.0,
    "500": 1.0, "501": 1.0, "502": 1.0, "354": 1.0, "698": 1.0, "699": 1.0,
}  # fmt: skip


def read_commented_csv(path) -> pd.DataFrame:
    """A package CSV whose header lines start with ``#`` (strings, empty cells as ``""``)."""
    with open(path, encoding="utf-8") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    return pd.read_csv(io.StringIO("".join(lines)), dtype=str, keep_default_na=False)


#: Departments the demo draws from: INSEE department -> (INSEE region, FINESS prefix). Metropolitan
#: numbers start with the 2-character department; overseas ones with 4 characters (9701 Guadeloupe ...
#: 9805 Mayotte). Source: INSEE code officiel géographique (regions since 2016); prefixes as in the FINESS
#: extract (domain.md).
_REGIONS = {
    "84": "01 03 07 15 26 38 42 43 63 69 73 74",
    "27": "21 25 39 58 70 71 89 90",
    "53": "22 29 35 56",
    "24": "18 28 36 37 41 45",
    "94": "2A 2B",
    "44": "08 10 51 52 54 55 57 67 68 88",
    "32": "02 59 60 62 80",
    "11": "75 77 78 91 92 93 94 95",
    "28": "14 27 50 61 76",
    "75": "16 17 19 23 24 33 40 47 64 79 86 87",
    "76": "09 11 12 30 31 32 34 46 48 65 66 81 82",
    "52": "44 49 53 72 85",
    "93": "04 05 06 13 83 84",
}
_OVERSEAS = [
    ("971", "01", "9701"),
    ("972", "02", "9702"),
    ("973", "03", "9703"),
    ("974", "04", "9704"),
    ("976", "06", "9805"),
]
DEPARTMENTS = pd.DataFrame(
    sorted([(d, r, d) for r, ds in _REGIONS.items() for d in ds.split()] + _OVERSEAS),
    columns=["department", "region", "finess_prefix"],
)
#: Overseas departments are drawn less often than metropolitan ones (relative weight).
OVERSEAS_WEIGHT = 0.5

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
        Total number of structures, split by the national family mix (``FAMILY_TABLE.share``); ignored
        when ``establishments_per_family`` is given.
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
        """The committed demo: about 200 structures, a few thousand findings."""
        counts = {
            "EHPAD": 96,
            "Other elderly housing": 6,
            "Home care": 10,
            "CH": 24,
            "CHU/CHR": 6,
            "Psychiatry": 8,
            "Cancer centre": 3,
            "Army": 2,
            "Private clinic (MCO)": 16,
            "SSR": 12,
            "Long stay": 4,
            "HAD": 6,
            "Dialysis": 6,
            "Other health": 3,
        }
        return cls(establishments=sum(counts.values()), establishments_per_family=counts, label="small")

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
        """Number of structures per family (largest-remainder split of ``establishments``)."""
        if self.establishments_per_family is not None:
            unknown = set(self.establishments_per_family) - set(FAMILY_TABLE["family"])
            if unknown:
                raise ValueError(f"unknown families {sorted(unknown)}; known: {list(FAMILY_TABLE['family'])}")
            counts = pd.Series(dict(self.establishments_per_family), dtype="int64")
            return counts.reindex(FAMILY_TABLE["family"], fill_value=0).rename("n")
        share = FAMILY_TABLE.set_index("family")["share"]
        exact = share / share.sum() * self.establishments
        base = np.floor(exact).astype("int64")
        extra = self.establishments - int(base.sum())
        order = (exact - base).sort_values(ascending=False, kind="stable").index[:extra]
        base[order] += 1
        return base.rename("n")

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
