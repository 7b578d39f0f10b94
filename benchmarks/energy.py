"""Benchmark of the energy job: a full recompute, and incremental runs at two history sizes.

A script, not a test: it prints figures measured in one run (docs/benchmarks.md).

Starts a private embedded PostgreSQL (:class:`parkenergy.embedded.EmbeddedPostgres`), loads
a registry of ``--enterprises`` × 8 meters (4 electricity registers every 15 min with a
multiplier and a modulus, 2 gas registers and 2 interval meters every hour), generates
``--years`` of readings with numpy and loads them by binary COPY. Then, for the full
history and for a history ``--ratio`` times shorter (a fresh database each):

1. a full recompute (the first run of the job: every reading is new);
2. ``--repeats`` incremental runs, each after one more hour of readings for every meter.

The incremental cost should be the same at both history sizes (it follows the new data).

    .venv/bin/python benchmarks/energy.py --years 4
"""

from __future__ import annotations

import argparse
import csv
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

# This script's own name would shadow the analytics package when run as a file.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import psycopg  # noqa: E402

from analytics.energy_store import run_energy  # noqa: E402
from parkdata.migrate import migrate  # noqa: E402
from parkdata.registry_file import read_registry_file  # noqa: E402
from parkdata.registry_store import store_registry  # noqa: E402
from parkenergy.embedded import EmbeddedPostgres  # noqa: E402

HEADER = [
    "park_code", "park_name", "enterprise_code", "enterprise_name", "industry_code", "key_energy_unit",
    "meter_code", "carrier", "unit", "kind", "purpose", "multiplier", "rollover", "expected_interval_s",
    "rated_capacity", "parent_meter_code",
]  # fmt: skip
# meter code, carrier, unit, kind, multiplier, rollover, interval [s], rated capacity [unit/h]
METERS = [
    ("EL-1", "electricity", "kWh", "register", "100", "1000000", "900", "40000"),
    ("EL-2", "electricity", "kWh", "register", "100", "1000000", "900", "40000"),
    ("EL-3", "electricity", "kWh", "register", "50", "1000000", "900", "20000"),
    ("EL-4", "electricity", "kWh", "register", "50", "1000000", "900", "20000"),
    ("NG-1", "natural_gas", "m3", "register", "1", "100000000", "3600", "5000"),
    ("NG-2", "natural_gas", "m3", "register", "1", "100000000", "3600", "5000"),
    ("ST-1", "steam", "t", "interval", "1", "", "3600", "100"),
    ("COKE", "coke", "t", "interval", "1", "", "3600", "100"),
]
START_S = 1_609_430_400  # 2021-01-01 00:00 +08:00
_PG_EPOCH_S = 946_684_800
_ROW = np.dtype(
    [("n", ">i2"), ("l1", ">i4"), ("m", ">i4"), ("l2", ">i4"), ("ts", ">i8"), ("l3", ">i4"), ("v", ">f8"),
     ("l4", ">i4"), ("rx", ">i8")]
)  # fmt: skip


