"""A real single-node Apache Kafka broker (KRaft mode) for local runs and integration tests.

The broker runs from the official jars, fetched once from Maven Central with ``mvn`` through
``kafka-pom.xml`` next to this file, and started as ``java -cp "<jars>/*" kafka.Kafka``.
Nothing happens at import time.

Layout under ``home`` (e.g. ``.loanwatch/kafka``)::

    jars/<KAFKA_VERSION>/   the broker's jars (override with ``jars_dir``)
    data/                   KRaft metadata log and topic data (kept across restarts)
    server.properties       written on every start
    log4j2.properties       written on every start
    broker.log              the broker's stdout/stderr (previous run's in broker.log.1)
    broker.pid              pid of the running broker

Command line::

    python -m streams.local.kafka_broker fetch|start|stop --home DIR [--port N] [--fresh]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

from streams.local.kafka_sasl import LISTENER_NAME, ScramUser, format_arguments, listener_properties, redacted

__all__ = ["KAFKA_VERSION", "KafkaBrokerError", "LocalKafka", "main"]

#: Apache Kafka version whose jars are fetched; must match ``kafka.version`` in kafka-pom.xml.
KAFKA_VERSION: str = "4.3.1"

POM_PATH: Path = Path(__file__).with_name("kafka-pom.xml")

_HOST = "127.0.0.1"
_NODE_ID = 1
_COMPLETE_MARKER = ".complete"
_LOG_TAIL_LINES = 60
_LOG_TAIL_CHARS = 12_000
_MVN_TIMEOUT_S = 900.0


class KafkaBrokerError(RuntimeError):
    """The local broker could not be fetched, started or stopped."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.log_tail = log_tail
        if log_tail:
            message = f"{message}\n--- broker log (tail) ---\n{log_tail}\n--- end of broker log ---"
        super().__init__(message)


