"""A throwaway ClickHouse server for local runs and integration tests: Debian's ``clickhouse-server`` package.

The server runs as a child process with a configuration written under ``home`` and listens on 127.0.0.1 only,
native protocol on a free port (no HTTP port: nothing here uses it). Nothing happens at import time.

Layout under ``home`` (e.g. ``.loanwatch/clickhouse-server``)::

    config.xml, users.xml   written on every start
    users.d/                the ``users_d`` folder's ``*.xml`` files, copied on every start (more users)
    data/                   databases and tables (kept across restarts unless ``fresh``)
    tmp/, user_files/, format_schemas/
    log/                    clickhouse-server.log, clickhouse-server.err.log, stdout.log (the process output)
    server.pid              pid of the running server (written by this module)

Root: Debian's 18.16 runs as root without any flag (only its init script switches to the ``clickhouse`` user).
Modern servers refuse to start only when the data folder belongs to another user, which cannot happen here
because the folder is created by the user that starts the server.

The executable is ``$LOANWATCH_CLICKHOUSE_SERVER`` if set, else ``clickhouse-server`` from PATH or the system
``sbin`` folders (where Debian puts it, outside a normal user's PATH), else ``clickhouse server``.

Command line::

    python -m streams.local.clickhouse_server start --home DIR [--port N] [--fresh] [--timeout S]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Final, Self
from xml.sax.saxutils import escape

__all__ = ["ClickHouseServerError", "LocalClickHouseServer", "find_server_command", "main"]

_HOST: Final = "127.0.0.1"
_SBIN_DIRS: Final = ("/usr/local/sbin", "/usr/sbin", "/sbin")
_LOG_TAIL_LINES: Final = 60
_PORT_ATTEMPTS: Final = 3
_PR_SET_PDEATHSIG: Final = 1


class ClickHouseServerError(RuntimeError):
    """The local server could not be found, started or stopped; carries the tail of its logs."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.log_tail = log_tail
        if log_tail:
            message = f"{message}\n--- clickhouse-server log (tail) ---\n{log_tail}\n--- end of log ---"
        super().__init__(message)


def find_server_command() -> list[str]:
    """Return the argv prefix that runs a ClickHouse server here (search order: see the module docstring)."""
    override = os.environ.get("LOANWATCH_CLICKHOUSE_SERVER")
    if override:
        return [override]
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN_DIRS])
    found = shutil.which("clickhouse-server", path=search)
    if found is not None:
        return [found]
    single = shutil.which("clickhouse", path=search)
    if single is not None:
        return [single, "server"]
    raise ClickHouseServerError(
        "clickhouse-server was not found (install Debian's package: apt-get install clickhouse-server, "
        "or point LOANWATCH_CLICKHOUSE_SERVER at a server binary)"
    )


