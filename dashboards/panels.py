"""Panel definitions as values, and their rendering into grafana-foundation-sdk panels.

A dashboard is a :class:`Board` of :class:`Row` s of :class:`Panel` s. A panel
is its SQL (read only from schema ``api``, with Grafana's macros and the
dashboard variables), its kind, and its texts as message keys
(``panel.<key>.title``, optional ``panel.<key>.description``, and
``col.<column>`` for every column listed in ``columns``). Adding a panel is
adding one :class:`Panel` value to a board; the tests then expand and run its
SQL, check its columns against its kind, and round-trip it through the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.datasource import datasource_ref
from dashboards.messages import Lang, MessageError, keys, text
from dashboards.query import Format, PostgresQueryBuilder


class Kind(StrEnum):
    """Panel types used here, with the result shape each needs (checked by the tests)."""

    TIMESERIES = "timeseries"  # time column "time" + numeric columns (+ optional "metric" text)
    STAT = "stat"  # one or more numeric columns
    TABLE = "table"  # any columns
    BARGAUGE = "bargauge"  # a text column (names) + a numeric column


@dataclass(frozen=True, slots=True)
class Column:
    """A result column shown under the text ``col.<name>``, optionally with a Grafana unit.

    ``mapping`` names an entry of :data:`MAPPINGS`: the column's text values are
    shown as ``value.<mapping>.<value>`` in the dashboard's language, coloured.
    """

    name: str
    unit: str | None = None
    mapping: str | None = None


# Text values shown as a label and a colour: mapping → ((value, colour), …).
# Status rule of the target path: docs/accounting.md (on_track ≤ path < at_risk ≤ 2022 base < off_track).
MAPPINGS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "status": (("on_track", "green"), ("at_risk", "orange"), ("off_track", "red")),
    "level": (("city", "text"), ("park", "text"), ("enterprise", "text")),
    "period_type": (("ytd", "text"), ("rolling12", "text"), ("year", "text"), ("month", "text")),
    "coverage_flag": (("ok", "green"), ("low", "red")),
    "severity": (("critical", "red"), ("warning", "orange"), ("info", "blue")),
    "alert_state": (("open", "red"), ("acknowledged", "orange"), ("resolved", "green")),
}


LANG_TOKEN: Final = "<lang>"
"""Written in a query where a column exists per language (``a.summary_<lang>``): replaced by
``zh`` or ``en`` when the dashboard is built, so each language's dashboard reads its own."""


def localized(sql: str, lang: Lang) -> str:
    """``sql`` with :data:`LANG_TOKEN` replaced by the language's code."""
    return sql.replace(LANG_TOKEN, lang.value)


@dataclass(frozen=True, slots=True)
class Threshold:
    """A colour from ``value`` upwards (``None``: the base colour)."""

    value: float | None
    color: str


@dataclass(frozen=True, slots=True)
class Panel:
    """One panel.

    Parameters
    ----------
    key : str
        Texts are ``panel.<key>.title`` and, if catalogued, ``panel.<key>.description``.
    kind : Kind
        Grafana panel type.
    sql : str
        The query, in Grafana's PostgreSQL dialect (macros, ``$variables``);
        reads only ``api.*`` views.
    unit : str
        Grafana unit of the values (``short``, ``s``, ``percent`` …).
    columns : tuple of Column
        Columns renamed to their ``col.<name>`` text, with per-column units.
    width, height : int
        Grid size (24 columns wide).
    thresholds : tuple of Threshold
        Colour steps; empty: Grafana's default.
    """

    key: str
    kind: Kind
    sql: str
    unit: str = "short"
    columns: tuple[Column, ...] = ()
    width: int = 12
    height: int = 8
    thresholds: tuple[Threshold, ...] = ()

    @property
    def format(self) -> Format:
        return Format.TIME_SERIES if self.kind is Kind.TIMESERIES else Format.TABLE

    def title(self, lang: Lang) -> str:
        return text(f"panel.{self.key}.title", lang)

    def description(self, lang: Lang) -> str | None:
        key = f"panel.{self.key}.description"
        return text(key, lang) if key in keys() else None


@dataclass(frozen=True, slots=True)
class Annotation:
    """A dashboard annotation query (texts ``annotation.<key>``).

    The SQL returns a ``time`` column, a ``text`` column and optionally
    ``timeend`` and ``tags`` (comma-separated), Grafana's SQL annotation columns.
    """

    key: str
    sql: str
    color: str = "red"


