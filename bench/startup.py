"""Benchmark: how long `vestnik run` takes to be ready, cold (first start: initdb) and warm (the
data dir exists), against starting the embedded Postgres and Redis alone in the same process.

Run: python bench/startup.py [--runs 3]
For each start it prints the seconds until the API first answers /healthz, until the bot polls
("vestnik bot ready"), until the banner ("vestnik is running": every part answers) and how long
Ctrl-C takes to stop everything; then p50 per figure and its ratio to the baseline (embedded
Postgres + Redis started and stopped on a warm data dir, no vestnik code). Goals on 2 idle cores:
warm ready <= 5 s, cold <= 20 s.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.arguments import bench_parser  # noqa: E402
from core.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Start:
    api: float
    bot: float
    ready: float
    stop: float


def start_once(data_dir: Path) -> Start:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VESTNIK_")}
    env |= {"VESTNIK_DATA_DIR": str(data_dir), "VESTNIK_EMULATOR_PORT": str(free_port())}
    env["VESTNIK_MAX_EMULATOR_PORT"] = str(free_port())
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "vestnik", "run", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    marks: dict[str, float] = {}

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            for mark in ("vestnik bot ready", "vestnik is running"):
                if mark in line and mark not in marks:
                    marks[mark] = time.monotonic() - began

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    api = 0.0
    while "vestnik is running" not in marks:
        if process.poll() is not None:
            reader.join(5)
            raise SystemExit("vestnik run exited:\n" + "".join(lines))
        if not api:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    api = time.monotonic() - began
            except httpx.HTTPError:
                pass
        if time.monotonic() - began > 300:
            raise SystemExit("not ready in 300 s:\n" + "".join(lines))
        time.sleep(0.05)
    ready, bot = marks["vestnik is running"], marks.get("vestnik bot ready", 0.0)
    stopping, said = time.monotonic(), len(lines)
    process.send_signal(signal.SIGINT)
    process.wait(120)
    stop = time.monotonic() - stopping
    reader.join(5)
    if stop > SLOW_STOP_SECONDS:  # say why: a part that had to be killed names itself
        print(f"  stopping took {stop:.1f} s; vestnik run said meanwhile:", flush=True)
        print("".join("    " + line for line in lines[said:]), end="", flush=True)
    return Start(api or ready, bot, ready, stop)


def baseline(data_dir: Path) -> float:
    """Embedded Postgres and Redis alone, warm: what any start must pay."""
    began = time.monotonic()
    postgres, redis = EmbeddedPostgres(data_dir), EmbeddedRedis(data_dir / "redis")
    postgres.start()
    redis.start()
    took = time.monotonic() - began
    redis.stop()
    postgres.stop()
    return took


# A stop slower than this has its output printed (each part has 10 s before it is killed).
SLOW_STOP_SECONDS = 5.0

# Seconds until every part answers, on 2 idle cores (issues: first impressions, fast reads).
READY_GOALS = {"cold": 20.0, "warm": 5.0}


def report(name: str, starts: list[Start], base: float) -> None:
    for figure in ("api", "bot", "ready", "stop"):
        values = [getattr(s, figure) for s in starts]
        p50 = statistics.median(values)
        goal = f"  goal <= {READY_GOALS[name]:g} s" if figure == "ready" else ""
        print(
            f"  {name:<5} {figure:<6} p50 {p50:6.2f} s  max {max(values):6.2f} s  "
            f"({p50 / base:4.1f}x the embedded servers alone){goal}",
            flush=True,
        )


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--runs", type=int, default=3, help="starts of each kind, cold and warm")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vestnik-bench-start-") as tmp:
        root = Path(tmp)
        cold = []
        for i in range(args.runs):
            print(f"cold start {i + 1}/{args.runs} …", flush=True)
            cold.append(start_once(root / f"cold-{i}"))
        warm_dir = root / "cold-0"
        warm = []
        for i in range(args.runs):
            print(f"warm start {i + 1}/{args.runs} …", flush=True)
            warm.append(start_once(warm_dir))
        bases = [baseline(warm_dir) for _ in range(args.runs)]
    base = statistics.median(bases)
    print(f"\nbaseline: embedded Postgres + Redis alone (warm) p50 {base:.2f} s")
    report("cold", cold, base)
    report("warm", warm, base)


if __name__ == "__main__":
    main()
