"""`vestnik run`: every vestnik process on this machine, in one process group, stopped by Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from bot.emulator import BOT_USER
from core.db import make_engine
from core.embedded import EmbeddedPostgres, EmbeddedRedis
from core.migrate import upgrade
from core.settings import Settings

# Parts of vestnik that later issues bring; until then `run` says so instead of starting them.
EMULATOR_BOT_USERNAME = str(BOT_USER["username"])
# What the emulator's bot token looks like to aiogram; it is not a real token.
EMULATOR_TOKEN = "1000000:vestnik-local-emulator"
STOP_GRACE_SECONDS = 10


class StartupError(Exception):
    pass


def say(line: str) -> None:
    print(line, flush=True)


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise StartupError(
                f"port {port} on {host} is in use; stop what uses it or pick another with --port"
            ) from None


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def _spawn(name: str, args: list[str], env: dict[str, str]) -> Child:
    return Child(name, subprocess.Popen([sys.executable, "-m", "vestnik", *args], env=env))


def _stop(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"  {child.name} did not stop in {STOP_GRACE_SECONDS}s; killing it")
            child.process.kill()
            child.process.wait()


def _banner(settings: Settings, host: str, port: int, pg: str, redis: str, messenger: str) -> None:
    base = f"http://{host}:{port}"
    say("")
    say("vestnik is running")
    say(f"  API         {base}/api/v1")
    say(f"  API docs    {base}/docs")
    say("  worker      sending due reminders and confirmation requests")
    say("  scheduler   claiming due jobs")
    bot = "updates through the API webhook" if settings.bot_webhook_url else "polling for updates"
    say(f"  bot         invites, /events, /settings, answers, /who, /remind, code words ({bot})")
    say(f"  messenger   {messenger}")
    dev = " (or /app/dev-login?telegram_user_id=… with VESTNIK_WEBAPP_DEV_LOGIN=true)"
    say(f"  Mini App    {base}/app, opened from the bot's menu button{dev}")
    say(f"  Postgres    {pg}")
    say(f"  Redis       {redis}")
    say("")
    say("Create a workspace and its first API token (from this folder, in another terminal):")
    say('  python -m vestnik workspace create "My team"')
    say("Press Ctrl-C to stop.")


def run(settings: Settings, host: str, port: int) -> int:
    """Start embedded services if needed, migrate, start the processes, wait for Ctrl-C."""
    check_port_free(host, port)
    env = dict(os.environ)
    postgres = EmbeddedPostgres(settings.data_dir) if settings.database_url is None else None
    redis = EmbeddedRedis(settings.data_dir / "redis") if settings.redis_url is None else None
    children: list[Child] = []
    try:
        db_url = settings.database_url
        pg_label = "external (VESTNIK_DATABASE_URL)"
        if postgres is not None:
            say(f"starting embedded Postgres in {settings.data_dir / 'postgres'} …")
            db_url = postgres.start()
            pg_label = f"embedded, data in {settings.data_dir / 'postgres'}"
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
        say("applying database migrations …")
        asyncio.run(_migrate(db_url))
        messenger = "Telegram (VESTNIK_TELEGRAM_TOKEN)"
        if settings.telegram_token is None:
            emulator_port = free_port(host)
            emulator_url = f"http://{host}:{emulator_port}"
            env["VESTNIK_TELEGRAM_TOKEN"] = EMULATOR_TOKEN
            env["VESTNIK_TELEGRAM_API_URL"] = emulator_url
            env.setdefault("VESTNIK_TELEGRAM_BOT_USERNAME", EMULATOR_BOT_USERNAME)
            children.append(
                _spawn("emulator", ["emulator", "--host", host, "--port", str(emulator_port)], env)
            )
            messenger = (
                f"local Bot API emulator (no VESTNIK_TELEGRAM_TOKEN); "
                f"try the bot as anyone: {emulator_url}/emulator "
                f"(sent messages: {emulator_url}/emulator/messages)"
            )
        say(f"starting the API on {host}:{port}, the worker, the scheduler and the bot …")
        children.append(_spawn("api", ["api", "--host", host, "--port", str(port)], env))
        children.append(_spawn("worker", ["worker"], env))
        children.append(_spawn("scheduler", ["scheduler"], env))
        if settings.bot_webhook_url is None:  # in webhook mode the API takes the updates
            children.append(_spawn("bot", ["bot"], env))
        _banner(settings, host, port, pg_label, redis_label, messenger)
        return _wait(children)
    except KeyboardInterrupt:
        say("\nstopping vestnik …")
        return 0
    finally:
        _stop(children)
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
        if children:
            say("vestnik stopped.")


async def _migrate(url: str) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait(children: list[Child]) -> int:
    # `docker stop` and service managers send SIGTERM: stop as gracefully as on Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    while True:
        for child in children:
            code = child.process.poll()
            if code is not None:
                say(f"vestnik {child.name} exited with code {code}; stopping the rest")
                return code or 1
        time.sleep(0.5)
