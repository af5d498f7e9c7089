"""What the process benchmarks share: a `prepbot run` child process, its database, and the machine's description."""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_BANK = ROOT / "tests" / "fixtures" / "bank"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
START_SECONDS = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(samples: list[float], share: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def machine() -> dict[str, object]:
    """The figures a result is meaningless without: cores, CPU model, Python, and the load when it ran."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "load_average_1m": round(os.getloadavg()[0], 2)}


@asynccontextmanager
async def database(backend: str, folder: Path, postgres_url: str = DEFAULT_POSTGRES_URL) -> AsyncIterator[str]:
    """A fresh database URL: a SQLite file in `folder`, or a PostgreSQL database created and dropped around the run."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'prepbot.db'}"
        return
    name = f"prepbot_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def bot_environment(database_url: str, port: int, **extra: str) -> dict[str, str]:
    """The environment of a `prepbot run` serving only what the benchmark configures."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "PREP_", "DATABASE_URL"))}
    return inherited | {
        "DATABASE_URL": database_url, "HOST": "127.0.0.1", "PORT": str(port), "QUESTION_BANK_DIR": str(FIXTURE_BANK),
        "PREP_DEFAULT_TRACK": "mini", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
    } | extra


class BotProcess:
    """A `python -m bot run` child process, its HTTP port and its log."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait_healthy(self) -> None:
        deadline = asyncio.get_running_loop().time() + START_SECONDS
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"prepbot exited early:\n{self.log.read_text()}")
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"prepbot never became healthy:\n{self.log.read_text()}")
                await asyncio.sleep(0.05)

    async def stop(self) -> int | None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode


@asynccontextmanager
async def running_bot(
    environment: dict[str, str], folder: Path, command: tuple[str, ...] = ("-m", "bot", "run"), *, healthz: bool = True,
) -> AsyncIterator[BotProcess]:
    """`prepbot run` (or another Python `command`) until the block ends; with `healthz`, healthy before the block starts.

    Without Slack there is no HTTP server to ask, so the caller waits for readiness its own way.
    """
    log = folder / "prepbot.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *command, env=environment, cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink)
    bot = BotProcess(process, int(environment["PORT"]), log)
    try:
        if healthz:
            await bot.wait_healthy()
        yield bot
    finally:
        await bot.stop()


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far, user and system, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of a process now, from /proc (Linux); `field="VmHWM"` for its peak so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for process {pid}")
