"""`vestnik run`: every vestnik process on this machine, started in order, announced only when each
part answers, and stopped in order by Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import ctypes
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

# Only what starting the servers and the emulators needs: every import here (the database layer,
# migrations, an HTTP client: 0.8 of the 1.4 s these imports took on a slow day) would hold them
# back. The domain's code is loaded next, for the API and the engine to be forked from (see
# ``_fork``); the migrations once those two are on their way.
from core.embedded import EmbeddedPostgres, EmbeddedRedis
from core.secrets import emulator_token
from core.settings import Settings
from emulators import MAX_BOT_USERNAME, TELEGRAM_BOT_USERNAME
from vestnik.errors import StartupError

STOP_GRACE_SECONDS = 10
READY_TIMEOUT_SECONDS = 180
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15


def say(line: str) -> None:
    print(line, flush=True)


def check_port_free(host: str, port: int, setting: str = "--port") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise StartupError(
                f"port {port} on {host} is in use; stop what uses it or pick another with {setting}"
            ) from None


def local_address(host: str) -> str:
    """Where this machine reaches a server listening on ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


class Process(Protocol):
    """What is asked of a child process: ``subprocess.Popen``'s, or a ``Forked`` one's."""

    def poll(self) -> int | None: ...
    def send_signal(self, sig: int) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def kill(self) -> None: ...


class Forked:
    """A child forked from this process (see ``_fork``), asked as a ``subprocess.Popen`` is."""

    def __init__(self, pid: int, args: list[str]) -> None:
        self.pid, self.args = pid, args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            time.sleep(0.02)
        return code


@dataclass
class Child:
    name: str
    process: Process
    ready_file: Path | None = None
    check: Callable[[], bool] | None = field(default=None, repr=False)

    def ready(self) -> bool:
        if self.ready_file is not None:
            return self.ready_file.exists()
        return self.check is not None and self.check()


def _own_group_dying_with_parent() -> None:
    # Ctrl-C reaches only `vestnik run`, which then stops the children in order; and a child
    # never outlives a `vestnik run` that was killed outright.
    os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vestnik", *args],
        env=env,
        preexec_fn=_own_group_dying_with_parent,
    )


def _can_fork() -> bool:
    # A fork copies only the thread that calls it: with one thread, nothing is left half done.
    return sys.platform.startswith("linux") and threading.active_count() == 1


def _load_the_domain() -> None:
    """Import what the API and the engine both load (the domain's code, SQLAlchemy, pydantic:
    1.1-1.4 s), once, in this process, for ``_fork`` to hand to both."""
    from core import kinds

    kinds.install()


def _fork(args: list[str], env: dict[str, str]) -> Forked:
    """Run ``vestnik <args>`` in a child forked from this process: it starts from the code this
    process has loaded (``_load_the_domain``) instead of importing it again, beside the other
    child doing the same, on two cores (about 1.5 s of CPU less while everything starts). The child
    never returns into this function's caller: it ends with ``os._exit``, so nothing of this
    process (stopping Postgres, say) runs in it."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return Forked(pid, args)
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _own_group_dying_with_parent()
        if sys.platform.startswith("linux"):  # its name in top and `ps -o comm`: "vestnik api"
            ctypes.CDLL(None).prctl(PR_SET_NAME, f"vestnik {args[0]}".encode()[:15])
        os.environ.clear()
        os.environ.update(env)
        from vestnik.cli import main

        code = main(args)
    except SystemExit as exit_:
        code = 0 if exit_.code is None else exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _answers(url: str) -> Callable[[], bool]:
    """Whether a GET of ``url`` (plain HTTP on this machine) answers 200. With the standard
    library's client: httpx.get makes a TLS context at every call, which took half a second of
    CPU from the children while they started, on a slow day."""
    parts = urlsplit(url)

    def check() -> bool:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=2)
        try:
            connection.request("GET", parts.path)
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    return check


def _all(checks: list[Callable[[], bool]]) -> Callable[[], bool]:
    """A check that holds once every one of ``checks`` holds (each asked until it does)."""
    waiting = list(checks)

    def check() -> bool:
        waiting[:] = [c for c in waiting if not c()]
        return not waiting

    return check


def _signal(children: list[Child], names: tuple[str, ...]) -> list[Child]:
    chosen = [c for c in children if c.name in names and c.process.poll() is None]
    for child in chosen:
        child.process.send_signal(signal.SIGTERM)
    return chosen


def _stop(children: list[Child]) -> None:
    """The bots (with the worker and scheduler) first, as they poll the emulators; then the API;
    the emulators last."""
    for stage in (("worker, scheduler, bot",), ("api",), ("emulators", "emulator", "MAX emulator")):
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in _signal(children, stage):
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"  {child.name} did not stop in {STOP_GRACE_SECONDS}s; killing it")
                child.process.kill()
                child.process.wait()


def _await_ready(children: list[Child]) -> None:
    """Return once every child answers; fail if one exits or the wait runs out."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    next_word = time.monotonic() + 5
    waiting = list(children)
    while True:
        for child in children:
            code = child.process.poll()
            if code is not None:
                raise StartupError(f"vestnik {child.name} exited with code {code} while starting")
        waiting = [c for c in waiting if not c.ready()]  # asked again only until it answers
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise StartupError(
                f"not ready after {READY_TIMEOUT_SECONDS}s: "
                f"{', '.join(c.name for c in waiting)} (see the log above)"
            )
        if time.monotonic() > next_word:
            say(f"  still starting: {', '.join(c.name for c in waiting)} …")
            next_word = time.monotonic() + 5
        time.sleep(0.1)


