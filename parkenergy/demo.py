"""``parkenergy demo``: a simulated park through the whole service, then a summary.

1. the database (embedded, or ``DATABASE_URL``) migrated; the broker (embedded, or ``MQTT_URL``);
2. a simulated park (:mod:`simulators`) written to ``OUT/sim`` (registry, meter events,
   economics, fault ground truth) and its registry loaded;
3. its history published at QoS 1 and stored by the real collector (on a thread here),
   waited for until every message is committed;
4. economics imported; the ``energy`` and ``forecast`` jobs; the detectors replayed once a
   day over the last :data:`parkenergy.pipeline.DETECTOR_REPLAY_DAYS` days;
5. the monthly report of the last complete month (HTML and PDF) into ``OUT``, Grafana
   provisioning into ``OUT/grafana`` and a compose file that runs Grafana on it;
6. the summary (:mod:`parkenergy.demo_summary`), read back from the ``api`` views;
7. with ``keep_running``: the collector, the analytics service and a live simulator keep
   running until SIGINT or SIGTERM.

Running it again on the same database doubles nothing: the collector stores a reading
or a quarantined message once, the imports leave identical values alone, and the jobs
are idempotent.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final, TextIO
from urllib.parse import urlsplit, urlunsplit

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from analytics.jobs import jobs
from analytics.scheduler import AlreadyRunningError, Service
from collector.health import HealthServer
from dashboards import provisioning
from parkdata.db import connect
from parkdata.i18n import TERMS, Catalogue, Lang
from parkdata.migrate import migrate
from parkdata.registry_file import read_meter_events_file
from parkdata.registry_store import store_meter_events
from parkdata.settings import MqttEndpoint, Settings
from parkenergy import pipeline, services
from parkenergy.cli_simulate import BackfillLabels, collect_with_progress, collector_thread
from parkenergy.clikit import console, err_console, fail, progress_bars
from parkenergy.demo_summary import DemoSummary, EnterpriseLine, load_summary
from reports.monthly import Month, last_complete_month
from simulators import FaultRates, Replacement, RunStats, Simulation, SimulationConfig
from simulators.files import append_meter_events
from simulators.publish import PublishError
from simulators.timebase import CST, EPOCH

__all__ = [
    "DemoOptions",
    "check_window",
    "covers_month",
    "grafana_compose",
    "masked",
    "run_demo",
]

log = logging.getLogger(__name__)

CHANGED_BY: Final = "parkenergy demo"
GRAFANA_IMAGE: Final = "grafana/grafana:11.6.1"
"""The Grafana of docker-compose.yml."""
GRAFANA_COMPOSE: Final = "grafana-compose.yaml"
LOW_COVERAGE_SHOWN: Final = 10
# Contact points are provisioned for every channel (docs/deployment.md); the demo's
# Grafana gets placeholders that deliver nowhere unless the environment sets real ones.
_ALERT_PLACEHOLDERS: Final = {
    "ALERT_EMAIL_ADDRESSES": "demo@example.invalid",
    "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/",
    "ALERT_DINGDING_URL": "http://127.0.0.1:9/",
    "ALERT_WECOM_URL": "http://127.0.0.1:9/",
}

# Every text the demo shows, Chinese first (the default), then English.
_TEXT: Final[dict[str, tuple[str, str]]] = {
    "database": ("数据库", "database"),
    "embedded": ("内置", "embedded"),
    "park": (
        "模拟园区：{enterprises} 家企业，{meters} 块表，种子 {seed}；{start} → {end}",
        "simulated park: {enterprises} enterprises, {meters} meters, seed {seed}; {start} → {end}",
    ),
    "registry": ("登记信息已载入：{summary}", "registry loaded: {summary}"),
    "backfill": ("回填历史数据", "backfill"),
    "committing": ("采集器入库", "collector committing"),
    "days": (
        "天 · {readings:,} 条读数，{messages:,} 条消息",
        "days · {readings:,} readings in {messages:,} messages",
    ),
    "messages": ("条消息", "messages"),
    "analytics": ("分析", "analytics"),
    "economics": ("导入经济数据", "economics import"),
    "outputs": ("月报与 Grafana", "report and Grafana"),
    "report": ("月报 {month}", "report {month}"),
    "html_only": ("只生成 HTML 月报", "the report is written as HTML only"),
    "no_report": ("数据中没有完整月份，未生成月报", "no complete month in the data: no report"),
    "grafana": ("Grafana 配置", "Grafana provisioning"),
    "summary": ("读取汇总", "reading the summary"),
    "title.areas": (
        "单位工业增加值能耗（{variant}，{period} 年初至今，吨标准煤/万元，2022 年价）",
        "Energy intensity ({variant}, year to date {period}, tce per 10⁴ yuan at 2022 prices)",
    ),
    "col.area": ("范围", "area"),
    "col.intensity": ("强度", "intensity"),
    "col.base": ("2022 基数", "2022 base"),
    "col.change": ("较 2022", "vs 2022"),
    "col.path": ("路径值", "path"),
    "col.target": ("2027 目标", "2027 target"),
    "col.status": ("状态", "status"),
    "col.forecast": ("2027 预测", "2027 forecast"),
    "col.coverage": ("完整率", "coverage"),
    "col.enterprise": ("企业", "enterprise"),
    "col.park": ("园区", "park"),
    "col.severity": ("级别", "severity"),
    "col.kind": ("类型", "kind"),
    "col.alerts": ("告警数", "alerts"),
    "col.reason": ("原因", "reason"),
    "col.messages_n": ("消息数", "messages"),
    "title.off_track": ("偏离最多的 {n} 家企业（较 2022 上升最多）", "The {n} enterprises most off track"),
    "title.alerts": (
        "未解决告警（待处理与已确认）：{counts}",
        "Unresolved alerts (open and acknowledged): {counts}",
    ),
    "title.quarantine": ("隔离区消息（按原因）", "Quarantined messages by reason"),
    "coverage": (
        "数据完整率：全市年初至今 {coverage}；{readings:,} 条读数，{meters} 块表，{enterprises} 家企业",
        "Data coverage: city year to date {coverage}; {readings:,} readings, {meters} meters, "
        "{enterprises} enterprises",
    ),
    "low_coverage": ("完整率低于 90% 的企业：{items}", "Enterprises below 90 % coverage: {items}"),
    "none": ("无", "none"),
    "no_figures": ("{period} 没有强度数据", "no intensity figures for {period}"),
    "written": ("输出文件", "Written"),
    "path.sim": ("模拟园区文件", "simulated park files"),
    "path.report": ("月报", "report"),
    "path.grafana": ("Grafana 配置", "Grafana provisioning"),
    "path.compose": ("Grafana compose 文件", "Grafana compose file"),
    "phases": ("耗时：{phases}；共 {total}", "time: {phases}; total {total}"),
    "phase.database": ("数据库", "database"),
    "phase.files": ("园区文件", "park files"),
    "phase.backfill": ("回填", "backfill"),
    "phase.analytics": ("分析", "analytics"),
    "phase.report": ("月报", "report"),
    "phase.grafana": ("Grafana", "Grafana"),
    "phase.summary": ("汇总", "summary"),
    "running": ("运行中（Ctrl-C 或 SIGTERM 停止）：", "Running (Ctrl-C or SIGTERM stops):"),
    "run.health": ("采集器健康检查", "collector health"),
    "run.metrics": ("采集器指标", "collector metrics"),
    "run.live": (
        "实时模拟器：{gateways} 个网关，自 {start} 起，速度 ×{speed:g}",
        "live simulator: {gateways} gateways from {start}, speed ×{speed:g}",
    ),
    "run.analytics": ("分析服务：{jobs}", "analytics service: {jobs}"),
    "run.analytics_elsewhere": (
        "分析服务：该数据库已有一个分析服务在运行，由它保持分析结果最新",
        "analytics service: another one already runs on this database and keeps it current",
    ),
    "run.grafana": (
        "Grafana（需要 Docker）：docker compose -f {compose} up，"
        "然后打开 http://localhost:3000（admin/admin）",
        "Grafana (needs Docker): docker compose -f {compose} up, "
        "then open http://localhost:3000 (admin/admin)",
    ),
    "run.push": (
        "或推送到已有的 Grafana：GRAFANA_URL=… GRAFANA_TOKEN=… GRAFANA_DB_URL={url} "
        "parkenergy dashboards push{flags}",
        "or push to a running Grafana: GRAFANA_URL=… GRAFANA_TOKEN=… GRAFANA_DB_URL={url} "
        "parkenergy dashboards push{flags}",
    ),
    "stopping": (
        "正在停止：实时模拟器、分析服务、采集器……",
        "stopping: live simulator, analytics service, collector …",
    ),
    "stopped": (
        "已停止；实时模拟器发送了 {readings:,} 条读数（{messages:,} 条消息）",
        "stopped; the live simulator sent {readings:,} readings in {messages:,} messages",
    ),
}


_t: Final = Catalogue(_TEXT).text
_term: Final = Catalogue(TERMS).text


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What to run.

    Parameters
    ----------
    start, end : datetime
        Window of the simulated readings ``[start, end)`` (aware).
    out_dir : Path
        Where the report, ``grafana/`` and ``sim/`` are written.
    speed : float
        Live simulator (``keep_running``): simulated seconds per real second [-].
    detector_days : int
        Days over which the detectors are replayed once a day [d].
    """

    start: datetime
    end: datetime
    enterprises: int = 40
    seed: int = 1
    out_dir: Path = Path("parkenergy-demo")
    lang: Lang = Lang.ZH
    keep_running: bool = False
    speed: float = 1.0
    as_json: bool = False
    detector_days: int = pipeline.DETECTOR_REPLAY_DAYS


