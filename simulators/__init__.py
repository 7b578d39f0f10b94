"""Simulated parks, enterprises and meters, deterministic from a seed.

Public interface:

- :func:`build_park` → :class:`Park` (enterprises, meters, scenarios);
- :class:`Simulation` with :class:`SimulationConfig`: ``write_registry``,
  ``write_economics``, ``economics``, ``backfill``, ``live``, ``day``;
- :class:`Generator` (one day at a time: readings, faulty messages, truth);
- :class:`FaultRates`, :class:`FaultKind`;
- :class:`BulkPublisher` and :class:`GatewayFleet` (MQTT, in :mod:`simulators.publish`).
"""

from simulators.faults import DEFAULT_RATES, FaultKind, FaultRates, load_rates
from simulators.generator import DayOutput, Generator, Replacement, TruthRecord
from simulators.park import Enterprise, Meter, Park, build_park
from simulators.run import Progress, RunStats, Simulation, SimulationConfig
from simulators.wire import Encoder, Message

__all__ = [
    "DEFAULT_RATES",
    "DayOutput",
    "Encoder",
    "Enterprise",
    "FaultKind",
    "FaultRates",
    "Generator",
    "Message",
    "Meter",
    "Park",
    "Progress",
    "Replacement",
    "RunStats",
    "Simulation",
    "SimulationConfig",
    "TruthRecord",
    "build_park",
    "load_rates",
]
