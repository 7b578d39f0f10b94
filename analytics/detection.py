"""The detectors, grouped by cadence, and one run of a group into the alert state.

Each detector is a function ``detect(conn, now) -> Detection`` in an
``analytics.detect.*_store`` module: it reads only data with event time at or before
``now`` and returns what it found (:mod:`analytics.findings`). A run of a group passes each
detector's :class:`~analytics.findings.Detection` to :func:`analytics.alert_store.apply_detection`,
which opens, updates, escalates and clears alerts. The groups are analytics jobs
(:mod:`analytics.jobs`) with cadences that follow how fast each problem needs an answer:
offline every minute, counter and delivery faults every 15 minutes, consumption anomalies
hourly, intensity and data quality daily. Every detector is idempotent, so a group can run again at any time.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, astuple, dataclass
from datetime import datetime
from typing import Any

import psycopg

from analytics.findings import Detection

__all__ = ["DETECTORS", "GROUPS", "Detector", "GroupOutcome", "detectors_of", "run_detector", "run_group"]

log = logging.getLogger(__name__)

Connection = psycopg.Connection[Any]
DetectFunction = Callable[[Connection, datetime], Detection]


@dataclass(frozen=True, slots=True)
class Detector:
    """A detector: its name, its group (an analytics job) and its ``"module:function"``."""

    name: str
    group: str
    target: str

    def function(self) -> DetectFunction:
        """The detect function, importing its module."""
        module, _, attribute = self.target.partition(":")
        found: DetectFunction = getattr(importlib.import_module(module), attribute)
        return found


GROUPS: dict[str, tuple[float, str]] = {
    "detect-offline": (60.0, "offline meters and gateways (analytics.detect.offline)"),
    "detect-counters": (900.0, "counter faults, clock skew, late delivery, quarantined messages"),
    "detect-anomalies": (3600.0, "consumption far from its expected profile, night baseload creep"),
    "detect-daily": (86400.0, "intensity among industry peers and against the target path, data quality"),
}
"""Group (job name) → (default period [s], description)."""

DETECTORS: tuple[Detector, ...] = (
    Detector("offline", "detect-offline", "analytics.detect.offline_store:detect_offline"),
    Detector("counters", "detect-counters", "analytics.detect.counters_store:detect_counters"),
    Detector("delivery", "detect-counters", "analytics.detect.delivery_store:detect_delivery"),
    Detector("consumption", "detect-anomalies", "analytics.detect.consumption_store:detect_consumption"),
    Detector("intensity", "detect-daily", "analytics.detect.intensity_store:detect_intensity"),
    Detector("quality", "detect-daily", "analytics.detect.quality_store:detect_quality"),
)


@dataclass(frozen=True, slots=True)
class GroupOutcome:
    """Alerts a group run changed, summed over its detectors, and its findings."""

    findings: int = 0
    opened: int = 0
    updated: int = 0
    escalated: int = 0
    resolved: int = 0
    reopened: int = 0

    def __add__(self, other: GroupOutcome) -> GroupOutcome:
        return GroupOutcome(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def __str__(self) -> str:
        return (
            f"{self.findings} findings; alerts {self.opened} opened, {self.updated} updated, "
            f"{self.escalated} escalated, {self.resolved} resolved, {self.reopened} reopened"
        )


def detectors_of(group: str) -> list[Detector]:
    """The detectors of ``group``, in order; an unknown group is a ``KeyError``."""
    if group not in GROUPS:
        raise KeyError(group)
    return [d for d in DETECTORS if d.group == group]


def run_detector(conn: Connection, detector: Detector, now: datetime) -> GroupOutcome:
    """Run one detector at ``now`` and apply what it found to the alert state."""
    from analytics.alert_store import apply_detection  # noqa: PLC0415 - loaded with the first run

    started = time.monotonic()
    detection = detector.function()(conn, now)
    applied = apply_detection(conn, detection)
    outcome = GroupOutcome(len(detection.findings), **asdict(applied))
    log.debug(
        "detector %s at %s in %.3f s: %s",
        detector.name,
        now.isoformat(),
        time.monotonic() - started,
        outcome,
        extra={"detector": detector.name},
    )
    return outcome


def run_group(conn: Connection, group: str, now: datetime) -> str:
    """Run every detector of ``group`` at ``now``; a one-line summary (the job's)."""
    total = GroupOutcome()
    for detector in detectors_of(group):
        total = total + run_detector(conn, detector, now)
    return str(total)
