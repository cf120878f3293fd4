"""`vestnik run` on a fresh data dir: embedded Postgres and Redis, the API over real HTTP, Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.conftest import MovableClock, child_env, free_port, vestnik_command
from tests.webapp_helpers import init_data

START_TIMEOUT = 90


def _start(data_dir: Path, port: int, emulator_port: int, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        vestnik_command("run", "--port", str(port)),
        env=child_env(
            VESTNIK_DATA_DIR=str(data_dir),
            VESTNIK_EMULATOR_PORT=str(emulator_port),
            VESTNIK_MAX_EMULATOR_PORT=str(free_port()),
        ),
        stdout=out,
        stderr=subprocess.STDOUT,
        # As a shell starts a background job: SIGINT ignored, which `vestnik run` must override.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )


def _wait_until_ready(
    process: subprocess.Popen[bytes], port: int, log: Path, since: int = 0
) -> None:
    """Wait for the banner (written after ``since`` in the log); by then every part must answer."""
    deadline = time.monotonic() + START_TIMEOUT
    while "vestnik is running" not in log.read_text()[since:]:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "no banner:\n" + log.read_text()
        time.sleep(0.2)
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    assert "vestnik bot ready" in log.read_text()[since:]  # polling before the banner


def _wait_for_messages(
    url: str, process: subprocess.Popen[bytes], log: Path, starting: str
) -> list[dict]:
    """Every message the emulator got, once one starts with ``starting``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        messages = httpx.get(url, timeout=2).json()
        if any(m["text"].startswith(starting) for m in messages):
            return messages  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"no {starting!r} reached the emulator:\n" + log.read_text())


def _interrupt(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=60)


def _processes_using(data_dir: Path) -> list[str]:
    """Command lines of processes still running from this data dir (Postgres, Redis, vestnik)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if str(data_dir) in command or str(data_dir).encode() in environ:
            found.append(command)
    return found


def test_run_starts_everything_serves_the_api_and_stops_cleanly(
    tmp_path: Path, clock: MovableClock
):
    clock.set(datetime.now(UTC))  # the real process signs in with the real time
    data_dir, log, port = tmp_path / "data", tmp_path / "run.log", free_port()
    emulator_port = free_port()
    process = _start(data_dir, port, emulator_port, log)
    try:
        _wait_until_ready(process, port, log)
        banner = log.read_text()
        assert f"API         http://127.0.0.1:{port}/api/v1" in banner
        assert f"(docs http://127.0.0.1:{port}/docs" in banner
        assert f"health      http://127.0.0.1:{port}/healthz" in banner
        assert "worker      sending due reminders" in banner
        assert "bot         invites, /events, /settings" in banner
        assert f"http://127.0.0.1:{emulator_port}/emulator " in banner  # the chat page
        assert "Mini App    http://127.0.0.1:" in banner
        assert 'workspace create "My team"' in banner  # none exists yet
        emulator = re.search(r"(http://127\.0\.0\.1:\d+)/emulator/messages", banner)
        assert emulator, banner
        index = httpx.get(f"http://127.0.0.1:{port}/api/v1").json()
        assert index["docs"] == "/docs" and index["health"] == "/healthz"

        created = subprocess.run(
            vestnik_command("workspace", "create", "Night Shift"),
            env=child_env(VESTNIK_DATA_DIR=str(data_dir)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1", headers={"Authorization": f"Bearer {token}"}
        )
        anna = api.post("/members", json={"name": "Anna", "telegram_user_id": 4242})
        assert anna.status_code == 201, anna.text
        # Anna opens the bot from the emulator's chat page: a bot cannot write first.
        opened = httpx.post(
            emulator.group(1) + "/emulator/send",
            json={"user": {"id": 4242, "first_name": "Anna"}, "text": "/start"},
        )
        assert opened.status_code == 200, opened.text
        assert (
            httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["info"]["title"] == "vestnik"
        )

        # The whole flow, offline: a reminder due now goes out through scheduler, worker and the
        # local Bot API emulator.
        starts = (datetime.now(UTC) + timedelta(seconds=62)).isoformat()
        event = api.post(
            "/events",
            json={
                "title": "Standup",
                "starts_at": starts,
                "audience": {"members": [anna.json()["id"]]},
                "reminder_offsets": [1],
            },
        )
        assert event.status_code == 201, event.text
        sent = _wait_for_messages(
            emulator.group(1) + "/emulator/messages", process, log, "Reminder: Standup"
        )
        assert {m["chat_id"] for m in sent} == {4242}  # the bot's hello, and the reminder once
        assert sum(m["text"].startswith("Reminder: Standup") for m in sent) == 1

        # The emulator's bot token is random per data dir: Mini App sign-ins signed with the token
        # earlier versions used for every installation are refused; its own are accepted.
        token_file = data_dir / "emulator.token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        for bot_token, status in (
            ("1000000:vestnik-local-emulator", 401),
            (token_file.read_text().strip(), 204),
        ):
            signed = init_data({"id": 4242, "first_name": "Anna"}, token=bot_token)
            answer = httpx.post(f"http://127.0.0.1:{port}/app/auth", data={"init_data": signed})
            assert answer.status_code == status, answer.text

        # Links follow the port actually served when VESTNIK_BASE_URL is not set.
        feed = api.post(f"/members/{anna.json()['id']}/calendar-feed").json()
        assert feed["url"].startswith(f"http://127.0.0.1:{port}/ics/"), feed
    finally:
        code = _interrupt(process)
    log_text = log.read_text()
    assert code == 0, log_text
    assert "vestnik stopped." in log_text
    assert "Failed to fetch updates" not in log_text  # the bot stopped before the emulator
    assert not (data_dir / "postgres" / "postmaster.pid").exists()  # Postgres shut down cleanly
    assert not (data_dir / "redis" / "redis.sock").exists()  # and so did Redis
    assert (data_dir / "redis" / "dump.rdb").exists()
    assert _processes_using(data_dir) == []

    # The next start reuses the same data, the same emulator port, and knows the workspace.
    started = len(log_text)
    process = _start(data_dir, port, emulator_port, log)
    try:
        _wait_until_ready(process, port, log, since=started)
        members = api.get("/members").json()
        assert [m["name"] for m in members["items"]] == ["Anna"]
        second = log.read_text()[started:]
        assert f"http://127.0.0.1:{emulator_port}/emulator " in second
        assert "workspace create" not in second
    finally:
        process.send_signal(signal.SIGTERM)  # as `docker stop` or a service manager would
        assert process.wait(timeout=60) == 0
    assert _processes_using(data_dir) == []


def test_run_refuses_a_busy_port_with_a_clear_message(tmp_path: Path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            vestnik_command("run", "--port", str(port)),
            env=child_env(VESTNIK_DATA_DIR=str(tmp_path)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
