"""Template variables shared by the dashboards: park, industry, enterprise, variant.

Multi-value variables with "All" are interpolated by Grafana as a quoted,
comma-separated list, so panels write ``park_code IN ($park)``; the single
value ``variant`` is inserted bare, so panels write ``'$variant'``
(TESTING-NOTES.md, template variables).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

from dashboards.datasource import datasource_ref
from dashboards.messages import Lang, text


@dataclass(frozen=True, slots=True)
class QueryVariable:
    """A variable whose options come from SQL (``__value``/``__text`` columns, or one column)."""

    name: str
    sql: str
    multi: bool = True
    include_all: bool = True


@dataclass(frozen=True, slots=True)
class CustomVariable:
    """A variable with a fixed list of values, each shown as ``<prefix>.<value>`` text."""

    name: str
    values: tuple[str, ...]
    text_prefix: str


Variable = QueryVariable | CustomVariable

# The three accounting variants of DOMAIN.md §1 (GB/T 2589-2020; 发改环资〔2022〕803号):
# gross comprehensive consumption, excluding raw-material (feedstock) use, and
# excluding feedstock and non-fossil energy.
VARIANTS: Final = ("gross", "excl_feedstock", "excl_feedstock_nonfossil")

VARIABLES: Final[dict[str, Variable]] = {
    v.name: v
    for v in (
        QueryVariable(
            "park", "SELECT park_code AS __value, park_name AS __text FROM api.park ORDER BY park_code"
        ),
        QueryVariable(
            "industry",
            "SELECT DISTINCT industry_code FROM api.enterprise WHERE park_code IN ($park) ORDER BY 1",
        ),
        QueryVariable(
            "enterprise",
            "SELECT enterprise_code AS __value, enterprise_name AS __text FROM api.enterprise"
            " WHERE park_code IN ($park) AND industry_code IN ($industry) ORDER BY enterprise_code",
        ),
        CustomVariable("variant", VARIANTS, "variant"),
    )
}


def render_variable(variable: Variable, lang: Lang) -> dash.QueryVariable | dash.CustomVariable:
    """The SDK builder of ``variable`` with its label in ``lang``."""
    label = text(f"var.{variable.name}", lang)
    if isinstance(variable, QueryVariable):
        return (
            dash.QueryVariable(variable.name)
            .label(label)
            .datasource(datasource_ref())
            .query(variable.sql)
            .multi(variable.multi)
            .include_all(variable.include_all)
            .allow_custom_value(False)
            .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(model.VariableSort.DISABLED)
            .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
        )
    first = variable.values[0]
    options = [
        model.VariableOption(
            selected=value == first, text=text(f"{variable.text_prefix}.{value}", lang), value=value
        )
        for value in variable.values
    ]
    # Grafana's custom-variable syntax "text : value" keeps the value plain in queries.
    query = ", ".join(f"{o.text} : {o.value}" for o in options)
    return (
        dash.CustomVariable(variable.name)
        .label(label)
        .values(query)
        .multi(False)
        .include_all(False)
        .allow_custom_value(False)
        .options(options)
        .current(model.VariableOption(selected=True, text=options[0].text, value=first))
    )
