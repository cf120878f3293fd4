"""The process that runs the worker, the scheduler and the bots loads no web framework
(worker/__init__.py), and taskiq still resolves its tasks' dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import sys
import worker.app, bot.app, bot.max_bot  # what `vestnik engine` loads
assert "fastapi" not in sys.modules, "the engine imported FastAPI"
from taskiq_dependencies import DependencyGraph, Depends
def answer() -> int:
    return 41
def task(value: int = Depends(answer)) -> int:
    return value + 1
with DependencyGraph(task).sync_ctx() as context:
    assert task(**context.resolve_kwargs()) == 42
import fastapi  # still importable for whoever needs it later
assert fastapi.Depends is not None
print("ok")
"""


def test_the_engine_loads_no_web_framework_and_resolves_task_dependencies() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