def _free_port(exclude: frozenset[int] = frozenset()) -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((_HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in exclude:
            return port
    raise KafkaBrokerError("could not find a free TCP port on 127.0.0.1")


def _port_is_free(port: int) -> bool:
    """Tell whether a listener could bind ``127.0.0.1:port`` (as the JVM does: with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
    return True


def _port_accepts(port: int) -> bool:
    """Tell whether something accepts TCP connections on ``127.0.0.1:port``."""
    try:
        with socket.create_connection((_HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    """Tell whether a process with this pid exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    # Field 3 (after "pid (comm)") is the state; Z = zombie, X = dead.
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state not in (["Z"], ["X"])


def _cmdline(pid: int) -> list[str] | None:
    """Return the command line of ``pid``, or None where /proc cannot tell."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _new_cluster_id() -> str:
    """Return a random KRaft cluster id, the way ``kafka-storage random-uuid`` makes one."""
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode("ascii")
        if not cluster_id.startswith("-"):
            return cluster_id


def _find_executable(name: str, env_home: str | None = None) -> str:
    """Return the absolute path of ``name`` (from ``$env_home/bin`` first, then PATH)."""
    if env_home:
        candidate = Path(os.environ.get(env_home, "")) / "bin" / name
        if os.environ.get(env_home) and candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise KafkaBrokerError(f"`{name}` was not found on PATH; it is needed to run the local Kafka broker")
    return found


class LocalKafka:
    """A single-node Kafka broker+controller (KRaft) on 127.0.0.1, run from Maven Central jars.

    ``home`` holds the broker's state (data, config, log, pid file) and, unless ``jars_dir`` is
    given, the jar cache at ``home/"jars"/KAFKA_VERSION``. ``port=None`` picks a free port on the
    first start and keeps it for later starts (even from another process) while it stays free.
    Topic data survives :meth:`stop` / :meth:`start` (and a crash); ``start(fresh=True)`` wipes it.

    Use as a context manager (``with LocalKafka(home) as kafka:``) to start and stop it.

    ``scram_users`` adds a SASL_PLAINTEXT listener (SCRAM-SHA-512 and -256, at :attr:`sasl_bootstrap`) with these
    users, created when the storage is formatted: on the first start of ``home`` or with ``fresh=True``.
    """

    def __init__(
        self,
        home: Path,
        port: int | None = None,
        progress: Callable[[str], None] | None = None,
        *,
        jars_dir: Path | None = None,
        heap: str = "1g",
        scram_users: Sequence[ScramUser] = (),
    ) -> None:
        self.home = Path(home).absolute()
        default_jars = self.home / "jars" / KAFKA_VERSION
        self.jars_dir = Path(jars_dir).absolute() if jars_dir is not None else default_jars
        self.data_dir = self.home / "data"
        self.config_path = self.home / "server.properties"
        self.log4j_path = self.home / "log4j2.properties"
        self.log_path = self.home / "broker.log"
        self.pid_path = self.home / "broker.pid"
        self.heap = heap
        self._requested_port = port
        self._port: int | None = port
        self._progress = progress
        self._proc: subprocess.Popen[bytes] | None = None
        self.scram_users = tuple(scram_users)
        self._sasl_port: int | None = None

    # -- public API -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The broker's PLAINTEXT port (raises before the first start when it was not given)."""
        if self._port is None:
            raise KafkaBrokerError("the broker has no port yet: call start() first")
        return self._port

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap.servers`` string, e.g. ``"127.0.0.1:9092"``."""
        return f"{_HOST}:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The SASL/SCRAM listener's ``bootstrap.servers`` (raises without ``scram_users`` or before start)."""
        if self._sasl_port is None:
            raise KafkaBrokerError("the broker has no SASL listener: give scram_users and call start()")
        return f"{_HOST}:{self._sasl_port}"

    @property
    def pid(self) -> int | None:
        """The pid of the broker started by this object (None when not running)."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        return None

    def is_running(self) -> bool:
        """Tell whether the broker process started by this object is still alive."""
        return self.pid is not None

    def wait(self) -> int | None:
        """Block until the broker started by this object exits; return its exit code (None if none)."""
        if self._proc is None:
            return None
        code = self._proc.wait()
        self._proc = None
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()
        return code

    def ensure_jars(self) -> Path:
        """Fetch the broker's jars from Maven Central once, and return the folder that holds them.

        Later calls (and later processes) reuse the cache; concurrent callers wait on a file lock.
        """
        if (self.jars_dir / _COMPLETE_MARKER).is_file():
            return self.jars_dir
        self.jars_dir.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.jars_dir.parent / f".{self.jars_dir.name}.lock"
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if (self.jars_dir / _COMPLETE_MARKER).is_file():
                    return self.jars_dir
                self._fetch_jars()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return self.jars_dir

    def start(self, timeout: float = 90.0, *, fresh: bool = False) -> str:
        """Start the broker, wait until it answers, and return its bootstrap string.

        A broker left running by an earlier (crashed) run on the same ``home`` is stopped first.
        ``fresh=True`` wipes the data folder (topics, offsets) before starting.
        Raise :class:`KafkaBrokerError`, with the tail of the broker log, when it does not come up
        within ``timeout`` seconds.
        """
        if self.is_running():
            return self.bootstrap
        if self._proc is not None:  # ours, but it died (crash, kill -9): reap it
            self._proc.wait()
            self._proc = None
        deadline = time.monotonic() + timeout
        jars = self.ensure_jars()
        java = _find_executable("java", "JAVA_HOME")
        self.home.mkdir(parents=True, exist_ok=True)
        self._stop_stale()

        port = self._choose_port()
        controller_port = _free_port(exclude=frozenset({port}))
        self._port = port
        if self.scram_users:
            self._sasl_port = _free_port(exclude=frozenset({port, controller_port}))

        if fresh and self.data_dir.exists():
            self._say(f"wiping Kafka data in {self.data_dir}")
            shutil.rmtree(self.data_dir)
        self._write_configs(port, controller_port, self._sasl_port)
        self._rotate_log()
        if not (self.data_dir / "meta.properties").is_file():
            self._format_storage(java, jars, deadline)

        self._say(f"starting Apache Kafka {KAFKA_VERSION} on {_HOST}:{port}")
        cmd = [
            java,
            *self._jvm_options(),
            "-cp",
            str(jars / "*"),
            "kafka.Kafka",
            str(self.config_path),
        ]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv: our java, our jars, our config
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it cleanly
            )
        self.pid_path.write_text(f"{self._proc.pid}\n", encoding="ascii")
        try:
            self._wait_ready(deadline)
        except BaseException:
            self._kill_own(grace=5.0)
            raise
        return self.bootstrap

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL after ``timeout`` seconds. Idempotent.

        Also stops a broker recorded in this home's pid file by another process (e.g. a
        ``start`` running in another terminal).
        """
        if self._proc is not None:
            self._terminate_own(timeout)
        else:
            for pid in self._broker_pids():
                self._terminate_pid(pid, timeout)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of the broker log (empty when there is none)."""
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 256 * 1024))
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return tail[-_LOG_TAIL_CHARS:]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- jars -----------------------------------------------------------------------------------

    def _fetch_jars(self) -> None:
        mvn = _find_executable("mvn", "MAVEN_HOME")
        self._say(f"fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central (once)…")
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.jars_dir.name}.", dir=self.jars_dir.parent))
        try:
            cmd = [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM_PATH),
                "dependency:copy-dependencies",
                f"-Dkafka.version={KAFKA_VERSION}",
                f"-DoutputDirectory={tmp}",
            ]
            try:
                done = subprocess.run(  # noqa: S603 - fixed argv: our mvn, our pom
                    cmd,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=_MVN_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                message = f"mvn did not fetch the Kafka jars within {_MVN_TIMEOUT_S:.0f}s"
                raise KafkaBrokerError(message) from exc
            output = (done.stdout + done.stderr).decode(errors="replace")
            if done.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
                raise KafkaBrokerError(
                    f"mvn could not fetch the Kafka {KAFKA_VERSION} jars (exit {done.returncode}): "
                    f"{' '.join(cmd)}",
                    log_tail="\n".join(output.splitlines()[-_LOG_TAIL_LINES:]),
                )
            (tmp / _COMPLETE_MARKER).write_text(f"{KAFKA_VERSION}\n", encoding="ascii")
            tmp.chmod(0o755)  # mkdtemp made it private; the cache is shared like any jar folder
            if self.jars_dir.exists():  # an incomplete earlier attempt
                shutil.rmtree(self.jars_dir)
            tmp.rename(self.jars_dir)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        count = sum(1 for _ in self.jars_dir.glob("*.jar"))
        self._say(f"fetched {count} jars into {self.jars_dir} in {time.monotonic() - started:.1f}s")

    # -- configuration --------------------------------------------------------------------------

    def _choose_port(self) -> int:
        if self._requested_port is not None:
            if not _port_is_free(self._requested_port):
                raise KafkaBrokerError(f"port {_HOST}:{self._requested_port} is already in use")
            return self._requested_port
        # Keep the same bootstrap across restarts (also from another process) while the port is free.
        previous = self._port if self._port is not None else self._previous_port()
        if previous is not None and _port_is_free(previous):
            return previous
        return _free_port()

    def _previous_port(self) -> int | None:
        """Return the PLAINTEXT port of the last server.properties written in this home, if any."""
        try:
            text = self.config_path.read_text(encoding="utf-8")
        except OSError:
            return None
        prefix = f"advertised.listeners=PLAINTEXT://{_HOST}:"
        for line in text.splitlines():
            port = line[len(prefix) :].split(",")[0]  # PLAINTEXT comes first, a SASL listener after it
            if line.startswith(prefix) and port.isdigit():
                return int(port)
        return None

    def _write_configs(self, port: int, controller_port: int, sasl_port: int | None) -> None:
        listeners = f"PLAINTEXT://{_HOST}:{port}"
        protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        if sasl_port is not None:
            listeners += f",{LISTENER_NAME}://{_HOST}:{sasl_port}"
            protocols += f",{LISTENER_NAME}:{LISTENER_NAME}"
        props = {
            # KRaft combined mode: this one JVM is the whole cluster (broker + controller).
            "process.roles": "broker,controller",
            "node.id": str(_NODE_ID),
            # Static quorum: the voter set lives in this file, not in the metadata log, so the
            # controller port may change from one start to the next while the data is kept.
            "controller.quorum.voters": f"{_NODE_ID}@{_HOST}:{controller_port}",
            "controller.listener.names": "CONTROLLER",
            "listeners": f"{listeners},CONTROLLER://{_HOST}:{controller_port}",
            "advertised.listeners": listeners,
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": protocols,
            "log.dirs": str(self.data_dir),
            # Small box (2 cores): few threads.
            "num.network.threads": "2",
            "num.io.threads": "4",
            "background.threads": "4",
            "num.recovery.threads.per.data.dir": "2",
            # Single node: every internal topic has one replica.
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Consumers (Faust workers, tests) join groups without the 3 s default wait.
            "group.initial.rebalance.delay.ms": "0",
            # Topics are created explicitly, with their partitions and configs, by `loanwatch init`;
            # auto-creation would hide a missing or misspelt topic behind a 1-partition default one.
            "auto.create.topics.enable": "false",
            "delete.topic.enable": "true",
            # Local data: keep a day, at most 1 GiB per partition, in 128 MiB segments.
            "log.retention.hours": "24",
            "log.retention.bytes": str(1024**3),
            "log.segment.bytes": str(128 * 1024**2),
            "log.retention.check.interval.ms": "60000",
            # A restart after kill -9 waits for the dead incarnation's session to expire: keep it short.
            "broker.session.timeout.ms": "6000",
            "broker.heartbeat.interval.ms": "1500",
            "controlled.shutdown.enable": "true",
        }
        if sasl_port is not None:
            props.update(listener_properties())
        body = "".join(f"{key}={value}\n" for key, value in props.items())
        header = "# Written by streams/local/kafka_broker.py on every start; edits are overwritten.\n"
        self.config_path.write_text(header + body, encoding="utf-8")
        self.log4j_path.write_text(_LOG4J2_PROPERTIES, encoding="utf-8")

    def _jvm_options(self) -> list[str]:
        return [
            f"-Xms{min(256, _heap_mib(self.heap))}m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:-UsePerfData",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_path}",
            f"-Dkafka.logs.dir={self.home}",
        ]

    def _format_storage(self, java: str, jars: Path, deadline: float) -> None:
        """Format ``data/`` for a new single-node KRaft cluster (``kafka-storage.sh format``)."""
        if self.data_dir.exists():  # half-formatted or foreign: start over
            shutil.rmtree(self.data_dir)
        self._say(f"formatting Kafka storage in {self.data_dir}")
        cmd = [
            java,
            "-Xmx256m",
            "-XX:-UsePerfData",
            f"-Dlog4j2.configurationFile={self.log4j_path}",
            "-cp",
            str(jars / "*"),
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            _new_cluster_id(),
            "--config",
            str(self.config_path),
            *format_arguments(self.scram_users),
        ]
        remaining = max(5.0, deadline - time.monotonic())
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv: our java, our jars, our config
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=remaining,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaBrokerError(f"formatting Kafka storage took longer than {remaining:.0f}s") from exc
        # SCRAM passwords are on the storage tool's command line: never let them reach the log or an error.
        output = redacted((done.stdout + done.stderr).decode(errors="replace"), self.scram_users)
        failed = done.returncode != 0 or not (self.data_dir / "meta.properties").is_file()
        with self.log_path.open("a", encoding="utf-8") as log:
            # The whole output (a dump of every broker setting) only when it failed: keeps log tails short.
            shown = output if failed else "\n".join(output.strip().splitlines()[-1:]) + "\n"
            log.write(f"[kafka_broker.py] {redacted(' '.join(cmd), self.scram_users)}\n{shown}")
        if failed:
            raise KafkaBrokerError(
                f"formatting Kafka storage failed (exit {done.returncode})",
                log_tail="\n".join(output.splitlines()[-_LOG_TAIL_LINES:]),
            )

    # -- process management ---------------------------------------------------------------------

    def _wait_ready(self, deadline: float) -> None:
        """Wait until the broker serves metadata with itself listed, or raise with the log tail."""
        assert self._proc is not None  # noqa: S101 - internal invariant
        port = self.port
        admin = None
        last_error = "the broker did not open its port"
        while True:
            code = self._proc.poll()
            if code is not None:
                raise KafkaBrokerError(
                    f"the Kafka broker exited with code {code} while starting (log: {self.log_path})",
                    log_tail=self.log_tail(),
                )
            if time.monotonic() >= deadline:
                raise KafkaBrokerError(
                    f"the Kafka broker did not answer on {_HOST}:{port} in time ({last_error}); "
                    f"log: {self.log_path}",
                    log_tail=self.log_tail(),
                )
            if admin is None:
                if _port_accepts(port):
                    admin = _admin_client(self.bootstrap)
                else:
                    time.sleep(0.25)
                    continue
            try:
                metadata = admin.list_topics(timeout=2.0)
            except Exception as exc:  # noqa: BLE001 - KafkaException and friends: not ready yet
                last_error = f"metadata request failed: {exc}"
                time.sleep(0.25)
                continue
            if _NODE_ID in metadata.brokers:
                return
            last_error = "the broker is not registered yet"
            time.sleep(0.25)

    def _kill_own(self, grace: float) -> None:
        if self._proc is not None:
            self._terminate_own(grace)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()

    def _terminate_own(self, timeout: float) -> None:
        """Stop the broker this object started (Popen's signals skip an already reaped child)."""
        proc = self._proc
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._say(f"the Kafka broker (pid {proc.pid}) ignored SIGTERM for {timeout:.0f}s: killing it")
            proc.kill()
            try:
                proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired as exc:
                raise KafkaBrokerError(
                    f"the Kafka broker (pid {proc.pid}) did not exit", log_tail=self.log_tail()
                ) from exc
        self._proc = None

    def _terminate_pid(self, pid: int, timeout: float) -> None:
        """SIGTERM a broker we did not start, wait up to ``timeout`` s, then SIGKILL it."""
        for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            if sig == signal.SIGKILL:
                self._say(f"the Kafka broker (pid {pid}) ignored SIGTERM for {timeout:.0f}s: killed it")
            if self._wait_gone(pid, wait_s):
                return
        raise KafkaBrokerError(f"the Kafka broker (pid {pid}) did not exit", log_tail=self.log_tail())

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(0.1)
        return not _pid_alive(pid)

    def _broker_pids(self) -> list[int]:
        """Pids of brokers still running for this home: from the pid file and from /proc."""
        pids: set[int] = set()
        try:
            recorded = int(self.pid_path.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            recorded = None
        trusted = recorded is not None and self._is_our_broker(recorded, trust_unknown=True)
        if recorded is not None and trusted and _pid_alive(recorded):
            pids.add(recorded)
        proc_root = Path("/proc")
        if proc_root.is_dir():
            for entry in proc_root.iterdir():
                if entry.name.isdigit() and int(entry.name) != os.getpid():
                    pid = int(entry.name)
                    if self._is_our_broker(pid, trust_unknown=False) and _pid_alive(pid):
                        pids.add(pid)
        return sorted(pids)

    def _is_our_broker(self, pid: int, *, trust_unknown: bool) -> bool:
        """Tell whether ``pid`` is a ``kafka.Kafka`` JVM started on this home's server.properties."""
        argv = _cmdline(pid)
        if argv is None:
            return trust_unknown  # no /proc (not Linux): believe the pid file
        return "kafka.Kafka" in argv and str(self.config_path) in argv

    def _stop_stale(self) -> None:
        """Stop a broker left running on this home by an earlier run (e.g. one that crashed)."""
        for pid in self._broker_pids():
            self._say(f"stopping a Kafka broker left running from an earlier run (pid {pid})")
            self._terminate_pid(pid, 30.0)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()

    def _rotate_log(self) -> None:
        if self.log_path.exists() and self.log_path.stat().st_size > 0:
            self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))

    def _say(self, message: str) -> None:
        if self._progress is not None:
            self._progress(message)


def _admin_client(bootstrap: str) -> Any:
    """Return a confluent-kafka AdminClient that stays quiet while the broker comes up."""
    from confluent_kafka.admin import AdminClient

    client: Any = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "socket.connection.setup.timeout.ms": 2000,
            "reconnect.backoff.max.ms": 500,
            "log_level": 3,  # errors only: refused connections during start-up are expected
        }
    )
    return client


