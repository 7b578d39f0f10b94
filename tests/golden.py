"""The golden payload cases of tests/payloads, shared by the unit and integration tests."""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from collector.registry_cache import MeterInfo, RegistryCache
from parkdata.carriers import MeterKind

PAYLOADS = Path(__file__).parent / "payloads"
REGISTRY_CSV = PAYLOADS / "registry.csv"


@dataclass(frozen=True)
class Case:
    file: str
    topic: str
    payload: bytes
    stored: tuple[tuple[str, datetime, float], ...] = ()
    status: str | None = None
    reason: str | None = None
    quarantined_items: tuple[tuple[int, str], ...] = ()

    @property
    def enterprise(self) -> str:
        return self.topic.split("/")[2]

    @property
    def id(self) -> str:
        return f"{Path(self.file).stem}@{self.topic.rsplit('/', 1)[-1]}"


def _case(entry: dict[str, object]) -> Case:
    file = str(entry["file"])
    stored = tuple(
        (str(m), datetime.fromisoformat(str(ts)), float(str(v)))
        for m, ts, v in entry.get("stored", [])  # type: ignore[attr-defined]
    )
    items = tuple((int(i), str(r)) for i, r in entry.get("quarantined_items", []))  # type: ignore[attr-defined]
    return Case(
        file=file,
        topic=str(entry["topic"]),
        payload=(PAYLOADS / file).read_bytes(),
        stored=stored,
        status=entry.get("status"),  # type: ignore[arg-type]
        reason=entry.get("reason"),  # type: ignore[arg-type]
        quarantined_items=items,
    )


def load_cases() -> tuple[list[Case], list[Case]]:
    manifest = tomllib.loads((PAYLOADS / "manifest.toml").read_text("utf-8"))
    return [_case(e) for e in manifest["good"]], [_case(e) for e in manifest["bad"]]


def registry_cache() -> RegistryCache:
    """The test registry as the collector would cache it (ids assigned in file order)."""
    with REGISTRY_CSV.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    enterprises: dict[str, int] = {}
    meters = []
    for i, row in enumerate(rows, start=1):
        enterprises.setdefault(row["enterprise_code"], len(enterprises) + 1)
        meters.append(
            MeterInfo(
                i, row["enterprise_code"], row["meter_code"], row["unit"], MeterKind(row["kind"]), False
            )
        )
    return RegistryCache.build(1, enterprises, meters)