def _free_port(exclude: frozenset[int] = frozenset()) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((_HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in exclude:
            return port
    raise ClickHouseServerError("could not find a free TCP port on 127.0.0.1")


def _port_is_free(port: int) -> bool:
    """Tell whether the server could bind ``127.0.0.1:port``.

    With SO_REUSEADDR, as the server binds: connections of a server just stopped linger in TIME_WAIT for a
    minute, and without it a restart on the same port would be refused although the server could bind.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
    return True


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def _parent_death_signal() -> Callable[[], None] | None:
    """Make a pre-exec hook that has the child get SIGTERM when its parent dies (Linux); None elsewhere.

    The C function is looked up here, in the parent: between fork and exec the child only calls it.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


class LocalClickHouseServer:
    """A ClickHouse server on 127.0.0.1 with its state under ``home``; ``with`` starts and stops it.

    ``port=None`` picks a free port at each start. ``url`` is what
    :func:`streams.clickhouse.backend.open_backend` takes. The server gets SIGTERM if the process that started
    it dies (Linux), so it never outlives a test run. ``users_d`` is a folder of users.d XML files (such as
    ``deploy/clickhouse/users.d``) that the server merges into its users, beside the password-less ``default``.
    """

    def __init__(
        self,
        home: Path,
        port: int | None = None,
        *,
        progress: Callable[[str], None] | None = None,
        command: Sequence[str] | None = None,
        users_d: Path | None = None,
    ) -> None:
        self.home = Path(home).absolute()
        self._users_d = users_d
        self.data_dir = self.home / "data"
        self.log_dir = self.home / "log"
        self.config_path = self.home / "config.xml"
        self.users_path = self.home / "users.xml"
        self.pid_path = self.home / "server.pid"
        self.stdout_path = self.log_dir / "stdout.log"
        self._requested_port = port
        self._port: int | None = port
        self._command = list(command) if command is not None else None
        self._progress = progress
        self._proc: subprocess.Popen[bytes] | None = None
        # Shown by the server in its handshake: tells our server from anything else answering on the port.
        self._display_name = f"loanwatch-{uuid.uuid4().hex[:12]}"

    # -- public API -----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The native-protocol port (known once started, or when given)."""
        if self._port is None:
            raise ClickHouseServerError("the server has no port yet: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """``clickhouse://default:@127.0.0.1:PORT/default``."""
        return f"clickhouse://default:@{_HOST}:{self.port}/default"

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        return None

    def start(self, timeout: float = 60.0, *, fresh: bool = False) -> str:
        """Start the server, wait until ``SELECT 1`` answers, and return :attr:`url`.

        ``fresh`` wipes the data first. Raise :class:`ClickHouseServerError` with the log tail when the server
        exits or does not answer within ``timeout`` seconds.
        """
        if self.pid is not None:
            return self.url
        command = self._command or find_server_command()
        deadline = time.monotonic() + timeout
        self._stop_stale()
        if fresh and self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        if self._requested_port is not None and not _port_is_free(self._requested_port):
            raise ClickHouseServerError(f"port {_HOST}:{self._requested_port} is already in use")
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self._port = self._requested_port or _free_port()
            self._write_configs(self._port)
            self._launch(command)
            try:
                self._wait_ready(deadline)
            except ClickHouseServerError:
                port_taken = "Address already in use" in self.log_tail()
                self._kill_own(grace=5.0)
                # Another process may have taken the free port between our probe and the server's bind.
                if port_taken and self._requested_port is None and attempt < _PORT_ATTEMPTS:
                    continue
                raise
            self._say(f"ClickHouse server up on {_HOST}:{self._port} (pid {self.pid}, home {self.home})")
            return self.url
        raise ClickHouseServerError("unreachable")  # pragma: no cover - the loop returns or raises

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the server, wait up to ``timeout`` s for a clean shutdown, then SIGKILL it."""
        self._kill_own(grace=timeout)

    def wait(self) -> int | None:
        """Block until the server exits; return its exit code (None if it was not started)."""
        if self._proc is None:
            return None
        return self._proc.wait()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Return the last lines of the server's output and logs, for error messages."""
        parts: list[str] = []
        for path in (self.stdout_path, self.log_dir / "clickhouse-server.err.log",
                     self.log_dir / "clickhouse-server.log"):
            if path.exists():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                if text:
                    parts.append(f"== {path.name} ==\n" + "\n".join(text))
        return "\n".join(parts)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------------------

    def _write_configs(self, port: int) -> None:
        for folder in (self.data_dir, self.log_dir, self.home / "tmp", self.home / "user_files",
                       self.home / "format_schemas"):
            folder.mkdir(parents=True, exist_ok=True)
        config = _config_xml(self.home, self.users_path, port, self._display_name)
        self.config_path.write_text(config, encoding="utf-8")
        self.users_path.write_text(_USERS_XML, encoding="utf-8")
        # The server merges users.d/*.xml next to users.xml; a fresh copy each start drops files removed since.
        merged = self.home / "users.d"
        shutil.rmtree(merged, ignore_errors=True)
        if self._users_d is not None:
            merged.mkdir()
            for source in sorted(Path(self._users_d).glob("*.xml")):
                shutil.copyfile(source, merged / source.name)

    def _launch(self, command: Sequence[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # The pid file is ours, not the server's: its option is spelt differently across server versions.
        argv = [*command, f"--config-file={self.config_path}"]
        self._say(f"starting {' '.join(argv)}")
        with self.stdout_path.open("ab") as out:
            try:
                self._proc = subprocess.Popen(  # noqa: S603 - argv built from the found server and our config
                    argv,
                    cwd=self.home,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    # A killed test run must not leave a server behind.
                    preexec_fn=_parent_death_signal(),
                )
            except OSError as exc:
                raise ClickHouseServerError(f"cannot run {argv[0]}: {exc}") from exc
        self.pid_path.write_text(f"{self._proc.pid}\n", encoding="ascii")

    def _wait_ready(self, deadline: float) -> None:
        from clickhouse_driver import Client, errors

        assert self._proc is not None  # noqa: S101 - internal invariant
        # The driver logs every refused attempt with a traceback; while the server boots that is expected.
        quiet = logging.getLogger("clickhouse_driver.connection")
        previous_level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        last_error = "the port is not open yet"
        try:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise ClickHouseServerError(
                        f"clickhouse-server exited with code {code} while starting (home {self.home})",
                        log_tail=self.log_tail(),
                    )
                if time.monotonic() >= deadline:
                    raise ClickHouseServerError(
                        f"clickhouse-server did not answer on {_HOST}:{self.port} in time ({last_error})",
                        log_tail=self.log_tail(),
                    )
                if _port_accepts(self.port):
                    client = Client(host=_HOST, port=self.port, connect_timeout=2, send_receive_timeout=5)
                    try:
                        answered = client.execute("SELECT 1") == [(1,)]
                        name = client.connection.server_info.display_name
                        if answered and name == self._display_name:
                            return
                        last_error = f"another server ({name!r}) answers on the port"
                    except (errors.Error, OSError, EOFError) as exc:
                        last_error = f"SELECT 1 failed: {exc}"
                    finally:
                        client.disconnect()
                time.sleep(0.2)
        finally:
            quiet.setLevel(previous_level)

    def _kill_own(self, grace: float) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._say(f"clickhouse-server (pid {proc.pid}) ignored SIGTERM for {grace:.0f}s: killing it")
                proc.kill()
                proc.wait(timeout=30)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()

    def _stop_stale(self) -> None:
        """Stop a server left running on this home by an earlier run (its pid file names it)."""
        try:
            pid = int(self.pid_path.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return
        if self._is_our_server(pid):
            self._say(f"stopping a ClickHouse server left running from an earlier run (pid {pid})")
            for sig, wait_s in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                end = time.monotonic() + wait_s
                while time.monotonic() < end and self._is_our_server(pid):
                    time.sleep(0.1)
                if not self._is_our_server(pid):
                    break
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()

    def _is_our_server(self, pid: int) -> bool:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[-1]
        except OSError:
            return False
        alive = state.split()[:1] not in (["Z"], ["X"])
        return alive and f"--config-file={self.config_path}".encode() in argv

    def _say(self, message: str) -> None:
        if self._progress is not None:
            self._progress(message)


def _config_xml(home: Path, users: Path, port: int, display_name: str) -> str:
    def folder(name: str) -> str:
        return escape(str(home / name)) + "/"

    return f"""<?xml version="1.0"?>
<!-- Written by streams/local/clickhouse_server.py on every start; edits are overwritten. -->
<yandex>
    <logger>
        <level>information</level>
        <log>{folder("log")}clickhouse-server.log</log>
        <errorlog>{folder("log")}clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <display_name>{escape(display_name)}</display_name>
    <listen_host>{_HOST}</listen_host>
    <tcp_port>{port}</tcp_port>
    <path>{folder("data")}</path>
    <tmp_path>{folder("tmp")}</tmp_path>
    <user_files_path>{folder("user_files")}</user_files_path>
    <format_schema_path>{folder("format_schemas")}</format_schema_path>
    <users_config>{escape(str(users))}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <!-- A test server on a small machine: caches far below the multi-GiB defaults. -->
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>50</max_concurrent_queries>
</yandex>
"""


_USERS_XML: Final = """<?xml version="1.0"?>
<!-- Written by streams/local/clickhouse_server.py on every start; edits are overwritten. -->
<yandex>
    <profiles>
        <default></default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default></default>
    </quotas>
</yandex>
"""


# -- command line -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _sigterm_as_keyboard_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """``start``: run the server in the foreground until Ctrl-C or SIGTERM; print its URL on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m streams.local.clickhouse_server",
        description="A local ClickHouse server (Debian's clickhouse-server) on 127.0.0.1 for tests.",
    )
    parser.add_argument("command", choices=["start"])
    parser.add_argument("--home", type=Path, required=True, help="state folder, e.g. .loanwatch/clickhouse")
    parser.add_argument("--port", type=int, default=None, help="native-protocol port (default: a free one)")
    parser.add_argument("--fresh", action="store_true", help="wipe the data folder first")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server")
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        print(f"[clickhouse] {message}", file=sys.stderr, flush=True)

    server = LocalClickHouseServer(args.home, port=args.port, progress=progress)
    with _sigterm_as_keyboard_interrupt():
        try:
            print(server.start(timeout=args.timeout, fresh=args.fresh), flush=True)
            code = server.wait()
            progress(f"clickhouse-server exited with code {code}\n{server.log_tail()}")
            return 1
        except ClickHouseServerError as exc:
            progress(str(exc))
            return 1
        except KeyboardInterrupt:
            progress("stopping")
            return 0
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
