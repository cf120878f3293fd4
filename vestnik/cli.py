"""The `vestnik` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.errors import DomainError, Invalid
from core.settings import Settings, SettingsError, load_settings
from core.teams.builtin_roles import BuiltinRole

# Commands that neither change events nor dispatch jobs, so need not wire the domain's parts
# together (core.kinds): `vestnik run` only starts the others, which start sooner without it.
_NO_DOMAIN = {"run", "emulator", "max-emulator", "emulators"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vestnik",
        description="Team notification service. With no VESTNIK_DATABASE_URL / VESTNIK_REDIS_URL "
        "it runs on embedded Postgres and Redis kept in VESTNIK_DATA_DIR (default ./.vestnik).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run everything in one process group (Ctrl-C stops it)")
    run.add_argument("--host", help="address to listen on (default: VESTNIK_HOST or 127.0.0.1)")
    run.add_argument("--port", type=int, help="port to listen on (default: VESTNIK_PORT or 8000)")

    api = sub.add_parser("api", help="serve the REST API only")
    api.add_argument("--host")
    api.add_argument("--port", type=int)
    api.add_argument(
        "--workers",
        type=int,
        help="processes serving the API (default: VESTNIK_API_WORKERS or 1; production: one per "
        "core); more than one needs VESTNIK_DATABASE_URL",
    )
    _after_option(api)

    sub.add_parser("migrate", help="bring the database schema up to date")
    for name, what in (
        ("worker", "send due reminders and confirmation requests (taskiq worker)"),
        ("bot", "the Telegram bot: invites, commands, answers (long polling)"),
        ("scheduler", "claim due jobs and hand them to the workers"),
    ):
        loop = sub.add_parser(name, help=what)
        loop.add_argument(
            "--ready-file",
            type=Path,
            help="create this file once ready to work (`vestnik run` waits for it)",
        )
        _after_option(loop)
    engine = sub.add_parser(
        "engine",
        help="worker, scheduler and bot in one process (what `vestnik run` starts on one machine)",
    )
    engine.add_argument("--ready-file", type=Path, help="create this file once every part is ready")
    _after_option(engine)
    emulator = sub.add_parser("emulator", help="run a local Telegram Bot API emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument(
        "--port", type=int, default=None, help="default: VESTNIK_EMULATOR_PORT or 8081"
    )
    max_emulator = sub.add_parser(
        "max-emulator", help="run a local MAX Bot API emulator (accepts VESTNIK_MAX_TOKEN)"
    )
    max_emulator.add_argument("--host", default="127.0.0.1")
    max_emulator.add_argument(
        "--port", type=int, default=None, help="default: VESTNIK_MAX_EMULATOR_PORT or 8082"
    )
    both = sub.add_parser(
        "emulators",
        help="run both local emulators, Telegram's and MAX's, in one process (what `vestnik run` "
        "starts without tokens; accepts VESTNIK_MAX_TOKEN)",
    )
    both.add_argument("--host", default="127.0.0.1")
    both.add_argument(
        "--port", type=int, default=None, help="Telegram's; default: VESTNIK_EMULATOR_PORT or 8081"
    )
    both.add_argument(
        "--max-port",
        type=int,
        default=None,
        help="MAX's; default: VESTNIK_MAX_EMULATOR_PORT or 8082",
    )

    workspace = sub.add_parser("workspace", help="manage workspaces")
    ws_sub = workspace.add_subparsers(dest="action", required=True, metavar="ACTION")
    ws_create = ws_sub.add_parser(
        "create", help="create a workspace; prints its first owner token on the last line"
    )
    ws_create.add_argument("name")
    ws_create.add_argument(
        "--timezone", default=None, help="IANA zone (default: VESTNIK_DEFAULT_TIMEZONE)"
    )

    token = sub.add_parser("token", help="manage API tokens")
    tk_sub = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    tk_create = tk_sub.add_parser("create", help="create a token; prints it on the last line")
    tk_create.add_argument("--workspace", required=True, help="workspace name")
    tk_create.add_argument(
        "--role", default="lead", choices=[r.value for r in BuiltinRole], help="default: lead"
    )
    tk_create.add_argument("--name", default=None, help="a label, e.g. 'crm-sync'")
    tk_list = tk_sub.add_parser("list", help="list a workspace's tokens")
    tk_list.add_argument("--workspace", required=True)
    tk_revoke = tk_sub.add_parser("revoke", help="revoke a token by id; it stops working at once")
    tk_revoke.add_argument("--workspace", required=True)
    tk_revoke.add_argument("token_id")
    return parser


def _after_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--after",
        type=Path,
        metavar="FILE",
        help="load, then wait for FILE to exist before connecting "
        "(`vestnik run` creates it once the schema is migrated)",
    )


def _wait_for(path: Path | None) -> None:
    # Started beside the migration so that loading the code (seconds) and migrating overlap.
    while path is not None and not path.exists():
        time.sleep(0.05)


def _serve_api(
    settings: Settings, host: str, port: int, after: Path | None, workers: int | None = None
) -> int:
    import uvicorn

    from api.app import create_app

    workers = workers or settings.api_workers
    if workers > 1 and settings.database_url is None:
        print(
            "vestnik: --workers above 1 needs VESTNIK_DATABASE_URL: the embedded Postgres "
            "serves one process group (`vestnik run`)",
            file=sys.stderr,
        )
        return 2
    _wait_for(after)
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level)
        return 0
    # Each worker process builds its app from the environment (uvicorn imports the factory).
    os.environ["VESTNIK_HOST"], os.environ["VESTNIK_PORT"] = host, str(port)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
    )
    return 0


async def _migrate(settings: Settings) -> int:
    from core.db import make_engine
    from core.embedded import database_url
    from vestnik.database import migrate

    print("applying database migrations …", flush=True)
    engine = make_engine(await database_url(settings), pool_size=1)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    print("the database schema is up to date")
    return 0


async def _workspace_create(settings: Settings, name: str, timezone: str | None) -> int:
    from core.teams.workspaces import create_workspace
    from vestnik.database import open_session

    async with open_session(settings) as session:
        created = await create_workspace(session, name, timezone or settings.default_timezone)
        await session.commit()
    print(f"workspace {created.name!r} created (id {created.id}, time zone {created.timezone})")
    print("its owner API token, shown only this once:")
    print(created.owner_token.token)
    return 0


async def _token_create(settings: Settings, workspace: str, role: str, name: str | None) -> int:
    from core.teams.permissions import system_actor
    from core.teams.tokens import create_token
    from core.teams.workspaces import get_workspace_by_name
    from vestnik.database import open_session

    async with open_session(settings) as session:
        ws = await get_workspace_by_name(session, workspace)
        issued = await create_token(
            session, system_actor(ws.id), BuiltinRole(role), name or f"{role} token"
        )
        await session.commit()
    print(f"{role} token {issued.name!r} (id {issued.id}) for {ws.name!r}, shown only this once:")
    print(issued.token)
    return 0


async def _token_list(settings: Settings, workspace: str) -> int:
    from core.teams.permissions import system_actor
    from core.teams.tokens import list_tokens
    from core.teams.workspaces import get_workspace_by_name
    from vestnik.database import open_session

    async with open_session(settings) as session:
        ws = await get_workspace_by_name(session, workspace)
        rows = await list_tokens(session, system_actor(ws.id))
    print(f"{'ID':<36}  {'NAME':<20} {'ROLE':<7} {'PREFIX':<11} {'LAST USED':<20} STATE")
    for t in rows:
        used = t.last_used_at.strftime("%Y-%m-%d %H:%M UTC") if t.last_used_at else "never"
        state = "revoked" if t.revoked_at else "active"
        print(
            f"{t.id!s:<36}  {t.name[:20]:<20} {t.role.value:<7} {t.prefix:<11} {used:<20} {state}"
        )
    return 0


async def _token_revoke(settings: Settings, workspace: str, token_id: str) -> int:
    import uuid

    from core.teams.permissions import system_actor
    from core.teams.tokens import revoke_token
    from core.teams.workspaces import get_workspace_by_name
    from vestnik.database import open_session

    try:
        ident = uuid.UUID(token_id)
    except ValueError:
        raise Invalid("token_id", "not a token id; `vestnik token list` shows them") from None
    async with open_session(settings) as session:
        ws = await get_workspace_by_name(session, workspace)
        revoked = await revoke_token(session, system_actor(ws.id), ident)
        await session.commit()
    print(f"token {revoked.name!r} ({revoked.id}) is revoked")
    return 0


def _engine_parts(settings: Settings) -> list[str]:
    # The bot polls only with a token and without a webhook (then the API takes the updates).
    polls = settings.telegram_token is not None and settings.bot_webhook_url is None
    max_polls = settings.max_token is not None and settings.max_webhook_url is None
    return ["worker", "scheduler", *(["bot"] if polls else []), *(["max-bot"] if max_polls else [])]


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


Part = Callable[..., Awaitable[None]]
# A part still stopping this long after the signal is named, with where it waits (the supervisor
# kills the process at its grace of 10 s).
SLOW_STOP_SECONDS = 3.0


def _part(name: str) -> Part:
    # Each process imports only what it runs: the bot's and the worker's aiogram take seconds.
    if name == "bot":
        from bot.app import run_bot

        return run_bot
    if name == "max-bot":
        from bot.max_bot import run_max_process

        return run_max_process
    from worker.app import run_scheduler, run_worker

    return run_worker if name == "worker" else run_scheduler


async def _loop(
    settings: Settings, names: list[str], ready_file: Path | None, after: Path | None = None
) -> int:
    """Run these parts (worker, scheduler, bot) in this process until SIGINT or SIGTERM; one that
    fails stops the others. ``ready_file`` is created once every part is ready."""
    from core.embedded import EmbeddedRedis, database_url

    runs = {name: _part(name) for name in names}
    await asyncio.to_thread(_wait_for, after)
    db_url = await database_url(settings)
    redis = None
    redis_url = settings.redis_url
    if redis_url is None:
        redis = EmbeddedRedis(settings.data_dir / "redis")
        redis_url = await asyncio.to_thread(redis.start)
    stop = _stop_on_signals()
    waiting = set(names)

    def ready_for(name: str) -> Callable[[], None]:
        def ready() -> None:
            print(f"vestnik {name} ready", flush=True)
            waiting.discard(name)
            if not waiting and ready_file is not None:
                ready_file.touch()

        return ready

    try:
        parts = [
            asyncio.create_task(runs[name](settings, redis_url, db_url, stop, ready_for(name)))
            for name in names
        ]
        await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        _, slow = await asyncio.wait(parts, timeout=SLOW_STOP_SECONDS)
        if slow:  # the supervisor kills the process at its grace: say where it hangs
            late = ", ".join(name for name, part in zip(names, parts, strict=True) if part in slow)
            print(f"vestnik {late} still stopping after {SLOW_STOP_SECONDS:g}s", file=sys.stderr)
            others = asyncio.all_tasks() - {asyncio.current_task()}
            for task in sorted(others, key=lambda t: t.get_name())[:30]:
                print(f"  {task.get_name()}: {_awaiting(task)}", file=sys.stderr, flush=True)
        for outcome in await asyncio.gather(*parts, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
    finally:
        if redis is not None:
            redis.stop()
    print(f"vestnik {' + '.join(names)} stopped", flush=True)
    return 0


def _awaiting(task: asyncio.Task[object]) -> str:
    """Where a task is suspended: its chain of awaits, innermost last, as file:line function."""
    where: list[str] = []
    step: object = task.get_coro()
    while step is not None and len(where) < 40:
        frame = getattr(step, "cr_frame", None) or getattr(step, "ag_frame", None)
        frame = frame or getattr(step, "gi_frame", None)
        if frame is None:
            where.append(type(step).__name__)
            break
        where.append(
            f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno} {frame.f_code.co_name}"
        )
        step = (
            getattr(step, "cr_await", None)
            or getattr(step, "ag_await", None)
            or getattr(step, "gi_yieldfrom", None)
        )
    return " > ".join(where)


async def _bot(settings: Settings, ready_file: Path | None, after: Path | None) -> int:
    if settings.telegram_token is None and settings.max_token is not None:
        return await _loop(settings, ["max-bot"], ready_file, after)
    if settings.telegram_token is None:
        print(
            "vestnik bot: set VESTNIK_TELEGRAM_TOKEN (or use `vestnik run`, which starts a local "
            "Bot API emulator)",
            file=sys.stderr,
        )
        return 2
    if settings.bot_webhook_url is not None:
        print(
            f"vestnik bot: webhook mode (VESTNIK_BOT_WEBHOOK_URL={settings.bot_webhook_url}); "
            "updates arrive at `vestnik api`, no polling process is needed"
        )
        return 0
    names = ["bot", *(["max-bot"] if settings.max_token is not None else [])]
    return await _loop(settings, names, ready_file, after)


async def _emulators(
    settings: Settings, command: str, host: str, port: int | None, max_port: int | None
) -> int:
    """Serve the Telegram emulator on ``port`` and the MAX one on ``max_port``, those given, in
    this process until SIGINT or SIGTERM."""
    if max_port is not None and settings.max_token is None:
        print(f"vestnik {command}: set VESTNIK_MAX_TOKEN (the token it accepts)", file=sys.stderr)
        return 2
    stop = _stop_on_signals()
    serving = []
    if port is not None:
        from emulators import telegram

        serving.append(telegram.serve(host, port, stop))
    if max_port is not None:
        from emulators import max as max_emulator

        assert settings.max_token is not None
        token = settings.max_token.get_secret_value()
        serving.append(max_emulator.serve(host, max_port, token, stop))
    await asyncio.gather(*serving)
    return 0


def _configure_logging(settings: Settings) -> None:
    # Our own messages at the configured level; libraries (pgserver, alembic) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for ours in ("core", "api", "vestnik", "bot", "worker", "webapp"):
        logging.getLogger(ours).setLevel(settings.log_level.upper())


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    args = _parser().parse_args(argv)
    if args.command not in _NO_DOMAIN:
        from core import kinds  # a second and a half of imports: not for the emulators

        kinds.install()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"vestnik: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings)
    # Links (feeds, answer links) follow the address actually served unless VESTNIK_BASE_URL says.
    settings = settings.model_copy(
        update={
            "host": getattr(args, "host", None) or settings.host,
            "port": getattr(args, "port", None) or settings.port,
        }
    )
    host, port = settings.host, settings.port
    ready_file = getattr(args, "ready_file", None)
    after = getattr(args, "after", None)
    from vestnik.errors import MigrationFailed, SchemaOutdated, StartupError

    try:
        match args.command, getattr(args, "action", None):
            case "run", _:
                from vestnik.supervisor import run

                return run(settings)
            case "api", _:
                return _serve_api(settings, host, port, after, args.workers)
            case "migrate", _:
                return asyncio.run(_migrate(settings))
            case ("worker" | "scheduler") as name, _:
                return asyncio.run(_loop(settings, [name], ready_file, after))
            case "engine", _:
                return asyncio.run(_loop(settings, _engine_parts(settings), ready_file, after))
            case "emulator", _:
                port = args.port or settings.emulator_port
                return asyncio.run(_emulators(settings, "emulator", args.host, port, None))
            case "max-emulator", _:
                max_port = args.port or settings.max_emulator_port
                return asyncio.run(_emulators(settings, "max-emulator", args.host, None, max_port))
            case "emulators", _:
                port = args.port or settings.emulator_port
                max_port = args.max_port or settings.max_emulator_port
                return asyncio.run(_emulators(settings, "emulators", args.host, port, max_port))
            case "bot", _:
                return asyncio.run(_bot(settings, ready_file, after))
            case "workspace", "create":
                return asyncio.run(_workspace_create(settings, args.name, args.timezone))
            case "token", "create":
                return asyncio.run(_token_create(settings, args.workspace, args.role, args.name))
            case "token", "list":
                return asyncio.run(_token_list(settings, args.workspace))
            case "token", "revoke":
                return asyncio.run(_token_revoke(settings, args.workspace, args.token_id))
    except (DomainError, MigrationFailed, SchemaOutdated, StartupError) as exc:
        print(f"vestnik: {getattr(exc, 'detail', exc)}", file=sys.stderr)
        return 1
    raise AssertionError(f"unhandled command {args.command}")
