"""The taskiq broker, its tasks and the scheduler loop over core/, sending through aiogram and the
other channels."""

import sys

from bot.telegram_schemas import defer_telegram_schemas

defer_telegram_schemas()  # before worker.channels imports aiogram


def _taskiq_without_fastapi() -> None:
    """Import taskiq's dependency resolver without FastAPI, unless FastAPI is loaded already.

    The resolver imports ``fastapi.params`` when FastAPI is installed, to also accept FastAPI's
    ``Depends`` in task signatures (and goes without it on ImportError). vestnik's tasks never
    use it, and importing FastAPI was a tenth of the start of the process that runs the worker,
    the scheduler and the bots (0.34 s of CPU on a slow day), the one process of them that has
    no web server. FastAPI stays importable afterwards; only the resolver goes without it."""
    if "fastapi" in sys.modules or "taskiq_dependencies.graph" in sys.modules:
        return
    sys.modules["fastapi.params"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import taskiq_dependencies.graph  # noqa: F401
    finally:
        if "fastapi.params" in sys.modules and sys.modules["fastapi.params"] is None:
            del sys.modules["fastapi.params"]


_taskiq_without_fastapi()
