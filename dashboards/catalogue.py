"""Every dashboard of parkenergy, and how each becomes a grafana-foundation-sdk model.

To add a dashboard, add its :class:`~dashboards.panels.Board` to :data:`BOARDS`;
to add a panel, add a :class:`~dashboards.panels.Panel` to a board's rows.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

from dashboards.boards import enterprise, inspector, overview, quality
from dashboards.datasource import datasource_ref
from dashboards.messages import Lang, text
from dashboards.panels import Annotation, Board, localized, render_panel
from dashboards.query import PostgresAnnotationTargetBuilder, register
from dashboards.variables import VARIABLES, render_variable

BOARDS: Final[tuple[Board, ...]] = (overview.BOARD, enterprise.BOARD, inspector.BOARD, quality.BOARD)

FOLDER_UID: Final = "parkenergy"
TAGS: Final = ("parkenergy",)
TIMEZONE: Final = "Asia/Shanghai"  # China is UTC+8 without daylight saving (DESIGN.md)


def build_dashboard(board: Board, lang: Lang) -> model.Dashboard:
    """The SDK model of ``board`` with its texts in ``lang``."""
    register()
    builder = (
        dash.Dashboard(text(f"dashboard.{board.key}.title", lang))
        .uid(board.uid)
        .description(text(f"dashboard.{board.key}.description", lang))
        .tags(list(TAGS))
        .timezone(TIMEZONE)
        .time(board.time_from, board.time_to)
        .refresh(board.refresh)
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .editable()
    )
    for name in board.variables:
        builder = builder.with_variable(render_variable(VARIABLES[name], lang))
    panel_id = 0
    for row in board.rows:
        panel_id += 1
        builder = builder.with_row(dash.Row(text(f"row.{row.key}", lang)).id(panel_id))
        for panel in row.panels:
            panel_id += 1
            builder = builder.with_panel(render_panel(panel, lang, panel_id))
    for annotation in board.annotations:
        builder = builder.annotation(_annotation(annotation, lang))
    dashboard = builder.build()
    dashboard.editable = False  # provisioned from code: edits belong in the code
    return dashboard


def _annotation(annotation: Annotation, lang: Lang) -> dash.AnnotationQuery:
    return (
        dash.AnnotationQuery()
        .name(text(f"annotation.{annotation.key}", lang))
        .datasource(datasource_ref())
        .enable(True)
        .hide(False)
        .icon_color(annotation.color)
        .target(PostgresAnnotationTargetBuilder(localized(annotation.sql, lang)))
    )


def build_all(lang: Lang) -> list[model.Dashboard]:
    """Every dashboard in ``lang``, in :data:`BOARDS` order."""
    return [build_dashboard(board, lang) for board in BOARDS]
