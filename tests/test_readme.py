"""The README works when pasted line by line: every ```bash block, in order, in one shell, against
a real `vestnik run` on a fresh data dir, the way a new user would (with curl and jq)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, child_env, free_port, vestnik_command

BLOCK = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
# Any HTTP error answer fails the command (the README's curl lines print the body either way).
PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body --max-time 30 "$@"; }
"""


def readme_blocks() -> list[str]:
    return BLOCK.findall((ROOT / "README.md").read_text())


@pytest.fixture
def running(tmp_path: Path):
    """`vestnik run` on free ports and a fresh data dir; yields (port, data dir)."""
    port, data_dir, log = free_port(), tmp_path / "data", tmp_path / "run.log"
    env = child_env(
        VESTNIK_DATA_DIR=str(data_dir),
        VESTNIK_EMULATOR_PORT=str(free_port()),
        VESTNIK_MAX_EMULATOR_PORT=str(free_port()),
    )
    process = subprocess.Popen(
        vestnik_command("run", "--port", str(port)),
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while "vestnik is running" not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    yield port, data_dir
    process.send_signal(signal.SIGINT)
    process.wait(60)


def test_the_readme_has_runnable_blocks_for_every_first_step():
    blocks = readme_blocks()
    assert len(blocks) >= 5
    assert "vestnik workspace create" in blocks[0]


@pytest.mark.skipif(not shutil.which("jq"), reason="needs jq (.ci/run installs it)")
def test_every_bash_block_of_the_readme_runs_in_order_against_vestnik_run(
    running: tuple[int, Path], tmp_path: Path
):
    port, data_dir = running
    script = PRELUDE
    for number, block in enumerate(readme_blocks(), 1):
        script += f'echo "=== README block {number}" >&2\n'
        script += block.replace("127.0.0.1:8000", f"127.0.0.1:{port}") + "\n"
    # The user's clone: the files the README names, nothing of the developer's own data dir.
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "docs").symlink_to(ROOT / "docs")
    env = child_env(VESTNIK_DATA_DIR=str(data_dir))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 0, said[-4000:]
    assert '"count":1' in said and '"name":"Boris"' in said  # the audience preview
    assert '"local_start":' in said and "T10:00:00+03:00" in said  # occurrences in Moscow time
    assert "BEGIN:VCALENDAR" in said  # the feed link serves a calendar
    assert '"uid":"spam-1@example.com"' in said and '"title":"Retro"' in said  # the import
    assert '"status":"scheduled"' in said  # the broadcast at 09:00 in each member's zone
    assert list(clone.iterdir()) == [clone / "docs"]  # nothing left behind