def _banner(
    settings: Settings,
    pg: str,
    redis: str,
    messenger: str,
    has_workspace: bool,
    seconds: float,
) -> None:
    base = f"http://{local_address(settings.host)}:{settings.port}"
    say("")
    say(f"vestnik is running (ready in {seconds:.1f} s)")
    say(f"  API         {base}/api/v1  (docs {base}/docs, schema {base}/openapi.json)")
    say(f"  health      {base}/healthz  metrics {base}/metrics")
    say("  worker      sending due reminders and confirmation requests")
    say("  scheduler   claiming due jobs")
    bot = "updates through the API webhook" if settings.bot_webhook_url else "polling for updates"
    say(f"  bot         invites, /events, /settings, answers, /who, /remind, code words ({bot})")
    say(f"  messenger   {messenger}")
    dev = " (or /app/dev-login?telegram_user_id=… with VESTNIK_WEBAPP_DEV_LOGIN=true)"
    say(f"  Mini App    {base}/app, opened from the bot's menu button{dev}")
    say(f"  links       {settings.public_url} (feeds, answer links; VESTNIK_BASE_URL)")
    say(f"  Postgres    {pg}")
    say(f"  Redis       {redis}")
    say("")
    if not has_workspace:
        say("Create a workspace and its first API token (from this folder, in another terminal):")
        say('  python -m vestnik workspace create "My team"')
    say("Press Ctrl-C to stop.")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(settings: Settings) -> int:
    """Start embedded services if needed, migrate, start the processes, say so once all of them
    answer, and stop them all on SIGINT or SIGTERM."""
    # Set explicitly: a shell starts a background job with SIGINT ignored, and `docker stop` and
    # service managers send SIGTERM; both must stop vestnik as gracefully as Ctrl-C.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    host, port = settings.host, settings.port
    check_port_free(host, port)
    emulated = settings.telegram_token is None
    if emulated:
        check_port_free(host, settings.emulator_port, "VESTNIK_EMULATOR_PORT")
    max_emulated = settings.max_token is None
    if max_emulated:
        check_port_free(host, settings.max_emulator_port, "VESTNIK_MAX_EMULATOR_PORT")
    env = dict(os.environ, VESTNIK_HOST=host, VESTNIK_PORT=str(port))
    postgres = EmbeddedPostgres(settings.data_dir) if settings.database_url is None else None
    redis = EmbeddedRedis(settings.data_dir / "redis") if settings.redis_url is None else None
    children: list[Child] = []
    ready_dir = Path(tempfile.mkdtemp(prefix="vestnik-run-"))
    try:
        db_url = settings.database_url
        pg_label = "external (VESTNIK_DATABASE_URL)"
        if postgres is not None:
            say(f"starting embedded Postgres in {postgres.pgdata} …")
            db_url = postgres.start()
            pg_label = f"embedded, data in {postgres.pgdata}"
        assert db_url is not None
        redis_url = settings.redis_url
        redis_label = "external (VESTNIK_REDIS_URL)"
        if redis is not None:
            say(f"starting embedded Redis in {settings.data_dir / 'redis'} …")
            redis_url = redis.start()
            redis_label = f"embedded, {redis_url}"
        assert redis_url is not None
        env["VESTNIK_DATABASE_URL"] = db_url
        env["VESTNIK_REDIS_URL"] = redis_url
        messenger = "Telegram (VESTNIK_TELEGRAM_TOKEN)"
        reach = local_address(host)
        # Each emulator this start needs, with the check that it answers.
        emulators: dict[str, Callable[[], bool]] = {}
        if emulated:
            emulator_url = f"http://{reach}:{settings.emulator_port}"
            env["VESTNIK_TELEGRAM_TOKEN"] = emulator_token(settings.data_dir)
            env["VESTNIK_TELEGRAM_API_URL"] = emulator_url
            env.setdefault("VESTNIK_TELEGRAM_BOT_USERNAME", TELEGRAM_BOT_USERNAME)
            emulators["emulator"] = _answers(f"{emulator_url}/emulator/messages")
            messenger = (
                f"local Bot API emulator (no VESTNIK_TELEGRAM_TOKEN); "
                f"try the bot as anyone: {emulator_url}/emulator "
                f"(sent messages: {emulator_url}/emulator/messages)"
            )
        max_line = "MAX bot API (VESTNIK_MAX_TOKEN)"
        if max_emulated:
            max_url = f"http://{reach}:{settings.max_emulator_port}"
            env["VESTNIK_MAX_TOKEN"] = "max-" + emulator_token(settings.data_dir)
            env["VESTNIK_MAX_API_URL"] = max_url
            env.setdefault("VESTNIK_MAX_BOT_USERNAME", MAX_BOT_USERNAME)
            emulators["max-emulator"] = _answers(f"{max_url}/emulator/messages")
            max_line = (
                f"local MAX emulator (no VESTNIK_MAX_TOKEN); try the MAX bot as anyone: "
                f"{max_url}/emulator"
            )
        ports = {"emulator": settings.emulator_port, "max-emulator": settings.max_emulator_port}
        if len(emulators) == 2:
            # Both in one process: a Python process of its own each was 0.6 s more of CPU
            # while everything starts.
            args = ["emulators", "--host", host, "--port", str(ports["emulator"])]
            args += ["--max-port", str(ports["max-emulator"])]
            checks = list(emulators.values())
            both = Child("emulators", _spawn("emulators", args, env), check=_all(checks))
            children.append(both)
        elif emulators:
            [(command, check)] = emulators.items()
            args = [command, "--host", host, "--port", str(ports[command])]
            label = "emulator" if command == "emulator" else "MAX emulator"
            children.append(Child(label, _spawn(command, args, env), check=check))
        messenger = f"{messenger}\n  MAX         {max_line}"
        say(f"starting the API on {host}:{port}, the worker, the scheduler and the bots …")
        # They load their code while the schema is migrated, and connect once it is.
        migrated = ready_dir / "migrated"
        api_args = ["api", "--host", host, "--port", str(port), "--after", str(migrated)]
        healthz = _answers(f"http://{reach}:{port}/healthz")
        forks = _can_fork()
        if forks:
            _load_the_domain()
        start: Callable[[list[str], dict[str, str]], Process] = (
            _fork if forks else lambda args, env: _spawn(args[0], args, env)
        )
        children.append(Child("api", start(api_args, env), check=healthz))
        # Worker, scheduler and bot share one process here: aiogram, which both the worker and
        # the bot need, takes seconds to import (production runs them apart: docker-compose.yml).
        marker = ready_dir / "engine"
        engine_args = ["engine", "--ready-file", str(marker), "--after", str(migrated)]
        engine = start(engine_args, env)
        children.append(Child("worker, scheduler, bot", engine, ready_file=marker))
        say("applying database migrations …")
        has_workspace = asyncio.run(_migrate(db_url))
        migrated.touch()
        _await_ready(children)
        _banner(
            settings,
            pg_label,
            redis_label,
            messenger,
            has_workspace,
            time.monotonic() - started,
        )
        return _wait(children)
    except KeyboardInterrupt:
        say("\nstopping vestnik …")
        return 0
    finally:
        # A second Ctrl-C while stopping must not leave Postgres or Redis running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop(children)
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
        for marker in ready_dir.iterdir():
            marker.unlink()
        ready_dir.rmdir()
        if children:
            say("vestnik stopped.")


async def _migrate(url: str) -> bool:
    """Bring the schema up to date; says whether a workspace exists already."""
    from sqlalchemy import text

    from core.db import make_engine
    from vestnik.database import migrate

    engine = make_engine(url, pool_size=1)
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            return bool(await connection.scalar(text("SELECT EXISTS (SELECT FROM workspaces)")))
    finally:
        await engine.dispose()


def _wait(children: list[Child]) -> int:
    while True:
        for child in children:
            code = child.process.poll()
            if code is not None:
                say(f"vestnik {child.name} exited with code {code}; stopping the rest")
                return code or 1
        time.sleep(0.5)