@dataclass(slots=True)
class _Phases:
    """Wall time of each phase of the run [s]."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - started


@dataclass(frozen=True, slots=True)
class _Written:
    sim: Path
    report: tuple[Path, ...]
    grafana: Path
    compose: Path

    def as_dict(self) -> dict[str, object]:
        return {
            "sim": str(self.sim),
            "report": [str(p) for p in self.report],
            "grafana": str(self.grafana),
            "grafana_compose": str(self.compose),
        }


_CHATTY: Final = ("analytics", "collector", "dashboards", "parkenergy", "simulators")


@contextmanager
def _progress_over_logs() -> Iterator[None]:
    """Raise the packages' loggers to WARNING while the bars show progress (not when debugging)."""
    loggers = [logging.getLogger(name) for name in _CHATTY]
    levels = [lg.level for lg in loggers]
    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def masked(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def run_demo(settings: Settings, options: DemoOptions) -> None:
    """Run the demo (see the module's docstring); failures stop it through :func:`parkenergy.clikit.fail`."""
    lang, out = options.lang, options.out_dir.absolute()
    phases = _Phases()
    started = time.monotonic()
    month = last_complete_month(options.end)
    with ExitStack() as servers:
        with _progress_over_logs():
            with phases("database"):
                db = services.database(settings)
                with connect(db.url, autocommit=True) as conn:
                    timescaledb = migrate(conn).timescaledb
            kind = f"{_t('embedded', lang)} " if db.embedded else ""
            err_console.print(f"{_t('database', lang)}: {kind}{masked(db.url)}", markup=False)
            with phases("files"):
                sim = _park(db.url, settings, options)
            endpoint = servers.enter_context(services.broker(settings))
            running = servers.enter_context(collector_thread(settings, db.url, endpoint))
            with phases("backfill"), (out / "sim" / "faults.jsonl").open("w", encoding="utf-8") as truth:
                labels = BackfillLabels(
                    *(_t(k, lang) for k in ("backfill", "committing", "days", "messages"))
                )
                stats = collect_with_progress(
                    sim, running, endpoint, truth=truth, max_inflight=1000, labels=labels
                )
            with phases("analytics"):
                _analytics(db.url, out / "sim" / "economics", options)
            with phases("report"):
                report = _report(db.url, month, options) if covers_month(options.start, month) else []
            if not report:
                err_console.print(_t("no_report", lang))
            with phases("grafana"):
                provisioning.write(
                    out / "grafana", provisioning.BuildOptions(lang=lang, timescaledb=timescaledb)
                )
                compose = _write_grafana_compose(out / GRAFANA_COMPOSE, db.url, lang)
            with phases("summary"), connect(db.url, autocommit=True) as conn:
                result = load_summary(conn, month.label)
        written = _Written(out / "sim", tuple(report), out / "grafana", compose)
        total = time.monotonic() - started
        if options.as_json:
            _print_json(
                result,
                written=written,
                stats=stats,
                options=options,
                url=db.url,
                timescaledb=timescaledb,
                phases=phases.seconds,
                total=total,
            )
        else:
            _print_summary(console, s=result, written=written, lang=lang, phases=phases.seconds, total=total)
        if options.keep_running:
            _keep_running(
                settings,
                url=db.url,
                endpoint=endpoint,
                running=running,
                sim=sim,
                options=options,
                timescaledb=timescaledb,
            )


def _park(url: str, settings: Settings, options: DemoOptions) -> Simulation:
    """The simulated park: its files into ``OUT/sim``, its registry and meter events loaded."""
    config = SimulationConfig(
        enterprises=options.enterprises,
        seed=options.seed,
        start=options.start,
        end=options.end,
        rates=FaultRates(),
        prefix=settings.mqtt_topic_prefix,
    )
    sim = Simulation(config)
    sim_dir = options.out_dir.absolute() / "sim"
    registry, events = sim.write_registry(sim_dir)
    sim.write_economics(sim_dir / "economics")
    summary, _ = pipeline.load_registry(url, registry, events)
    park = _t(
        "park",
        options.lang,
        enterprises=len(sim.park.enterprises),
        meters=len(sim.park.meters),
        seed=options.seed,
        start=options.start.isoformat(),
        end=options.end.isoformat(),
    )
    err_console.print(park, markup=False)
    err_console.print(_t("registry", options.lang, summary=summary), markup=False)
    return sim


def covers_month(start: datetime, month: Month) -> bool:
    """Whether readings from ``start`` cover the whole of ``month`` (from its local midnight)."""
    return start <= month.start_at


def _analytics(url: str, economics: Path, options: DemoOptions) -> None:
    """Economics import, ``energy``, ``forecast`` and the detector replay under one bar."""
    lang = options.lang
    steps = pipeline.analytics_steps(options.end, options.detector_days)
    with progress_bars() as bar:
        task = bar.add_task(_t("analytics", lang), total=len(steps) + 1, detail=_t("economics", lang))
        pipeline.import_economics(url, economics, CHANGED_BY)

        def step(done: int, current: pipeline.JobStep) -> None:
            local = current.now.astimezone(CST)
            bar.update(task, completed=done + 1, detail=f"{current.job} · {local:%Y-%m-%d %H:%M}")

        def inner(done: int, total: int) -> None:
            bar.update(task, detail=f"energy · {done:,}/{total:,}")

        try:
            pipeline.run_steps(url, steps, progress=step, job_progress=inner)
        except pipeline.PipelineError as exc:
            raise fail(str(exc)) from exc
        bar.update(task, completed=len(steps) + 1, detail="")


def _report(url: str, month: Month, options: DemoOptions) -> list[Path]:
    """The monthly report of ``month`` into the output directory: HTML and PDF, HTML only when
    the PDF engine cannot be loaded, nothing when the month has no figures."""
    from reports.errors import NoDataError, PdfEngineError  # noqa: PLC0415 - with the report
    from reports.render import write_monthly_report  # noqa: PLC0415 - loads matplotlib and WeasyPrint

    with progress_bars() as bar, connect(url, autocommit=True) as conn:
        task = bar.add_task(_t("report", options.lang, month=month.label), total=1, detail="")

        def write(formats: tuple[str, ...]) -> list[Path]:
            return write_monthly_report(
                conn,
                month=month.label,
                park_code=None,
                lang=options.lang.value,
                formats=formats,
                out_dir=options.out_dir.absolute(),
                variant=None,
                progress=lambda step: bar.update(task, detail=step),
            )

        try:
            try:
                paths = write(("html", "pdf"))
            except PdfEngineError as exc:
                err_console.print(f"{exc}: {_t('html_only', options.lang)}", markup=False)
                paths = write(("html",))
        except NoDataError as exc:
            err_console.print(str(exc), markup=False)
            return []
        bar.update(task, completed=1)
    return paths


def grafana_compose(database_url: str, lang: Lang) -> dict[str, Any]:
    """A compose file that runs Grafana on the demo's provisioning (``./grafana``) and database.

    Host networking, so that a database on the loopback interface (the embedded one) is
    reachable; the password, when the database has one, comes from ``GRAFANA_DB_PASSWORD``.
    """
    parts = urlsplit(database_url)
    host = f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
    environment = {
        "GF_SECURITY_ADMIN_USER": "admin",
        "GF_SECURITY_ADMIN_PASSWORD": "${GRAFANA_ADMIN_PASSWORD:-admin}",
        "GF_USERS_DEFAULT_LANGUAGE": "zh-Hans" if lang is Lang.ZH else "en-US",
        "GF_DATE_FORMATS_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "GRAFANA_DB_HOST": host,
        "GRAFANA_DB_NAME": parts.path.lstrip("/") or "postgres",
        "GRAFANA_DB_USER": parts.username or "postgres",
        "GRAFANA_DB_PASSWORD": "${GRAFANA_DB_PASSWORD:-}",
        "GRAFANA_DB_SSLMODE": "disable",
        **{name: f"${{{name}:-{value}}}" for name, value in _ALERT_PLACEHOLDERS.items()},
    }
    return {
        "name": "parkenergy-demo-grafana",
        "services": {
            "grafana": {
                "image": GRAFANA_IMAGE,
                "network_mode": "host",
                "environment": environment,
                "volumes": ["./grafana:/etc/grafana/provisioning:ro"],
            }
        },
    }


def _write_grafana_compose(path: Path, database_url: str, lang: Lang) -> Path:
    header = "# Grafana on the parkenergy demo's database: docker compose -f grafana-compose.yaml up\n"
    body = yaml.safe_dump(grafana_compose(database_url, lang), sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + body, encoding="utf-8")
    return path


# -- output ----------------------------------------------------------------------


def _ratio(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.1f}%"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _value(kind: str, value: str | None, lang: Lang) -> str:
    return "—" if value is None else _term(f"{kind}.{value}", lang)


def _enterprise_label(e: EnterpriseLine) -> str:
    return f"{e.enterprise_name} ({e.enterprise_code})"


def _table(lang: Lang, columns: tuple[str, ...], title: str) -> Table:
    """A table whose cells wrap in a narrow terminal instead of being cut off."""
    table = Table(title=title)
    for c in columns:
        table.add_column(_t(f"col.{c}", lang), overflow="fold")
    return table


def _areas_table(s: DemoSummary, lang: Lang) -> Table:
    """The city and the parks against 2022 and the path; the forecast column only when there is one."""
    forecast = any(a.forecast_2027_tce_per_10k_yuan is not None for a in s.areas)
    columns = ("area", "intensity", "base", "change", "path", "target", "status")
    variant = _term(f"variant.{s.variant}", lang)
    table = _table(
        lang,
        (*columns, "forecast", "coverage") if forecast else (*columns, "coverage"),
        _t("title.areas", lang, variant=variant, period=s.period),
    )
    for a in s.areas:
        name = _term("level.city", lang) if a.level == "city" else a.park_name or str(a.park_code)
        cells = [
            escape(name),
            _ratio(a.intensity_tce_per_10k_yuan),
            _ratio(a.base_2022_tce_per_10k_yuan),
            _percent(a.change_vs_2022),
            _ratio(a.path_tce_per_10k_yuan),
            _ratio(a.target_2027_tce_per_10k_yuan),
            _value("status", a.status, lang),
        ]
        if forecast:
            cells.append(
                f"{_ratio(a.forecast_2027_tce_per_10k_yuan)} {_value('status', a.forecast_status, lang)}"
            )
        table.add_row(*cells, _share(a.coverage))
    return table


def _off_track_table(s: DemoSummary, lang: Lang) -> Table:
    columns = ("enterprise", "park", "intensity", "base", "change", "status")
    table = _table(lang, columns, _t("title.off_track", lang, n=len(s.off_track)))
    for e in s.off_track:
        table.add_row(
            escape(_enterprise_label(e)),
            e.park_code,
            _ratio(e.intensity_tce_per_10k_yuan),
            _ratio(e.base_2022_tce_per_10k_yuan),
            _percent(e.change_vs_2022),
            _value("status", e.status, lang),
        )
    return table


def _print_summary(
    out: Console, *, s: DemoSummary, written: _Written, lang: Lang, phases: dict[str, float], total: float
) -> None:
    if s.areas:
        out.print(_areas_table(s, lang))
    else:
        out.print(_t("no_figures", lang, period=s.period))
    if s.off_track:
        out.print(_off_track_table(s, lang))
    counts = ", ".join(f"{_value('severity', k, lang)} {n}" for k, n in s.alerts_by_severity.items())
    out.print(f"\n[bold]{_t('title.alerts', lang, counts=counts)}[/bold]")
    if s.alerts:
        alerts = _table(lang, ("severity", "kind", "alerts"), "")
        for count in s.alerts:
            alerts.add_row(_value("severity", count.severity, lang), count.kind, str(count.alerts))
        out.print(alerts)
    city = s.city
    coverage = _share(city.coverage if city else None)
    out.print(
        _t(
            "coverage",
            lang,
            coverage=coverage,
            readings=s.readings,
            meters=s.meters,
            enterprises=s.enterprises,
        )
    )
    low = [f"{_enterprise_label(e)} {_share(e.coverage)}" for e in s.low_coverage[:LOW_COVERAGE_SHOWN]]
    if len(s.low_coverage) > LOW_COVERAGE_SHOWN:
        low.append(f"… (+{len(s.low_coverage) - LOW_COVERAGE_SHOWN})")
    out.print(_t("low_coverage", lang, items=", ".join(low) or _t("none", lang)), markup=False)
    quarantine = _table(lang, ("reason", "messages_n"), _t("title.quarantine", lang))
    for q in s.quarantine:
        quarantine.add_row(q.reason, f"{q.messages:,}")
    out.print(quarantine)
    out.print(f"\n[bold]{_t('written', lang)}[/bold]")
    rows = [("path.sim", written.sim), *(("path.report", p) for p in written.report)]
    rows += [("path.grafana", written.grafana), ("path.compose", written.compose)]
    for key, path in rows:
        out.print(f"  {_t(key, lang)}: {escape(str(path))}")
    shown = ", ".join(f"{_t(f'phase.{name}', lang)} {seconds:.0f} s" for name, seconds in phases.items())
    out.print(_t("phases", lang, phases=shown, total=f"{total:.0f} s"))


def _print_json(
    s: DemoSummary,
    *,
    written: _Written,
    stats: RunStats,
    options: DemoOptions,
    url: str,
    timescaledb: bool,
    phases: dict[str, float],
    total: float,
) -> None:
    document = {
        **s.as_dict(),
        "paths": written.as_dict(),
        "run": {
            "enterprises": options.enterprises,
            "seed": options.seed,
            "start": options.start.isoformat(),
            "end": options.end.isoformat(),
            "database_url": masked(url),
            "timescaledb": timescaledb,
            "ingest": stats.as_dict(),
            "phases_s": {k: round(v, 3) for k, v in phases.items()},
            "total_s": round(total, 3),
        },
    }
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


# -- keep running ----------------------------------------------------------------


@dataclass(slots=True)
class _Live:
    """The live simulator on a thread; its result or error when it ends."""

    thread: threading.Thread
    stats: RunStats | None = None
    error: BaseException | None = None
    gateways: int = 0


def _start_live(
    *,
    url: str,
    endpoint: MqttEndpoint,
    sim: Simulation,
    options: DemoOptions,
    stop: threading.Event,
    truth: TextIO,
) -> _Live:
    events = options.out_dir.absolute() / "sim" / "meter_events.csv"
    live_sim = Simulation(replace(sim.config, start=options.end, end=None), park=sim.park)
    connected = threading.Event()

    def replaced(rows: list[Replacement]) -> None:
        # As an operator would: the replacement into the events file, then into the database.
        append_meter_events(events, rows)
        with connect(url) as conn:
            store_meter_events(conn, read_meter_events_file(events))

    def on_connected(gateways: int) -> None:
        live.gateways = gateways
        connected.set()

    def main() -> None:
        try:
            live.stats = pipeline.run_live(
                live_sim,
                endpoint,
                speed=options.speed,
                stop=stop,
                truth=truth,
                on_replacement=replaced,
                connected=on_connected,
            )
        except BaseException as exc:  # reported by the main thread
            live.error = exc
            log.exception("the live simulator stopped with an error")
        finally:
            connected.set()

    live = _Live(threading.Thread(target=main, name="live-simulator", daemon=True))
    live.thread.start()
    connected.wait(60)
    return live


def _start_service(url: str) -> Service | None:
    """The analytics service (as ``analyze serve``), or None when another one runs on the database."""
    service = Service.for_names(url, [])
    try:
        service.start()
    except AlreadyRunningError:
        return None
    return service


def _keep_running(
    settings: Settings,
    *,
    url: str,
    endpoint: MqttEndpoint,
    running: pipeline.CollectorThread,
    sim: Simulation,
    options: DemoOptions,
    timescaledb: bool,
) -> None:
    """Serve until SIGINT or SIGTERM: health and metrics, the analytics service, a live simulator."""
    lang = options.lang
    out = err_console if options.as_json else console
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping the demo", signum)
        stop.set()

    # Whatever has started is stopped in reverse order, on every path (a busy port, a
    # failed start): the live simulator, the analytics service, the health server, and the
    # previous signal handlers are put back.
    with ExitStack() as started:
        previous = signal.signal(signal.SIGINT, _stop), signal.signal(signal.SIGTERM, _stop)
        started.callback(signal.signal, signal.SIGTERM, previous[1])
        started.callback(signal.signal, signal.SIGINT, previous[0])
        health = HealthServer(
            settings.collector_http_host,
            settings.collector_http_port,
            running.collector.metrics.registry,
            running.collector.health,
        )
        try:
            health.start()
        except OSError as exc:
            where = f"{settings.collector_http_host}:{settings.collector_http_port}"
            raise fail(f"cannot serve /healthz on {where}: {exc}") from exc
        started.callback(health.stop)
        service = _start_service(url)
        if service is not None:
            started.callback(service.stop)
            analytics = _t(
                "run.analytics", lang, jobs=", ".join(f"{j.name} {j.interval_s:g} s" for j in jobs())
            )
        else:
            analytics = _t("run.analytics_elsewhere", lang)
        truth_path = options.out_dir.absolute() / "sim" / "faults-live.jsonl"
        truth = started.enter_context(truth_path.open("a", encoding="utf-8"))
        live = _start_live(url=url, endpoint=endpoint, sim=sim, options=options, stop=stop, truth=truth)
        started.callback(live.thread.join, 60)
        started.callback(stop.set)
        base = f"http://{settings.collector_http_host}:{health.port}"
        flags = "" if timescaledb else " --no-timescaledb"
        compose = options.out_dir.absolute() / GRAFANA_COMPOSE
        for line in (
            f"\n[bold]{_t('running', lang)}[/bold]",
            f"  {_t('run.health', lang)}: {base}/healthz",
            f"  {_t('run.metrics', lang)}: {base}/metrics",
            f"  DATABASE_URL={escape(masked(url))}",
            f"  MQTT_URL={escape(endpoint.url)}",
            "  "
            + _t(
                "run.live", lang, gateways=live.gateways, start=options.end.isoformat(), speed=options.speed
            ),
            f"  {analytics}",
            "  " + escape(_t("run.grafana", lang, compose=compose)),
            "  " + escape(_t("run.push", lang, url=masked(url), flags=flags)),
        ):
            out.print(line, soft_wrap=True)
        try:
            while not stop.wait(0.5):
                if not live.thread.is_alive() or not running.alive:
                    break
        finally:
            err_console.print(_t("stopping", lang))
    if live.error is not None:
        message = str(live.error) if isinstance(live.error, PublishError) else repr(live.error)
        raise fail(f"the live simulator stopped: {message}")
    if not running.alive and running.error is not None:
        raise fail(f"the collector stopped: {running.error}")
    sent = live.stats or RunStats()
    err_console.print(_t("stopped", lang, readings=sent.readings, messages=sent.messages))


def check_window(start: datetime, end: datetime, now: datetime) -> str | None:
    """Why ``[start, end)`` cannot be simulated and backfilled at ``now``, or None."""
    if start < EPOCH:
        return f"--start {start.isoformat()} is before the simulation's epoch {EPOCH.isoformat()}"
    if end > now:
        return f"--end {end.isoformat()} is in the future: the demo backfills only the past"
    if end <= start:
        return f"--end {end.isoformat()} must be after --start {start.isoformat()}"
    return None
