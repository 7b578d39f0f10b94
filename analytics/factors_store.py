"""Factors, overrides and accounting settings in PostgreSQL (migration 0007).

Adding a factor whose key (series and valid_from) already exists stores a new
revision; the earlier one stays as history. The accounting views read the current
revision at query time, so the change applies to every figure at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from analytics.factors import Co2Factor, ElectricityBasis, FactorError, TceFactor, TceOverride

__all__ = [
    "SETTINGS",
    "WORKING_MEDIA",
    "add_co2_factor",
    "add_override",
    "add_tce_factor",
    "list_rows",
    "set_setting",
    "settings",
]

log = logging.getLogger(__name__)

Connection = psycopg.Connection[Any]

SETTINGS = ("electricity_basis", "co2_region", "working_media")
WORKING_MEDIA = ("exclude", "include")  # migration 0010: 国家统计局 form 205-1 practice / GB/T 2589-2020

_LISTS = {
    "tce": "SELECT carrier, basis, unit, kgce_per_unit, valid_from, valid_to, confidence, revision,"
    " is_current, source, note FROM api.tce_factor"
    " WHERE is_current OR NOT %(current)s ORDER BY carrier, basis, unit, valid_from, revision",
    "co2": "SELECT carrier, region, unit, kgco2_per_unit, reference_year, valid_from, valid_to, confidence,"
    " revision, is_current, source FROM api.co2_factor"
    " WHERE is_current OR NOT %(current)s ORDER BY carrier, region, unit, valid_from, revision",
    "override": "SELECT park_code, enterprise_code, meter_code, carrier, unit, kgce_per_unit, valid_from,"
    " valid_to, confidence, revision, is_current, source FROM api.tce_factor_override"
    " WHERE is_current OR NOT %(current)s"
    " ORDER BY enterprise_code, meter_code NULLS FIRST, carrier, valid_from, revision",
    "setting": "SELECT key, value, changed_at, changed_by FROM api.accounting_setting ORDER BY key",
}


def list_rows(conn: Connection, kind: str, *, current_only: bool = True) -> list[dict[str, object]]:
    """Rows of one factor list: ``tce``, ``co2``, ``override`` or ``setting``."""
    if kind not in _LISTS:
        raise FactorError(f"unknown list {kind!r}; one of: {', '.join(_LISTS)}")
    query = _LISTS[kind]
    cur = conn.execute(query, {"current": current_only}) if "%(current)s" in query else conn.execute(query)
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _same_dimension_unit(conn: Connection, table: str, carrier: str, unit: str) -> None:
    """Refuse a second unit of the same dimension for a carrier: lookups convert by dimension."""
    query = sql.SQL(
        "SELECT f.unit FROM {} f JOIN accounting.unit fu ON fu.symbol = f.unit"
        " JOIN accounting.unit nu ON nu.symbol = %s AND nu.dimension = fu.dimension"
        " WHERE f.carrier = %s AND f.unit <> %s LIMIT 1"
    ).format(sql.Identifier("accounting", table))
    row = conn.execute(query, (unit, carrier, unit)).fetchone()
    if row is not None:
        raise FactorError(f"{carrier} already has factors per {row[0]}; give the value per {row[0]}")


def _add_revision(conn: Connection, table: str, values: Mapping[str, object], *, key: Sequence[str]) -> int:
    """Insert ``values`` into ``accounting.<table>`` as the next revision of their key (1 if new).

    Key columns match with IS NOT DISTINCT FROM, so a NULL ``meter_id`` (an override of
    the whole enterprise) is a key of its own. Returns the revision stored.
    """
    ident = sql.Identifier("accounting", table)
    query = sql.SQL(
        "INSERT INTO {t} ({columns}, revision) SELECT {values}, coalesce(max(revision), 0) + 1"
        " FROM {t} WHERE {key} RETURNING revision"
    ).format(
        t=ident,
        columns=sql.SQL(", ").join(map(sql.Identifier, values)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(values)),
        key=sql.SQL(" AND ").join(
            sql.SQL("{} IS NOT DISTINCT FROM %s").format(sql.Identifier(k)) for k in key
        ),
    )
    row = conn.execute(query, (*values.values(), *(values[k] for k in key))).fetchone()
    assert row is not None
    return int(row[0])


def add_tce_factor(conn: Connection, factor: TceFactor) -> int:
    """Store a coefficient, as revision 1 of a new key or the next revision of an existing one.

    Returns
    -------
    int
        The revision stored.
    """
    with conn.transaction():
        _same_dimension_unit(conn, "tce_factor", factor.carrier, factor.unit)
        revision = _add_revision(
            conn,
            "tce_factor",
            {
                "carrier": factor.carrier,
                "basis": factor.basis,
                "unit": factor.unit,
                "kgce_per_unit": factor.kgce_per_unit,
                "valid_from": factor.valid_from,
                "valid_to": factor.valid_to,
                "source": factor.source,
                "confidence": factor.confidence.value,
                "note": factor.note,
            },
            key=("carrier", "basis", "unit", "valid_from"),
        )
    log.info(
        "tce factor %s/%s per %s from %s: revision %s",
        factor.carrier,
        factor.basis,
        factor.unit,
        factor.valid_from,
        revision,
    )
    return revision


def add_co2_factor(conn: Connection, factor: Co2Factor) -> int:
    """Store an emission factor (new key or next revision); returns the revision stored."""
    with conn.transaction():
        _same_dimension_unit(conn, "co2_factor", factor.carrier, factor.unit)
        return _add_revision(
            conn,
            "co2_factor",
            {
                "carrier": factor.carrier,
                "region": factor.region,
                "unit": factor.unit,
                "kgco2_per_unit": factor.kgco2_per_unit,
                "reference_year": factor.reference_year,
                "valid_from": factor.valid_from,
                "valid_to": factor.valid_to,
                "source": factor.source,
                "confidence": factor.confidence.value,
                "note": factor.note,
            },
            key=("carrier", "region", "unit", "valid_from"),
        )


def add_override(conn: Connection, override: TceOverride) -> int:
    """Store a site override for an enterprise (or one of its meters); returns the revision stored."""
    with conn.transaction():
        found = conn.execute(
            "SELECT e.enterprise_id, m.meter_id, m.carrier FROM registry.enterprise e"
            " LEFT JOIN registry.meter m ON m.enterprise_id = e.enterprise_id AND m.meter_code = %s"
            " WHERE e.enterprise_code = %s",
            (override.meter_code, override.enterprise_code),
        ).fetchone()
        if found is None:
            raise FactorError(f"unknown enterprise {override.enterprise_code!r}")
        enterprise_id, meter_id, meter_carrier = found
        if override.meter_code is not None:
            if meter_id is None:
                raise FactorError(
                    f"enterprise {override.enterprise_code} has no meter {override.meter_code!r}"
                )
            if meter_carrier != override.carrier:
                raise FactorError(
                    f"meter {override.meter_code} measures {meter_carrier}, not {override.carrier}"
                )
        return _add_revision(
            conn,
            "tce_factor_override",
            {
                "enterprise_id": enterprise_id,
                "meter_id": meter_id,
                "carrier": override.carrier,
                "unit": override.unit,
                "kgce_per_unit": override.kgce_per_unit,
                "valid_from": override.valid_from,
                "valid_to": override.valid_to,
                "source": override.source,
                "confidence": override.confidence.value,
                "note": override.note,
            },
            key=("enterprise_id", "meter_id", "carrier", "unit", "valid_from"),
        )


def settings(conn: Connection) -> dict[str, str]:
    """The accounting settings (electricity_basis, co2_region, working_media)."""
    return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM accounting.setting")}


def set_setting(conn: Connection, key: str, value: str) -> None:
    """Change an accounting setting; every view follows at once.

    Raises
    ------
    FactorError
        Unknown key, or a value the factor tables cannot serve (a basis other than
        calorific/equivalent, a region without electricity factors, working_media other
        than exclude/include).
    """
    if key not in SETTINGS:
        raise FactorError(f"unknown setting {key!r}; one of: {', '.join(SETTINGS)}")
    with conn.transaction():
        if key == "electricity_basis" and value not in {b.value for b in ElectricityBasis}:
            raise FactorError("electricity_basis is 'calorific' (当量) or 'equivalent' (等价)")
        if key == "working_media" and value not in WORKING_MEDIA:
            raise FactorError("working_media is 'exclude' (statistics form 205-1) or 'include' (GB/T 2589)")
        if key == "co2_region":
            regions = [
                str(r)
                for (r,) in conn.execute(
                    "SELECT DISTINCT region FROM accounting.co2_factor"
                    " WHERE carrier = 'electricity' ORDER BY 1"
                )
            ]
            if value not in regions:
                raise FactorError(f"no electricity factors for region {value!r}; known: {', '.join(regions)}")
        conn.execute(
            "UPDATE accounting.setting SET value = %s, changed_at = now(), changed_by = current_user"
            " WHERE key = %s",
            (value, key),
        )
