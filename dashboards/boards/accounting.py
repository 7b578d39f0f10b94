"""SQL pieces and units shared by the accounting panels (overview, enterprise detail, inspector).

The accounting views are described in docs/api.md ("Energy in tce, CO₂ and
intensity"); their rules in docs/accounting.md. Energy and CO₂ add up, so
panels sum the ``enterprise`` rows of the selected enterprises (``$enterprise``
already follows ``$park`` and ``$industry``). Intensity does not add up: a
selection's intensity is Σ energy / Σ value added over its enterprise rows,
which is how the group rows of ``api.intensity`` are formed too (sums over the
matched enterprise-months; base = Σ 2022 energy / Σ 2022 value added of the
enterprises with 2022 statistics).
"""

from __future__ import annotations

from typing import Final


def fill(template: str, **parts: str) -> str:
    """``template`` with every ``{name}`` replaced by ``parts[name]``.

    Grafana query texts are composed from this package's constants only (no
    input reaches them); a part that the template does not use is an error.
    """
    for name, part in parts.items():
        token = "{" + name + "}"
        if token not in template:
            raise ValueError(f"{token} is not in the template")
        template = template.replace(token, part)
    return template


# Grafana custom units ("suffix:<text>" appends the text to the value).
TCE: Final = "suffix:tce"
CO2_T: Final = "suffix:t CO₂"
INTENSITY: Final = "suffix:tce/10⁴ yuan"
RATIO: Final = "percentunit"  # a 0-1 ratio shown as percent (coverage, change vs 2022)

# Coverage below 90 % is marked (DOMAIN.md §4; docs/accounting.md, "low_coverage").
LOW_COVERAGE: Final = 0.90


def variant_energy(alias: str = "") -> str:
    """The ``energy_tce_<variant>`` column of ``api.energy_tce_day/month`` chosen by ``$variant``."""
    prefix = f"{alias}." if alias else ""
    return (
        f"CASE '$variant' WHEN 'excl_feedstock' THEN {prefix}energy_tce_excl_feedstock"
        f" WHEN 'excl_feedstock_nonfossil' THEN {prefix}energy_tce_excl_feedstock_nonfossil"
        f" ELSE {prefix}energy_tce_gross END"
    )


# The last day of the dashboard's range, as a local (Asia/Shanghai) date.
RANGE_END_DATE: Final = "($__timeTo()::timestamptz AT TIME ZONE 'Asia/Shanghai')::date"
RANGE_END_MONTH: Final = "to_char($__timeTo()::timestamptz AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')"
# Length of the dashboard's range: panels pick a finer or coarser view with it.
RANGE_LENGTH: Final = "($__timeTo()::timestamptz - $__timeFrom()::timestamptz)"

# The latest month with a city year-to-date intensity, up to the end of the range.
LATEST_YTD_END: Final = fill(
    """(SELECT max(l.period_end) FROM api.intensity l
     WHERE l.level = 'city' AND l.period_type = 'ytd' AND l.variant = '$variant'
       AND l.period_end <= {range_end_date})""",
    range_end_date=RANGE_END_DATE,
)

COVERAGE_FLAG: Final = f"CASE WHEN coalesce(i.coverage, 0) < {LOW_COVERAGE} THEN 'low' ELSE 'ok' END"

# Rolling-12-month intensity of the selected enterprises per month, against the
# even path: the path of a group is its base × (path_value / base_2022), the
# ratio 0.9^((t − 2022)/5) that every row of the period shares.
SELECTION_INTENSITY_SQL: Final = """SELECT s.month AS "time",
       sum(s.energy_tce) / nullif(sum(s.value_added_10k_yuan), 0) AS intensity,
       sum(s.base_energy_tce) / nullif(sum(s.base_value_added_10k_yuan), 0) AS base_2022,
       sum(s.base_energy_tce) / nullif(sum(s.base_value_added_10k_yuan), 0)
         * avg(s.path_value / nullif(s.base_2022, 0)) AS path_value,
       sum(s.base_energy_tce) / nullif(sum(s.base_value_added_10k_yuan), 0)
         * avg(s.target_2027 / nullif(s.base_2022, 0)) AS target_2027
FROM (
    SELECT i.*, (i.period_end::timestamp AT TIME ZONE 'Asia/Shanghai') AS month
    FROM api.intensity i
    WHERE i.level = 'enterprise' AND i.period_type = 'rolling12' AND i.variant = '$variant'
      AND i.enterprise_code IN ($enterprise)
) s
WHERE $__timeFilter(s.month)
GROUP BY 1
ORDER BY 1"""