@dataclass(frozen=True, slots=True)
class Row:
    """A titled row of panels (``row.<key>``)."""

    key: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True, slots=True)
class Board:
    """One dashboard.

    Parameters
    ----------
    uid : str
        Stable Grafana uid (8-40 characters); also the JSON file name.
    key : str
        Texts ``dashboard.<key>.title`` and ``dashboard.<key>.description``.
    rows : tuple of Row
    variables : tuple of str
        Names of the template variables it shows (see :mod:`dashboards.variables`).
    time_from, time_to : str
        Default time range (relative to now, Grafana syntax).
    refresh : str
        Auto-refresh interval.
    annotations : tuple of Annotation
        Event markers queried from ``api`` views and drawn on the time series.
    """

    uid: str
    key: str
    rows: tuple[Row, ...]
    variables: tuple[str, ...] = ("park", "industry", "enterprise", "variant")
    time_from: str = "now-24h"
    time_to: str = "now"
    refresh: str = "1m"
    annotations: tuple[Annotation, ...] = ()

    def panels(self) -> tuple[Panel, ...]:
        return tuple(p for row in self.rows for p in row.panels)


def _thresholds(steps: tuple[Threshold, ...]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=s.value, color=s.color) for s in steps])
    )


PanelBuilder = timeseries.Panel | stat.Panel | table.Panel | bargauge.Panel


def render_panel(panel: Panel, lang: Lang, panel_id: int) -> PanelBuilder:
    """The SDK builder of ``panel`` in ``lang``.

    Raises
    ------
    MessageError
        A title or column text is missing from the catalogue.
    """
    builder: PanelBuilder
    if panel.kind is Kind.TIMESERIES:
        builder = timeseries.Panel().fill_opacity(10).line_width(1).span_nulls(False)
    elif panel.kind is Kind.STAT:
        builder = stat.Panel().graph_mode(common.BigValueGraphMode.NONE).reduce_options(_reduce_last())
    elif panel.kind is Kind.BARGAUGE:
        builder = bargauge.Panel().orientation(common.VizOrientation.HORIZONTAL)
    else:
        # Explicit cell defaults: the SDK fills them in when it reads the JSON back.
        builder = table.Panel().align(common.FieldTextAlignment.AUTO).inspect(False)
    builder = (
        builder.id(panel_id)
        .title(panel.title(lang))
        .datasource(datasource_ref())
        .with_target(PostgresQueryBuilder(localized(panel.sql, lang), panel.format))
        .unit(panel.unit)
        .span(panel.width)
        .height(panel.height)
    )
    if (description := panel.description(lang)) is not None:
        builder = builder.description(description)
    if panel.thresholds:
        builder = builder.thresholds(_thresholds(panel.thresholds))
    for column in panel.columns:
        properties = [model.DynamicConfigValue(id_val="displayName", value=text(f"col.{column.name}", lang))]
        if column.unit is not None:
            properties.append(model.DynamicConfigValue(id_val="unit", value=column.unit))
        if column.mapping is not None:
            properties.append(
                model.DynamicConfigValue(id_val="mappings", value=value_mappings(column.mapping, lang))
            )
            if panel.kind is Kind.TABLE:
                properties.append(
                    model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"})
                )
        builder = builder.override_by_name(column.name, properties)
    return builder


def value_mappings(mapping: str, lang: Lang) -> list[dict[str, object]]:
    """Grafana value mappings (JSON) of the :data:`MAPPINGS` entry ``mapping`` in ``lang``."""
    options: dict[str, object] = {
        value: {"text": text(f"value.{mapping}.{value}", lang), "color": color, "index": index}
        for index, (value, color) in enumerate(MAPPINGS[mapping])
    }
    return [{"type": "value", "options": options}]


def _reduce_last() -> common_builders.ReduceDataOptions:
    """Reduce a stat panel's field to its last non-null value, over all rows."""
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


__all__ = [
    "LANG_TOKEN",
    "MAPPINGS",
    "Annotation",
    "Board",
    "Column",
    "Kind",
    "MessageError",
    "Panel",
    "Row",
    "Threshold",
    "localized",
    "render_panel",
    "value_mappings",
]
