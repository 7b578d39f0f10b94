"""A PostgreSQL query of Grafana's ``grafana-postgresql-datasource``, as a typed SDK dataquery.

grafana-foundation-sdk has no builder for the PostgreSQL datasource. Its
panels accept any :class:`cogvariants.Dataquery`; this one serialises to the
JSON Grafana's SQL editor saves in code mode::

    {"refId": "A", "datasource": {"type": "grafana-postgresql-datasource", "uid": "parkenergy-pg"},
     "rawSql": "SELECT …", "format": "table", "rawQuery": true, "editorMode": "code"}

:func:`register` teaches the SDK's runtime to decode such JSON back into
:class:`PostgresQuery` (``Dashboard.from_json`` would otherwise keep an
untyped bag).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import plugins as cogplugins
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

from dashboards.datasource import DATASOURCE_TYPE, DATASOURCE_UID, datasource_ref


class Format(StrEnum):
    """How Grafana turns the result into data frames."""

    TABLE = "table"
    TIME_SERIES = "time_series"


class PostgresQuery(cogvariants.Dataquery):
    """One raw SQL query of the PostgreSQL datasource."""

    def __init__(
        self,
        ref_id: str = "A",
        raw_sql: str = "",
        format_val: Format = Format.TABLE,
        datasource: dashboard.DataSourceRef | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format_val = format_val
        self.datasource = datasource if datasource is not None else datasource_ref()

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": self.datasource.to_json(),
            "rawSql": self.raw_sql,
            "format": str(self.format_val),
            "rawQuery": True,
            "editorMode": "code",
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        if data.get("rawQuery") is not True or data.get("editorMode") != "code":
            raise ValueError(f"not a raw code-mode SQL query: {data!r}")
        return cls(
            ref_id=str(data["refId"]),
            raw_sql=str(data["rawSql"]),
            format_val=Format(data["format"]),
            datasource=dashboard.DataSourceRef.from_json(data["datasource"]),
        )


class PostgresQueryBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of :class:`PostgresQuery`, for ``panel.with_target(...)`` and alert queries."""

    def __init__(self, raw_sql: str, format_val: Format = Format.TABLE, ref_id: str = "A") -> None:
        self._internal = PostgresQuery(ref_id=ref_id, raw_sql=raw_sql, format_val=format_val)

    def build(self) -> PostgresQuery:
        return self._internal


class PostgresAnnotationTarget(dashboard.AnnotationTarget):
    """The query of a dashboard annotation on the PostgreSQL datasource.

    The SDK (11.6 line) types an annotation's ``target`` as the built-in
    Grafana datasource's (``limit``, ``matchAny``, ``tags``, ``type``); SQL
    datasources store a dataquery there instead (Grafana's ``migrateAnnotation``
    of the SQL datasources: ``{"refId": "Annotation", "rawSql": …, "format":
    "table", …}``). This subclass serialises that shape; :meth:`from_json`
    reads it back (``AnnotationQuery.from_json`` of the SDK would drop the SQL).
    """

    def __init__(self, raw_sql: str = "", datasource: dashboard.DataSourceRef | None = None) -> None:
        super().__init__()
        self.query = PostgresQuery(ref_id="Annotation", raw_sql=raw_sql, datasource=datasource)

    def to_json(self) -> dict[str, object]:
        return self.query.to_json()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        query = PostgresQuery.from_json(data)
        if query.ref_id != "Annotation" or query.format_val is not Format.TABLE:
            raise ValueError(f"not an annotation query: {data!r}")
        return cls(raw_sql=query.raw_sql, datasource=query.datasource)


class PostgresAnnotationTargetBuilder(cogbuilder.Builder[dashboard.AnnotationTarget]):
    """Builder of :class:`PostgresAnnotationTarget`, for ``AnnotationQuery().target(...)``."""

    def __init__(self, raw_sql: str) -> None:
        self._internal = PostgresAnnotationTarget(raw_sql)

    def build(self) -> PostgresAnnotationTarget:
        return self._internal


_registered = False


def register() -> None:
    """Register the SDK's own plugins and this dataquery with the SDK runtime (idempotent)."""
    global _registered  # noqa: PLW0603 - one-time registration with the SDK's process-wide runtime
    if _registered:
        return
    cogplugins.register_default_plugins()
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=PostgresQuery.from_json)
    )
    _registered = True


__all__ = [
    "DATASOURCE_UID",
    "Format",
    "PostgresAnnotationTarget",
    "PostgresAnnotationTargetBuilder",
    "PostgresQuery",
    "PostgresQueryBuilder",
    "register",
]
