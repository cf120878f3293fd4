"""`vestnik run` on a fresh data dir: embedded Postgres and Redis, the API over real HTTP, Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.conftest import child_env, free_port, vestnik_command

START_TIMEOUT = 90


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        vestnik_command("run", "--port", str(port)),
        env=child_env(VESTNIK_DATA_DIR=str(data_dir)),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def _wait_until_healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("vestnik run did not become healthy:\n" + log.read_text())


def _wait_for_messages(url: str, process: subprocess.Popen[bytes], log: Path) -> list[dict]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        messages = httpx.get(url, timeout=2).json()
        if messages:
            return messages  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError("no message reached the emulator:\n" + log.read_text())


def _interrupt(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=60)


def test_run_starts_everything_serves_the_api_and_stops_cleanly(tmp_path: Path):
    data_dir, log, port = tmp_path / "data", tmp_path / "run.log", free_port()
    process = _start(data_dir, port, log)
    try:
        _wait_until_healthy(process, port, log)
        banner = log.read_text()
        assert f"API         http://127.0.0.1:{port}/api/v1" in banner
        assert f"API docs    http://127.0.0.1:{port}/docs" in banner
        assert "worker      sending due reminders" in banner
        assert "bot         invites, /events, /settings" in banner
        assert "/emulator " in banner  # the chat page to try the bot
        assert "Mini App    http://127.0.0.1:" in banner
        emulator = re.search(r"(http://127\.0\.0\.1:\d+)/emulator/messages", banner)
        assert emulator, banner

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
        sent = _wait_for_messages(emulator.group(1) + "/emulator/messages", process, log)
        assert [m["chat_id"] for m in sent] == [4242]
        assert sent[0]["text"].startswith("Reminder: Standup")
    finally:
        code = _interrupt(process)
    assert code == 0, log.read_text()
    assert "vestnik stopped." in log.read_text()
    assert not (data_dir / "postgres" / "postmaster.pid").exists()  # Postgres shut down cleanly
    assert not (data_dir / "redis" / "redis.sock").exists()  # and so did Redis
    assert (data_dir / "redis" / "dump.rdb").exists()

    # The next start reuses the same data.
    process = _start(data_dir, port, log)
    try:
        _wait_until_healthy(process, port, log)
        members = api.get("/members").json()
        assert [m["name"] for m in members["items"]] == ["Anna"]
    finally:
        assert _interrupt(process) == 0


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
