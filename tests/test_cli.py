"""The `vestnik` command: settings errors, workspaces and tokens from the shell."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.conftest import child_env, vestnik_command


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
