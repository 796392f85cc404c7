"""Figures survive what national-size data throws at them (regressions seen on real runs)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from cyberobs_lib.plots.incidents import plot_exposure_vs_rate  # noqa: E402
from cyberobs_lib.studies.annual import plot_evolution  # noqa: E402


def test_interval_bound_equal_to_value_up_to_rounding_is_drawn():
    """A share of 1.0 whose Wilson upper bound is 1.0 - 1e-16 must not make matplotlib refuse a negative
    error bar (it failed the 10,000-establishment annual run once)."""
    side = pd.DataFrame(
        {
            "period": ["all", "all"],
            "group": ["A", "B"],
            "exposes_remote_admin": [1.0, 0.4],
            "exposes_remote_admin_ci_low": [0.9, 0.3],
            "exposes_remote_admin_ci_high": [1.0 - 1e-16, 0.5],
            "incident_rate_per_1000": [10.0, 20.0],
            "rate_ci_low": [5.0, 15.0],
            "rate_ci_high": [15.0, 25.0],
        }
    )
    ax = plot_exposure_vs_rate(side, exposure="exposes_remote_admin", period="all")
    assert len(ax.collections) >= 1
    plt.close("all")


def test_evolution_plot_draws_one_line_per_headline():
    rows = []
    for year in (2023, 2024):
        for key in ("no_protection", "has_critical"):
            rows.append(
                {
                    "indicator": key,
                    "group": "all",
                    "period": str(year),
                    "value": 0.5,
                    "ci_low": 0.5 + 1e-17,
                    "ci_high": 0.6,
                }
            )
    ax = plot_evolution(pd.DataFrame(rows), lang="en")
    assert len(ax.get_legend().get_texts()) == 2
    plt.close("all")
