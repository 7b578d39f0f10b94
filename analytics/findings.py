"""Findings: what a detector reports, and the result of one detector run. Pure values.

A detector is a pure function from data to :class:`Finding` values. A finding names a
problem by ``kind`` (dotted, e.g. ``meter.offline``) and ``subject`` (a stable text
identity within the kind, e.g. ``meter:91420704MA4L2TEU8K/EL-01``); together with
``started_at`` they identify one episode of the problem. The alert state
(:mod:`analytics.alert_state`) turns findings into alerts: one record per (kind, subject)
while it is not resolved, updated by repeated detection (DESIGN.md "Analytics contract").

A :class:`Detection` is what one run of a detector over a scope found. The scope (kinds,
and the subjects looked at) tells the alert state which open alerts the run could have
confirmed: an open alert in the scope that the run did not find again is cleared after its
kind's ``clear_after_s`` (hysteresis, DOMAIN.md §8 "hysteresis on clear").
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

__all__ = ["Detection", "Finding", "Severity", "enterprise_subject", "gateway_subject", "meter_subject"]


class Severity(IntEnum):
    """How urgent a finding is; ordered, so an alert's severity can only escalate."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        """``info``, ``warning`` or ``critical`` (as stored and shown)."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """The severity called ``text`` (case-insensitive)."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (known: info, warning, critical)") from None


def meter_subject(enterprise_code: str, meter_code: str) -> str:
    """Subject of a meter: ``meter:<enterprise code>/<meter code>``."""
    return f"meter:{enterprise_code}/{meter_code}"


def gateway_subject(enterprise_code: str) -> str:
    """Subject of an enterprise's gateway (its MQTT connection): ``gateway:<enterprise code>``."""
    return f"gateway:{enterprise_code}"


def enterprise_subject(enterprise_code: str) -> str:
    """Subject of an enterprise as a whole: ``enterprise:<enterprise code>``."""
    return f"enterprise:{enterprise_code}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a detector found, with its evidence.

    Parameters
    ----------
    kind : dotted kind, ``<area>.<problem>`` (e.g. ``meter.offline``, ``counter.stuck``).
    severity : how urgent.
    subject : stable identity within the kind (see the ``*_subject`` helpers).
    started_at : start of the episode (timezone-aware); with kind and subject, its identity.
    ended_at : end of the episode, or None while it is ongoing at the run's ``now``.
    summary_zh, summary_en : one line for people, with the key figures (Chinese first).
    enterprise_id, meter_id, park_id : registry ids the alert is filtered by, when known.
    observed : the observed value, in ``unit``.
    expected_low, expected_high : the expected value or range, in ``unit`` (equal for a value).
    score : the detector's score (e.g. a robust z-score) [-].
    unit : unit of observed and expected (``kWh``, ``tce/10^4 yuan``, ``s``, ``%`` …).
    evidence : further JSON-serialisable details (windows, counts, thresholds, method).
    """

    kind: str
    severity: Severity
    subject: str
    started_at: datetime
    summary_zh: str
    summary_en: str
    ended_at: datetime | None = None
    enterprise_id: int | None = None
    meter_id: int | None = None
    park_id: int | None = None
    observed: float | None = None
    expected_low: float | None = None
    expected_high: float | None = None
    score: float | None = None
    unit: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        area, dot, problem = self.kind.partition(".")
        if not (dot and area and problem) or self.kind != self.kind.lower() or " " in self.kind:
            raise ValueError(f"a finding kind is dotted lower case, e.g. meter.offline; got {self.kind!r}")
        if not self.subject:
            raise ValueError("a finding needs a subject")
        if self.started_at.tzinfo is None or (self.ended_at is not None and self.ended_at.tzinfo is None):
            raise ValueError("finding times must be timezone-aware")
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError(f"finding {self.kind} {self.subject} ends before it starts")
        for name in ("observed", "expected_low", "expected_high", "score"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"finding {self.kind} {self.subject}: {name} is not finite ({value})")

    @property
    def ongoing(self) -> bool:
        """True while the problem lasts at the run's ``now``."""
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class Detection:
    """What one detector run found, and what it looked at.

    Parameters
    ----------
    detector : name of the detector (as recorded with the alerts it opens).
    now : the run's time: the detector used only data with event time at or before it.
    kinds : the kinds this run evaluates (a kind not found is "not found", not "unknown").
    clear_after_s : per kind, how long an open alert of the scope must go unconfirmed
        before it is resolved as cleared [s]; kinds missing here use 0 (the next run clears).
    subjects : the subjects evaluated, or None for every subject of the kinds; open alerts
        of other subjects are left as they are (e.g. meters whose data was not looked at).
    findings : the problems found; each kind must be one of ``kinds``.
    """

    detector: str
    now: datetime
    kinds: tuple[str, ...]
    findings: tuple[Finding, ...]
    clear_after_s: Mapping[str, float] = field(default_factory=dict)
    subjects: Collection[str] | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("a detection's now must be timezone-aware")
        outside = sorted({f.kind for f in self.findings} - set(self.kinds))
        if outside:
            raise ValueError(f"detector {self.detector} found kinds outside its scope: {', '.join(outside)}")
