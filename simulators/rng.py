"""Keyed random streams: every random quantity is drawn from a generator keyed by what it is for.

A stream is ``(seed, stream, *keys)`` hashed by :class:`numpy.random.SeedSequence`;
the noise of a day is keyed by that day, the faults of a year by that year, so a
value never depends on which other values were drawn before it, and a run that
starts later draws exactly the same numbers for the same days.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    PARK = 1
    ACTIVITY = 2
    MAINTENANCE = 3
    NOISE = 4
    FAULTS = 5
    FAULT_PARAMS = 6
    ROLLOVER = 7
    CREEP = 8
    PV = 9
    REPLACEMENT = 10
    ECONOMICS = 11


def rng(seed: int, stream: Stream, *keys: int) -> np.random.Generator:
    """The generator of ``stream`` for ``keys`` (e.g. a year, a day) under ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, int(stream), *keys])))
