"""Texts in Chinese and English: the language, a catalogue of texts, and the shared terms.

Park managers and energy-saving inspectors read Chinese, so Chinese is every surface's
default (dashboards, alerts, the monthly report, the demo) and English is available.
Each surface keeps its own catalogue of texts; the words they all show — accounting
variants, target status, alert severities and states, period types, levels — are
:data:`TERMS`, so that a figure reads the same in Grafana, in the report and on the
command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

__all__ = ["TERMS", "Catalogue", "Lang", "MessageError", "term"]


class Lang(StrEnum):
    """Language of a text: Chinese (the default everywhere) or English."""

    ZH = "zh"
    EN = "en"


class MessageError(KeyError):
    """A text key that the catalogue does not have."""


Texts = Mapping[str, tuple[str, str]]
"""Key → (Chinese, English)."""

TERMS: Final[dict[str, tuple[str, str]]] = {
    # The three assessment variants (DOMAIN.md §1: GB/T 2589-2020; 发改环资〔2022〕803号;
    # 发改环资〔2024〕113号).
    "variant.gross": ("综合能耗", "Gross consumption"),
    "variant.excl_feedstock": ("扣除原料用能", "Excluding feedstock"),
    "variant.excl_feedstock_nonfossil": (
        "扣除原料用能和非化石能源",
        "Excluding feedstock and non-fossil energy",
    ),
    # Status against the even path to the 2027 target (docs/accounting.md).
    "status.on_track": ("符合路径", "On track"),
    "status.at_risk": ("有风险", "At risk"),
    "status.off_track": ("偏离", "Off track"),
    # Alerts (docs/alerts.md).
    "severity.critical": ("严重", "Critical"),
    "severity.warning": ("警告", "Warning"),
    "severity.info": ("提示", "Info"),
    "alert_state.open": ("待处理", "Open"),
    "alert_state.acknowledged": ("已确认", "Acknowledged"),
    "alert_state.resolved": ("已解决", "Resolved"),
    # Periods and levels of api.intensity.
    "period_type.ytd": ("年初至今", "Year to date"),
    "period_type.rolling12": ("滚动 12 个月", "Rolling 12 months"),
    "level.city": ("全市", "City"),
    "level.park": ("园区", "Park"),
    "level.enterprise": ("企业", "Enterprise"),
}


def term(key: str) -> tuple[str, str]:
    """The (Chinese, English) pair of a shared term, for a surface's catalogue.

    Raises
    ------
    MessageError
        ``key`` is not in :data:`TERMS`.
    """
    try:
        return TERMS[key]
    except KeyError as exc:
        raise MessageError(key) from exc


class Catalogue:
    """The texts of one surface: each key has a Chinese and an English text.

    A text may hold ``{name}`` fields, filled only when :meth:`text` is given fields (a
    text without fields is returned as written, so Grafana's ``{{ … }}`` templates pass
    through untouched).
    """

    __slots__ = ("_texts",)

    def __init__(self, texts: Texts) -> None:
        self._texts = dict(texts)

    def text(self, key: str, lang: Lang, **fields: object) -> str:
        """The text of ``key`` in ``lang``, its ``{name}`` fields filled from ``fields``.

        Raises
        ------
        MessageError
            The key is not in the catalogue.
        """
        try:
            zh, en = self._texts[key]
        except KeyError as exc:
            raise MessageError(key) from exc
        template = zh if lang is Lang.ZH else en
        return template.format(**fields) if fields else template

    def keys(self) -> frozenset[str]:
        """Every key of the catalogue."""
        return frozenset(self._texts)
