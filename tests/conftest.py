"""Shared fixtures: one embedded Postgres and Redis per test run, a clean database per test."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.app import create_app
from core import kinds
from core.clock import use_clock
from core.db import make_engine, make_sessionmaker
from core.embedded import EmbeddedPostgres, EmbeddedRedis
from core.migrate import upgrade
from core.models import Base
from core.settings import Settings
from core.teams.workspaces import create_workspace
from emulators.telegram import BotApiEmulator
from tests.factories import EMULATORS
from worker.channels import TelegramChannel, make_bot

# The test process dispatches jobs itself, as a worker does: the same wiring.
kinds.install()

# Fixtures shared by the Mini App tests (the app served in-process, signed in through Telegram).
pytest_plugins = ["tests.webapp_helpers"]

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--refresh-screenshots",
        action="store_true",
        help="write the browser tests' screenshots to docs/screenshots (the README's pictures) "
        "instead of a temporary folder",
    )


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save their screenshots; a plain run leaves the work tree alone."""
    if request.config.getoption("--refresh-screenshots"):
        return ROOT / "docs" / "screenshots"
    return tmp_path_factory.mktemp("screenshots")


# "Now" for every test: the day this suite was last rewritten. Dates written in tests (an event on
# 2026-12-10 with a reminder a day before) keep their meaning whatever today's date is.
TEST_EPOCH = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class MovableClock:
    """A clock that starts at a given moment and runs at the machine's pace; tests may move it."""

    def __init__(self, at: datetime) -> None:
        self.set(at)

    def __call__(self) -> datetime:
        return self._at + timedelta(seconds=time.monotonic() - self._started)

    def set(self, at: datetime) -> None:
        self._at, self._started = at, time.monotonic()

    def advance(self, by: timedelta) -> None:
        self.set(self() + by)


@pytest.fixture(autouse=True)
def clock() -> Iterator[MovableClock]:
    """What vestnik's code in this process reads as now (real `vestnik` processes keep the real
    time; tests that start them set this clock relative to the real one)."""
    test_clock = MovableClock(TEST_EPOCH)
    previous = use_clock(test_clock)
    yield test_clock
    use_clock(previous)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vestnik-data")


@pytest.fixture(scope="session")
def pg_url(data_dir: Path) -> Iterator[str]:
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def redis_url(data_dir: Path) -> Iterator[str]:
    server = EmbeddedRedis(data_dir / "redis")
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(pg_url, pool_size=5)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
async def _clean_database(request: pytest.FixtureRequest) -> None:
    """Every test starts from empty tables (committed data of the previous test is gone)."""
    if "engine" not in request.fixturenames:
        return
    engine: AsyncEngine = request.getfixturevalue("engine")
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with make_sessionmaker(engine)() as session:
        yield session


@pytest.fixture(scope="session")
def settings(pg_url: str, redis_url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=pg_url,
        redis_url=redis_url,
        data_dir=data_dir,
        telegram_bot_username="vestnik_emulator_bot",
    )


@pytest.fixture(scope="session")
async def app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[object]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def public(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials: feeds and answer links are opened by the secret they carry."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://localhost:8000",
    ) as client:
        yield client


@dataclass
class Workspace:
    id: uuid.UUID
    name: str
    token: str
    client: httpx.AsyncClient


ClientFor = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def client_for(app: object) -> AsyncIterator[ClientFor]:
    """An HTTP client for the API that sends the given bearer token."""
    opened: list[httpx.AsyncClient] = []

    def make(token: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://vestnik.test/api/v1",
            headers={"Authorization": f"Bearer {token}"},
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


MakeWorkspace = Callable[..., Awaitable[Workspace]]


@pytest.fixture
def make_workspace(engine: AsyncEngine, client_for: ClientFor) -> MakeWorkspace:
    """Create a workspace the way `vestnik workspace create` does; returns its owner's client."""

    async def make(name: str = "Acme", timezone: str = "Europe/Moscow") -> Workspace:
        async with make_sessionmaker(engine)() as session:
            created = await create_workspace(session, name, timezone)
            await session.commit()
        token = created.owner_token.token
        return Workspace(uuid.UUID(created.id), created.name, token, client_for(token))

    return make


@pytest.fixture
async def acme(make_workspace: MakeWorkspace) -> Workspace:
    return await make_workspace("Acme")


@pytest.fixture
async def globex(make_workspace: MakeWorkspace) -> Workspace:
    return await make_workspace("Globex", "America/New_York")


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """The API (with the Mini App) on a real port of this machine, in this event loop."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 60
    while not server.started:
        assert not task.done(), "the API did not start"
        assert asyncio.get_running_loop().time() < deadline, "the API did not start in 60 s"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def scratch_database(
    engine: AsyncEngine, pg_url: str, name: str
) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A fresh, empty database ``name`` beside the test database: its URL and an engine on it."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        await connection.execute(text(f"CREATE DATABASE {name}"))
    url = pg_url.replace("/vestnik?", f"/{name}?")
    scratch = make_engine(url, pool_size=1)
    try:
        yield url, scratch
    finally:
        await scratch.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vestnik_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "vestnik", *args]


def child_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VESTNIK_")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(overrides)
    return env


@pytest.fixture
async def emulator() -> AsyncIterator[BotApiEmulator]:
    """A Bot API emulator with no rate limit (tests that need one override this fixture)."""
    server = BotApiEmulator(rate_per_second=None)
    await server.start()
    EMULATORS.append(server)
    yield server
    EMULATORS.remove(server)
    await server.stop()


@pytest.fixture
async def telegram(emulator: BotApiEmulator) -> AsyncIterator[TelegramChannel]:
    """The worker's Telegram channel, talking to the emulator over HTTP."""
    bot = make_bot("123456:TEST", emulator.base_url)
    yield TelegramChannel(bot)
    await bot.session.close()


# The bot on each messenger, for any test (imported last: it uses this module's fixtures' types).
from tests.chats import talk, telegram_bot  # noqa: E402, F401
