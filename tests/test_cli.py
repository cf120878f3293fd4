"""The `vestnik` command: settings errors, workspaces and tokens from the shell."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings
from tests.conftest import child_env, free_port, scratch_database, vestnik_command


def vestnik(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        vestnik_command(*args), env=child_env(**env), capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VESTNIK_PORT", "eighty"),
        ("VESTNIK_DATABASE_URL", "mysql://root@localhost/db"),
        ("VESTNIK_REDIS_URL", "memcached://x"),
        ("VESTNIK_DEFAULT_TIMEZONE", "Moscow"),
        ("VESTNIK_BASE_URL", "not a url"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(variable: str, value: str):
    result = vestnik("migrate", **{variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"vestnik: bad setting {variable}:")


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    names = [f"VESTNIK_{field.upper()}" for field in Settings.model_fields]
    assert [name for name in names if f"`{name}`" not in readme] == []


async def test_workspace_and_tokens_from_the_cli_work_against_the_api(pg_url: str, app):
    created = vestnik(
        "workspace",
        "create",
        "Team Rocket",
        "--timezone",
        "Europe/Berlin",
        VESTNIK_DATABASE_URL=pg_url,
    )
    assert created.returncode == 0, created.stderr
    owner_token = created.stdout.strip().splitlines()[-1]
    assert owner_token.startswith("vst_")

    lead = vestnik(
        "token",
        "create",
        "--workspace",
        "team rocket",
        "--role",
        "lead",
        "--name",
        "ci",
        VESTNIK_DATABASE_URL=pg_url,
    )
    assert lead.returncode == 0, lead.stderr
    lead_token = lead.stdout.strip().splitlines()[-1]

    listed = vestnik("token", "list", "--workspace", "Team Rocket", VESTNIK_DATABASE_URL=pg_url)
    rows = listed.stdout.strip().splitlines()[1:]
    assert [r.split()[1:3] for r in rows] == [["owner", "owner"], ["ci", "lead"]]
    lead_id = rows[1].split()[0]

    duplicate = vestnik("workspace", "create", "team rocket", VESTNIK_DATABASE_URL=pg_url)
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    unknown = vestnik("token", "create", "--workspace", "Nope", VESTNIK_DATABASE_URL=pg_url)
    assert unknown.returncode == 1
    assert "workspace 'Nope' not found" in unknown.stderr
    bad_role = vestnik(
        "token",
        "create",
        "--workspace",
        "Team Rocket",
        "--role",
        "king",
        VESTNIK_DATABASE_URL=pg_url,
    )
    assert bad_role.returncode == 2
    assert "invalid choice: 'king'" in bad_role.stderr

    revoked = vestnik(
        "token", "revoke", "--workspace", "Team Rocket", lead_id, VESTNIK_DATABASE_URL=pg_url
    )
    assert revoked.returncode == 0, revoked.stderr
    assert "is revoked" in revoked.stdout
    assert (
        "revoked"
        in vestnik(
            "token", "list", "--workspace", "Team Rocket", VESTNIK_DATABASE_URL=pg_url
        ).stdout
    )

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as api:
        as_owner = {"Authorization": f"Bearer {owner_token}"}
        as_lead = {"Authorization": f"Bearer {lead_token}"}
        assert (await api.get("/members", headers=as_owner)).status_code == 200
        assert (await api.get("/members", headers=as_lead)).status_code == 401


def test_api_workers_need_an_external_database(tmp_path):
    result = vestnik("api", "--workers", "2", VESTNIK_DATA_DIR=str(tmp_path))
    assert result.returncode == 2
    assert "--workers above 1 needs VESTNIK_DATABASE_URL" in result.stderr


def test_the_api_serves_from_several_worker_processes(pg_url: str, settings, tmp_path):
    port = free_port()
    env = child_env(
        VESTNIK_DATABASE_URL=pg_url,
        VESTNIK_REDIS_URL=settings.redis_url,
        VESTNIK_DATA_DIR=str(tmp_path),
        VESTNIK_SECRET_KEY="workers",
    )
    server = subprocess.Popen(
        vestnik_command("api", "--workers", "2", "--port", str(port)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(600):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            answers = [client.get("/api/v1/members") for _ in range(10)]
        # Served (and refused for want of a token) by the workers, whichever answers.
        assert {a.status_code for a in answers} == {401}
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=60)
    assert "Started parent process" in errors and errors.count("Started server process") == 2


async def test_a_migration_postgres_refuses_stops_vestnik_migrate_with_its_reason(
    engine: AsyncEngine, pg_url: str
):
    async with scratch_database(engine, pg_url, "vestnik_cli_failing") as (url, scratch):
        async with scratch.connect() as connection:
            await connection.execute(text("CREATE TABLE workspaces (squatter int)"))
            await connection.commit()
        done = await asyncio.to_thread(vestnik, "migrate", VESTNIK_DATABASE_URL=url)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        said = done.stderr.strip().splitlines()
        assert len(said) == 1 and said[0].startswith("vestnik: a database migration failed")
        assert 'relation "workspaces" already exists' in said[0]
        async with scratch.connect() as connection:  # none of it applied
            tables = await connection.scalar(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            )
            assert tables == 1


async def test_a_part_slow_to_stop_is_named_with_where_it_waits() -> None:
    """What `vestnik engine` prints for a part still running 3 s after the signal: the chain of
    awaits down to the one it is stuck on, so a hang can be reported without a debugger."""
    from vestnik.cli import _awaiting

    gate = asyncio.Event()

    async def long_poll() -> None:
        await gate.wait()

    async def run_bot_like() -> None:
        await long_poll()

    task = asyncio.create_task(run_bot_like())
    await asyncio.sleep(0)
    where = _awaiting(task)
    gate.set()
    await task
    assert where.startswith("test_cli.py:")
    names = [step.split(" ")[-1] for step in where.split(" > ")]
    assert names[:3] == ["run_bot_like", "long_poll", "wait"], where