def registry_csv(path: Path, enterprises: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for e in range(enterprises):
            for code, carrier, unit, kind, mult, roll, interval, cap in METERS:
                w.writerow(["BENCH", "Benchmark park", f"E{e:04d}", f"Enterprise {e}", "3120", "true", code,
                            carrier, unit, kind, "consumption", mult, roll, interval, cap, ""])  # fmt: skip
    return path


def readings(meter_id: int, kind: str, interval_s: int, first_s: int, end_s: int, received_s: float,
             rng: np.random.Generator, level: float) -> bytes:  # fmt: skip
    """Binary COPY rows (meter_id, ts, value, received_at) for [first_s, end_s)."""
    ts = np.arange(first_s, end_s, interval_s, dtype=np.int64)
    step = rng.uniform(0.0, 1.0, len(ts))
    values = level + np.cumsum(step) if kind == "register" else step * 50
    rows = np.zeros(len(ts), dtype=_ROW)
    rows["n"], rows["l1"], rows["l2"], rows["l3"], rows["l4"] = 4, 4, 8, 8, 8
    rows["m"] = meter_id
    rows["ts"] = (ts - _PG_EPOCH_S) * 1_000_000
    rows["v"] = values
    rows["rx"] = int((received_s - _PG_EPOCH_S) * 1_000_000)
    return rows.tobytes()


def load(conn: psycopg.Connection[tuple[object, ...]], meters: list[tuple[int, str, int]], first_s: int,
         end_s: int, received_s: float, seed: int) -> int:  # fmt: skip
    rng = np.random.default_rng(seed)
    total = 0
    with conn.cursor().copy(
        "COPY ingest.reading (meter_id, ts, value, received_at) FROM STDIN (FORMAT binary)"
    ) as cp:
        cp.write(b"PGCOPY\n\xff\r\n\0" + bytes(8))
        for meter_id, kind, interval_s in meters:
            level = float(end_s - START_S) / interval_s if kind == "register" else 0.0
            block = readings(meter_id, kind, interval_s, first_s, end_s, received_s, rng, level)
            total += len(block) // _ROW.itemsize
            cp.write(block)
        cp.write(struct.pack(">h", -1))
    return total


def scenario(
    pg: EmbeddedPostgres, name: str, enterprises: int, days: float, repeats: int
) -> dict[str, float]:
    url = pg.create_database(name)
    with tempfile.TemporaryDirectory() as tmp, psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        with conn.transaction():
            store_registry(conn, read_registry_file(registry_csv(Path(tmp) / "registry.csv", enterprises)))
        meters = [
            (int(str(i)), str(k), int(str(s)))
            for i, k, s in conn.execute("SELECT meter_id, kind, expected_interval_s FROM registry.meter")
        ]
        end_s = START_S + int(days * 86400) // 3600 * 3600
        t0 = time.perf_counter()
        with conn.transaction():
            n = load(conn, meters, START_S, end_s, time.time() - 86400, seed=1)
        conn.execute("VACUUM ANALYZE ingest.reading")
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = run_energy(conn)
        full_s = time.perf_counter() - t0
        conn.execute("VACUUM ANALYZE")
        incremental = []
        for r in range(repeats):
            with conn.transaction():
                new = load(conn, meters, end_s + r * 3600, end_s + (r + 1) * 3600, time.time(), seed=2 + r)
            t0 = time.perf_counter()
            run = run_energy(conn)
            incremental.append(time.perf_counter() - t0)
            assert run.meters == len(meters)
        return {
            "readings": n,
            "load_s": load_s,
            "full_s": full_s,
            "full_buckets": full.buckets,
            "new_readings": new,
            "incr_s": statistics.median(incremental),
            "incr_min_s": min(incremental),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--enterprises", type=int, default=40)
    parser.add_argument("--years", type=float, default=4.0)
    parser.add_argument("--ratio", type=float, default=10.0, help="history size ratio of the two runs")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        pg = EmbeddedPostgres(Path(base) / "pg")
        pg.start()
        try:
            results = {}
            for label, days in (("short", args.years * 365 / args.ratio), ("long", args.years * 365)):
                results[label] = scenario(pg, f"bench_{label}", args.enterprises, days, args.repeats)
                r = results[label]
                print(
                    f"{label:>5}: {days:7.1f} days, {r['readings']:>10,.0f} readings, "
                    f"{args.enterprises * len(METERS)} meters | load {r['load_s']:6.1f} s | "
                    f"full recompute {r['full_s']:7.1f} s ({r['readings'] / r['full_s']:,.0f} readings/s, "
                    f"{r['full_buckets']:,.0f} 15-min buckets) | incremental after 1 h "
                    f"({r['new_readings']:,.0f} new readings): median {r['incr_s']:.3f} s, "
                    f"min {r['incr_min_s']:.3f} s",
                    flush=True,
                )
            ratio = results["long"]["incr_s"] / results["short"]["incr_s"]
            print(f"incremental cost, long / short history ({args.ratio:g}x more readings): {ratio:.2f}")
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