def _heap_mib(heap: str) -> int:
    """Convert a JVM size such as ``1g`` or ``512m`` to MiB."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    text = heap.strip().lower()
    if text and text[-1] in units:
        return max(1, int(float(text[:-1]) * units[text[-1]]))
    return max(1, int(text) // (1024 * 1024))


_LOG4J2_PROPERTIES = """\
# Written by streams/local/kafka_broker.py: everything to stdout, which goes to broker.log.
status = warn
# Keep logging through the JVM shutdown, so that broker.log shows the whole controlled shutdown.
shutdownHook = disable
name = loanwatch-local-kafka
appender.console.type = Console
appender.console.name = STDOUT
appender.console.target = SYSTEM_OUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.network.name = kafka.network.RequestChannel$
logger.network.level = WARN
"""


# -- command line ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _stop_signals_as_keyboard_interrupt() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt, so that the broker is stopped.

    SIGINT too: a shell's background job (``kafka.sh start &``) inherits SIGINT as ignored.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fetch``, ``start`` (in the foreground until Ctrl-C) or ``stop``; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m streams.local.kafka_broker",
        description=f"A local single-node Apache Kafka {KAFKA_VERSION} broker (KRaft), run from Maven jars.",
    )
    parser.add_argument("command", choices=["fetch", "start", "stop"])
    parser.add_argument("--home", type=Path, required=True, help="state folder, e.g. .loanwatch/kafka")
    parser.add_argument("--port", type=int, default=None, help="PLAINTEXT port (default: a free one)")
    parser.add_argument("--jars-dir", type=Path, default=None, help="jar cache (default: HOME/jars/VERSION)")
    parser.add_argument("--fresh", action="store_true", help="start: wipe topics and offsets first")
    parser.add_argument("--timeout", type=float, default=90.0, help="start: seconds to wait for the broker")
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        print(f"[kafka] {message}", file=sys.stderr, flush=True)

    kafka = LocalKafka(args.home, port=args.port, progress=progress, jars_dir=args.jars_dir)
    try:
        if args.command == "fetch":
            print(kafka.ensure_jars())
            return 0
        if args.command == "stop":
            kafka.stop()
            progress("stopped")
            return 0
        with _stop_signals_as_keyboard_interrupt():
            try:
                started = time.monotonic()
                bootstrap = kafka.start(timeout=args.timeout, fresh=args.fresh)
                progress(f"broker up in {time.monotonic() - started:.1f}s; log: {kafka.log_path}")
                print(bootstrap, flush=True)
                progress("running in the foreground: Ctrl-C stops it")
                code = kafka.wait()
                if code in (0, 143, -signal.SIGTERM):
                    progress("the broker was stopped")
                    return 0
                progress(f"the broker exited with code {code}; log: {kafka.log_path}")
                return 1
            except KeyboardInterrupt:
                progress("stopping…")
                kafka.stop()
                return 0
    except KafkaBrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
