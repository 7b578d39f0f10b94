"""The simulated park: determinism, files that load, readings through the real broker and collector,
magnitudes within DOMAIN.md §6, and ground truth for every fault kind."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from parkdata.carriers import MeterKind, MeterPurpose
from parkdata.migrate import migrate
from parkdata.registry_file import read_meter_events_file, read_registry_file
from parkdata.settings import MqttEndpoint
from parkenergy.cli import app
from simulators import DayOutput, FaultKind, FaultRates, Message, Simulation, SimulationConfig, build_park
from simulators.codes import is_valid_uscc
from simulators.economics import park_intensity_by_year
from simulators.faults import FaultRateError, load_rates
from simulators.publish import GatewayFleet
from simulators.timebase import CST
from tests.harness import collector_config, running_collector, wait_for
from tests.sim_support import (
    database_readings,
    load_simulated_registry,
    publish_backfill,
    quarantine_reasons,
    stored_readings,
)

START = datetime(2022, 1, 1, tzinfo=CST)
RFC3339_CST = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$")

# DOMAIN.md §2, test vectors of §7: tce per meter unit (electricity at 当量).
TCE = {
    "electricity": 0.1229e-3,
    "natural_gas": 1.2143e-3,
    "steam": 0.1286,
    "raw_coal": 0.7143,
    "washed_coal": 0.9,
    "coke": 0.9714,
    "diesel": 1.4571,
    "coke_oven_gas": 0.5929e-3,
}
# DOMAIN.md §6 intensity ranges [tce / 10⁴ yuan] of its sectors, by GB/T 4754 class.
_SECTORS = {
    (3.0, 5.0): ("3120",),  # iron and steel
    (2.0, 4.0): ("3011", "3041"),  # cement and building materials
    (0.05, 0.5): ("3973", "3974", "3976", "3832"),  # optoelectronics and semiconductors
    (0.1, 0.3): ("2710", "2720", "2761"),  # biomedicine
    (0.2, 0.5): ("1311", "1331", "1361", "1391", "1530"),  # agri-food processing
}
DOMAIN_RANGES = {code: bounds for bounds, codes in _SECTORS.items() for code in codes}


def _sim(
    enterprises: int, days: int, rates: FaultRates, seed: int = 7, start: datetime = START
) -> Simulation:
    return Simulation(
        SimulationConfig(
            enterprises=enterprises, seed=seed, start=start, end=start + timedelta(days=days), rates=rates
        )
    )


def _all_days(sim: Simulation) -> list[DayOutput]:
    assert sim.last_day is not None
    return [sim.day(d) for d in range(sim.lookback_day, sim.last_day)]


# --- the model ------------------------------------------------------------------------------


def test_credit_code_check_characters_match_the_standard_example() -> None:
    assert is_valid_uscc("91350100M000100Y43")  # GB 32100-2015 sample code
    assert not is_valid_uscc("91350100M000100Y44")
    assert not is_valid_uscc("91350100M000100Z43")


def test_park_has_the_policy_areas_valid_credit_codes_and_few_fast_meters() -> None:
    park = build_park(60, seed=3)
    assert {e.park_name for e in park.enterprises} == {
        "葛店经开区",
        "临空经济区",
        "鄂城区",
        "华容区",
        "梁子湖区",
    }
    assert park.enterprises[0].industry_code == "3120"  # the steel works comes first
    codes = [e.code for e in park.enterprises]
    assert len(set(codes)) == len(codes)
    assert all(is_valid_uscc(c) and re.fullmatch(r"[0-9A-Za-z_-]+", c) for c in codes)
    assert len({e.name for e in park.enterprises}) == len(park.enterprises)
    for e in park.enterprises:
        meters = park.meters_of(e)
        assert 3 <= len(meters) <= 9
        assert 1 <= sum(m.interval_s == 900 for m in meters) <= 3
        assert any(m.carrier == "electricity" and m.multiplier > 1 for m in meters)
    kinds = {m.carrier for m in park.meters}
    assert {"coke", "washed_coal", "coke_oven_gas", "raw_coal", "water", "steam"} <= kinds


def test_same_seed_same_readings_registry_economics_and_truth(tmp_path: Path) -> None:
    outputs = []
    for run in ("a", "b"):
        sim = _sim(6, 20, FaultRates().scaled(20), seed=11)
        sim.write_registry(tmp_path / run)
        sim.write_economics(tmp_path / run / "eco")
        truth = io.StringIO()
        stats = sim.backfill(None, truth=truth)
        outputs.append((stored_readings(sim, _all_days(sim)), truth.getvalue(), stats.as_dict()))
    (readings_a, truth_a, stats_a), (readings_b, truth_b, stats_b) = outputs
    assert readings_a == readings_b and len(readings_a) > 20 * 6 * 100
    assert truth_a == truth_b and truth_a.count("\n") > 10
    stats_a.pop("seconds"), stats_b.pop("seconds")
    assert stats_a == stats_b
    for name in (
        "registry.csv",
        "meter_events.csv",
        "eco/value_added.csv",
        "eco/baseline_2022.csv",
        "eco/output.csv",
        "eco/deflators.csv",
        "eco/truth_intensity.csv",
    ):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    other = _sim(6, 20, FaultRates().scaled(20), seed=12)
    assert stored_readings(other, _all_days(other)) != readings_a


def test_a_later_start_and_live_mode_send_the_same_readings_and_truth() -> None:
    rates = FaultRates().scaled(30)
    whole = _sim(4, 6, rates, seed=5)
    whole_truth = io.StringIO()
    sent: list[Message] = []
    whole.backfill(sent.append, truth=whole_truth, announce_online=False)
    later_start = START + timedelta(days=3)
    # The last three days: as a backfill starting on day 3, and live (replayed at high speed).
    part = Simulation(
        SimulationConfig(enterprises=4, seed=5, start=later_start, end=START + timedelta(days=6), rates=rates)
    )
    backfilled: list[Message] = []
    part.backfill(backfilled.append, announce_online=False)
    live_sim = Simulation(
        SimulationConfig(enterprises=4, seed=5, start=later_start, end=START + timedelta(days=6), rates=rates)
    )
    live_truth = io.StringIO()
    published: list[Message] = []
    stats = live_sim.live(published.append, speed=1e9, truth=live_truth)
    assert stats.days == 3

    def readings(messages: list[Message], since: int) -> set[tuple[str, bytes]]:
        out = set()
        for m in messages:
            if m.status is None and m.stored:
                for item in json.loads(m.payload)["readings"]:
                    ts = int(datetime.fromisoformat(item["ts"]).timestamp())
                    if ts >= since:
                        out.add((m.topic, json.dumps(item, sort_keys=True).encode()))
        return out

    since = int(later_start.timestamp())
    assert readings(published, since) == readings(backfilled, since) == readings(sent, since)
    later_truth = [
        line
        for line in whole_truth.getvalue().splitlines()
        if json.loads(line)["start"] >= later_start.isoformat()
    ]
    assert live_truth.getvalue().splitlines() == later_truth
    assert {m.status for m in published if m.status} <= {"online", "offline"}


# --- files ----------------------------------------------------------------------------------


def test_registry_and_events_load_into_the_database(tmp_path: Path, database_url: str) -> None:
    sim = _sim(12, 30, FaultRates.none().with_rates({"meter.replacement": 0.01}))
    registry_path, events_path = sim.write_registry(tmp_path)
    registry = read_registry_file(registry_path)
    events = read_meter_events_file(events_path)
    assert len(registry.enterprises) == 12 and len(registry.meters) == len(sim.park.meters)
    assert events, "a replacement rate of 1 % per meter-day must give some replacements in 30 days"
    load_simulated_registry(database_url, tmp_path)
    with psycopg.connect(database_url) as conn:
        meters = conn.execute("SELECT count(*) FROM api.meter").fetchone()
        stored_events = conn.execute("SELECT count(*) FROM api.meter_event").fetchone()
    assert meters == (len(sim.park.meters),)
    assert stored_events == (len(events),)


def test_economics_files_have_the_contract_columns(tmp_path: Path) -> None:
    sim = _sim(8, 400, FaultRates.none())
    files = sim.write_economics(tmp_path)
    assert {p.name for p in files} >= {
        "value_added.csv",
        "value_added.xlsx",
        "deflators.xlsx",
        "baseline_2022.csv",
        "output.csv",
        "truth_intensity.csv",
    }
    with (tmp_path / "value_added.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"enterprise_code", "period", "value_added_10k_yuan", "price_index_2022"}
    assert {r["period"] for r in rows} >= {"2022-01", "2023-01"} and "2023-02" not in {
        r["period"] for r in rows
    }
    with (tmp_path / "baseline_2022.csv").open(encoding="utf-8") as f:
        baseline = list(csv.DictReader(f))
    by_enterprise: dict[str, set[str]] = defaultdict(set)
    for r in baseline:
        by_enterprise[r["enterprise_code"]].add(r["value_added_10k_yuan"])
        assert r["carrier"] != "water"
    assert all(len(v) == 1 for v in by_enterprise.values())
    with (tmp_path / "deflators.csv").open(encoding="utf-8") as f:
        deflators = {(r["industry_code"], r["year"]) for r in csv.DictReader(f)}
    assert all((e.industry_code[:2], "2023") in deflators for e in sim.park.enterprises)


# --- magnitudes -----------------------------------------------------------------------------


def test_intensity_of_the_generated_readings_is_within_domain_ranges(tmp_path: Path) -> None:
    """2022 energy computed from the published readings (register deltas × multiplier, interval sums,
    PV generation − export) over 2022 value added from value_added.csv."""
    sim = _sim(14, 365, FaultRates.none(), seed=2)
    sim.write_economics(tmp_path)
    park = sim.park
    energy = defaultdict(float)
    series: dict[int, list[np.ndarray]] = defaultdict(list)
    for out in _all_days(sim):
        order = np.argsort(out.meter, kind="stable")
        meters, values = out.meter[order], out.value[order]
        for m in np.unique(meters):
            series[int(m)].append(values[meters == m])
    for index, chunks in series.items():
        m = park.meters[index]
        values = np.concatenate(chunks)
        if m.kind is MeterKind.REGISTER:
            deltas = np.diff(values)
            deltas = np.where(deltas < 0, deltas + (m.rollover or 0), deltas)  # rollovers
            quantity = deltas.sum() * m.multiplier
        else:
            quantity = values.sum() * m.multiplier
        sign = -1.0 if m.purpose is MeterPurpose.EXPORT else 1.0
        energy[m.enterprise_index] += sign * quantity * TCE.get(m.carrier, 0.0)
    with (tmp_path / "value_added.csv").open(encoding="utf-8") as f:
        va = Counter()
        for r in csv.DictReader(f):
            if r["period"].startswith("2022"):
                va[r["enterprise_code"]] += float(r["value_added_10k_yuan"])
    checked = 0
    for e in park.enterprises:
        bounds = DOMAIN_RANGES.get(e.industry_code)
        if bounds is None:
            continue
        intensity = energy[e.index] / va[e.code]
        assert bounds[0] <= intensity <= bounds[1], (e.industry_code, intensity)
        checked += 1
    assert checked >= 5
    with (tmp_path / "output.csv").open(encoding="utf-8") as f:
        steel = sum(
            float(r["quantity"])
            for r in csv.DictReader(f)
            if r["enterprise_code"] == park.enterprises[0].code and r["period"].startswith("2022")
        )
    assert 500 <= energy[0] * 1000 / steel <= 600  # crude steel ≈ 550 kgce/t (CISA 2024)


def test_the_park_total_lands_near_the_target_path() -> None:
    sim = Simulation(
        SimulationConfig(
            enterprises=40, seed=1, start=START, end=datetime(2026, 1, 1, tzinfo=CST), rates=FaultRates.none()
        )
    )
    by_year = park_intensity_by_year(sim.economics())
    decline_2025 = by_year[2025] / by_year[2022] - 1
    path_2025 = 0.9 ** (3 / 5) - 1  # DOMAIN.md §1: even path to −10 % in 2027
    assert abs(decline_2025 - path_2025) < 0.05
    assert abs(decline_2025 - path_2025) > 0.001


# --- faults ---------------------------------------------------------------------------------


def test_every_fault_kind_appears_in_the_ground_truth_at_rate_one() -> None:
    sim = _sim(6, 3, FaultRates.uniform(1.0))
    truth = io.StringIO()
    sim.backfill(None, truth=truth)
    records = [json.loads(line) for line in truth.getvalue().splitlines()]
    assert {r["kind"] for r in records} == {k.value for k in FaultKind}
    codes = {e.code for e in sim.park.enterprises}
    for r in records:
        assert set(r) == {"kind", "enterprise", "meter", "start", "end", "detail"}
        assert r["enterprise"] in codes
        assert RFC3339_CST.match(r["start"]) and RFC3339_CST.match(r["end"]) and r["start"] <= r["end"]
        assert (r["meter"] is None) == r["kind"].startswith(("gateway.", "delivery.", "clock."))


def test_rate_zero_injects_nothing() -> None:
    sim = _sim(5, 5, FaultRates.none())
    stats = sim.backfill(None)
    assert sum(stats.faults.values()) == 0 or set(stats.faults) == {"register.rollover"}
    assert not stats.quarantined and stats.duplicates == 0
    assert stats.stored == stats.readings


# --- through the broker and the collector ---------------------------------------------------


def test_backfill_through_the_broker_and_collector_stores_exactly_what_was_sent(
    tmp_path: Path, database_url: str, mqtt_url: str
) -> None:
    rates = (
        FaultRates()
        .scaled(40)
        .with_rates(
            {
                "payload.malformed": 0.15,
                "unit.wrong": 0.15,
                "topic.foreign": 0.15,
                "register.unavailable": 0.15,
            }
        )
    )
    sim = _sim(5, 3, rates, seed=3)
    sim.write_registry(tmp_path)
    load_simulated_registry(database_url, tmp_path)
    truth = io.StringIO()
    with running_collector(collector_config(database_url, mqtt_url)) as collector:
        stats = publish_backfill(sim, collector, mqtt_url, truth, max_inflight=200, timeout_s=60)
    expected = stored_readings(sim, _all_days(sim))
    assert len(expected) == stats.stored
    assert database_readings(database_url) == expected
    assert quarantine_reasons(database_url) == stats.quarantined
    assert set(stats.quarantined) >= {"payload.undecodable", "value.not_numeric", "registry.meter_not_owned"}
    assert collector.totals.duplicates == stats.duplicates > 0
    faults = Counter(json.loads(line)["kind"] for line in truth.getvalue().splitlines())
    assert faults["payload.malformed"] == stats.quarantined["payload.undecodable"]
    with psycopg.connect(database_url) as conn:
        online = conn.execute("SELECT count(*) FROM api.gateway_status WHERE status = 'online'").fetchone()
    assert online == (5,)


def test_live_gateway_outage_fires_the_last_will(tmp_path: Path, database_url: str, mqtt_url: str) -> None:
    rates = FaultRates.none().with_rates({"gateway.offline": 0.5})
    start = START + timedelta(days=10)
    sim = _sim(3, 2, rates, seed=4, start=start)
    sim.write_registry(tmp_path)
    load_simulated_registry(database_url, tmp_path)
    endpoint = MqttEndpoint.parse(mqtt_url)
    with running_collector(collector_config(database_url, mqtt_url)) as collector:
        fleet = GatewayFleet(endpoint, sim.park, sim.config.prefix)
        try:
            stats = sim.live(fleet.publish, speed=1e9, stop=threading.Event())
        finally:
            fleet.close()
        readings = stats.messages - stats.statuses
        wait_for(lambda: collector.totals.stored >= stats.stored, 60, "live readings stored")
    assert stats.faults["gateway.offline"] >= 1
    assert database_readings(database_url) == stored_readings(sim, _all_days(sim))
    assert readings > 0
    with psycopg.connect(database_url) as conn:
        offline = conn.execute("SELECT count(*) FROM api.gateway_event WHERE status = 'offline'").fetchone()
    assert offline is not None and offline[0] >= 1


def test_cli_writes_files_and_with_collect_stores_the_readings(
    tmp_path: Path, database_url: str, mqtt_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MQTT_URL", mqtt_url)
    monkeypatch.setenv("PARKENERGY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLLECTOR_HTTP_PORT", "0")
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "-n",
            "3",
            "--start",
            "2022-03-01",
            "--end",
            "2022-03-02",
            "--seed",
            "9",
            "--registry-out",
            str(tmp_path / "reg"),
            "--economics-out",
            str(tmp_path / "eco"),
            "--truth-out",
            str(tmp_path / "truth.jsonl"),
            "--collect",
            "--json",
            "--fault",
            "meter.gap=0.2",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert (tmp_path / "reg" / "registry.csv").exists() and (tmp_path / "eco" / "output.xlsx").exists()
    with psycopg.connect(database_url) as conn:
        count = conn.execute("SELECT count(*) FROM ingest.reading").fetchone()
    assert count == (summary["stored"],) and summary["stored"] > 0
    assert summary["faults"].get("meter.gap", 0) == sum(
        1
        for line in (tmp_path / "truth.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(line)["kind"] == "meter.gap"
    )


def test_a_fault_profile_names_its_file_and_refuses_unknown_keys(tmp_path: Path) -> None:
    profile = tmp_path / "faults.toml"
    for text, message in (
        ('rate = 2.0\n[rates]\n"meter.gap" = 0.01\n', "unknown key(s) rate; a profile has scale and [rates]"),
        ('scale = "x"\n', "scale must be a number, got 'x'"),
        ("scale = -1\n", "a fault scale must be a finite number, 0 or more, got -1.0"),
        ('[rates]\n"meter.gap" = true\n', "meter.gap must be a number, got True"),
        ('[rates]\n"meter.nope" = 0.1\n', "unknown fault kind 'meter.nope'"),
        ('[rates]\n"meter.gap" = 2\n', "rate of meter.gap must be within 0..1, got 2.0"),
    ):
        profile.write_text(text, encoding="utf-8")
        with pytest.raises(FaultRateError) as exc:
            load_rates(profile)
        assert str(exc.value).startswith(f"{profile}: ") and message in str(exc.value), exc.value
    profile.write_text('scale = 0.5\n[rates]\n"meter.gap" = 0.01\n', encoding="utf-8")
    rates = load_rates(profile)
    assert rates[FaultKind.METER_GAP] == 0.01 and rates[FaultKind.DUPLICATE] == 0.005


def test_cli_refuses_bad_times_and_rates_with_one_line_and_exit_code_2(tmp_path: Path) -> None:
    profile = tmp_path / "faults.toml"
    profile.write_text("[rate]\n", encoding="utf-8")
    base = ["simulate", "--dry-run", "-n", "2"]
    for args, message in (
        (
            ["--start", "2026-06-01", "--end", "2026-05-01"],
            "--end 2026-05-01T00:00:00+08:00 must be after --start",
        ),
        (["--start", "2099-01-01"], "--end NOW ("),  # a backfill ends now: a future start has nothing to send
        (["--start", "2021-06-01"], "--start 2021-06-01T00:00:00+08:00 is before the simulation's epoch"),
        (["--start", "yesterday"], "not a date or time: 'yesterday'"),
        (["--fault", "meter.gap=abc"], "--fault meter.gap=abc: 'abc' is not a number"),
        (["--fault", "nope=0.1"], "unknown fault kind 'nope'"),
        (["--fault-profile", str(profile)], "unknown key(s) rate; a profile has scale and [rates]"),
    ):
        result = CliRunner().invoke(app, [*base, *args], env={"PARKENERGY_HOME": str(tmp_path / "home")})
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("error: ") and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
