"""The collector's in-memory copy of the registry: what it validates against.

Loaded from the database at start and reloaded when ``registry.revision`` moves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import psycopg

from parkdata.carriers import MeterKind
from parkdata.units import UnitError, conversion_factor


@dataclass(frozen=True, slots=True)
class MeterInfo:
    meter_id: int
    enterprise_code: str
    meter_code: str
    unit: str
    kind: MeterKind
    retired: bool


@dataclass(slots=True)
class RegistryCache:
    revision: int = -1
    enterprises: dict[str, int] = field(default_factory=dict)
    meters: dict[tuple[str, str], MeterInfo] = field(default_factory=dict)
    owners: dict[str, frozenset[str]] = field(default_factory=dict)
    """meter_code → enterprises that have a meter of that code (spoofing checks)."""
    _factors: dict[tuple[str, str], float | str] = field(default_factory=dict)

    @classmethod
    def build(cls, revision: int, enterprises: dict[str, int], meters: list[MeterInfo]) -> RegistryCache:
        owners: dict[str, set[str]] = defaultdict(set)
        for m in meters:
            owners[m.meter_code].add(m.enterprise_code)
        return cls(
            revision=revision,
            enterprises=enterprises,
            meters={(m.enterprise_code, m.meter_code): m for m in meters},
            owners={code: frozenset(ents) for code, ents in owners.items()},
        )

    def factor(self, from_unit: str, to_unit: str) -> float | str:
        """Conversion factor, or the error message when the units do not convert."""
        key = (from_unit, to_unit)
        cached = self._factors.get(key)
        if cached is None:
            try:
                cached = conversion_factor(from_unit, to_unit)
            except UnitError as exc:
                cached = str(exc)
            self._factors[key] = cached
        return cached


def current_revision(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT revision FROM registry.revision").fetchone()
    return int(str(row[0])) if row else 0


def load_registry_cache(conn: psycopg.Connection[tuple[object, ...]]) -> RegistryCache:
    """Read the whole registry (a few thousand meters) in one snapshot."""
    with conn.transaction():
        revision = current_revision(conn)
        enterprises = {
            str(code): int(str(eid))
            for eid, code in conn.execute("SELECT enterprise_id, enterprise_code FROM registry.enterprise")
        }
        meters = [
            MeterInfo(
                int(str(mid)), str(ent), str(code), str(unit), MeterKind(str(kind)), retired is not None
            )
            for mid, ent, code, unit, kind, retired in conn.execute(
                "SELECT m.meter_id, e.enterprise_code, m.meter_code, m.unit, m.kind, m.retired_at"
                " FROM registry.meter m JOIN registry.enterprise e USING (enterprise_id)"
            )
        ]
    return RegistryCache.build(revision, enterprises, meters)
