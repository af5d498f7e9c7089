"""Helpers for the reliability tests: seeded and reset databases, snapshots by natural keys, and `prepbot run` as OS processes."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from benchmarks.common import BotProcess, bot_environment, free_port
from bot import app, db, ids, models
from bot.schedule import EVERY_DAY
from bot.settings import Settings

# The bank's own tables survive a reset: every example sees the same questions with the same ids.
KEEP = {"tracks", "questions"}


async def reset(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Empty every table but the question bank's, with ids starting again from 1 (and forget cached ids)."""
    ids.forget(sessions.kw["info"])
    tables = [t for t in reversed(models.Base.metadata.sorted_tables) if t.name not in KEEP]
    async with sessions() as session, session.begin():
        if session.bind.dialect.name == "postgresql":
            # Table names come from the models, never from input.
            await session.execute(text(f"TRUNCATE TABLE {', '.join(t.name for t in tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await session.execute(delete(table))


async def all_rows(sessions: async_sessionmaker[AsyncSession], *, skip: frozenset[str] = frozenset()) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but `skip`), sorted, for before/after comparisons."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with sessions() as session:
        for table in models.Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            found = (await session.execute(select(table))).all()
            rows[table.name] = sorted((tuple(row) for row in found), key=repr)
    return rows


def examples(default: int) -> int:
    """Hypothesis' example count, scaled by PREPBOT_FUZZ_SCALE (e.g. 10 for a long hunt before a release)."""
    return max(1, round(default * float(os.environ.get("PREPBOT_FUZZ_SCALE", "1"))))


async def seed(engine: AsyncEngine, settings: Settings, platform: str, workspace: str, channels: dict[str, timedelta]) -> None:
    """A migrated database whose channels were each due `ago` ago, daily, while the bot was down."""
    await app.prepare_database(settings, engine)
    await add_workspace(engine, platform, workspace, channels)


async def add_workspace(engine: AsyncEngine, platform: str, workspace: str, channels: dict[str, timedelta]) -> None:
    """A workspace and its channels, each scheduled daily at the minute `ago` ago, added in one transaction."""
    now = datetime.now(UTC)
    async with db.session_factory(engine)() as session, session.begin():
        space = models.Workspace(platform=platform, external_id=workspace, created_at=now)
        session.add(space)
        await session.flush()
        session.add_all(models.Channel(
            workspace_id=space.id, external_id=external, track="mini", post_time=(now - ago).time().replace(second=0, microsecond=0),
            timezone="UTC", weekdays=EVERY_DAY, paused=False, created_at=now - timedelta(days=7), updated_at=now - timedelta(days=7),
        ) for external, ago in channels.items())


# ---- prepbot as OS processes: the kill -9 and many-process tests ---------------------------------

PROCESS_WAIT_SECONDS = 60.0


def process_environment(database_url: str, **platform: str) -> dict[str, str]:
    """A `prepbot run` on `database_url` ticking five times a second, with the platform's variables."""
    return bot_environment(database_url, 0, PREP_TICK_SECONDS="0.2", LOG_LEVEL="INFO") | platform


async def launch(environment: dict[str, str], folder: Path, name: str) -> BotProcess:
    """Start `python -m bot run` on a free port (not waiting for it to be ready), logging to `folder/<name>.log`."""
    log, port = folder / f"{name}.log", free_port()
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=environment | {"PORT": str(port)}, cwd=folder,
            stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink)
    return BotProcess(process, port, log)


async def kill(bot: BotProcess) -> None:
    """SIGKILL: no handler runs, nothing is flushed or rolled back by the process itself."""
    bot.process.kill()
    await bot.process.wait()


async def logged(bot: BotProcess, wanted: str, timeout: float = PROCESS_WAIT_SECONDS, *, times: int = 1) -> None:
    """Wait until the process has logged `wanted` `times` times; fail, with the log, if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while (log := bot.log.read_text(errors="replace")).count(wanted) < times:
        if bot.process.returncode is not None or time.monotonic() > deadline:
            raise AssertionError(f"never logged {wanted!r} {times} times (exit code {bot.process.returncode}):\n{log}")
        await asyncio.sleep(0.02)


async def eventually(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = PROCESS_WAIT_SECONDS) -> None:
    """Poll the coroutine function `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def write_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold what a claim and a record must wait for: SQLite's write lock, or on PostgreSQL an EXCLUSIVE lock on prompts.

    Readers go on (SQLite in WAL mode; PostgreSQL's EXCLUSIVE lets ACCESS SHARE through).
    On SQLite every prepbot transaction starts with BEGIN IMMEDIATE, so it waits at its start.
    """
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("LOCK TABLE prompts IN EXCLUSIVE MODE"))
        else:
            await connection.execute(select(1))  # starts the transaction: the engine's BEGIN IMMEDIATE
        try:
            yield
        finally:
            await connection.rollback()


async def waiting_to_claim(engine: AsyncEngine, bot: BotProcess) -> bool:
    """Whether the process waits for `write_lock` to claim: on PostgreSQL, its claim's INSERT waits on the lock;
    on SQLite, it has the database file open, so its next transaction is the one that waits."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            return bool(await connection.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO prompts%'")))
    database = Path(engine.url.database or "").resolve()
    try:
        return any(Path(f"/proc/{bot.pid}/fd/{fd}").resolve() == database for fd in os.listdir(f"/proc/{bot.pid}/fd"))
    except OSError:  # it exited, or a descriptor closed as we looked
        return False


@dataclass(frozen=True, slots=True)
class PromptRow:
    status: str
    message_id: str | None
    marker: str


async def prompt_rows(engine: AsyncEngine) -> dict[str, PromptRow]:
    """Each channel's prompt row (one date per channel in these tests), by the channel's platform id."""
    async with db.session_factory(engine)() as session:
        rows = (await session.execute(
            select(models.Channel.external_id, models.Prompt.status, models.Prompt.message_id, models.Prompt.marker)
            .join(models.Prompt, models.Prompt.channel_id == models.Channel.id))).all()
    found: dict[str, PromptRow] = {}
    for channel, status, message_id, marker in rows:
        assert channel not in found, f"two prompt rows for {channel}"
        found[channel] = PromptRow(status, message_id, marker)
    return found


async def backdate_claims(engine: AsyncEngine, by: timedelta) -> int:
    """Move every unrecorded claim `by` into the past, as if that much time passed before the restart; how many."""
    async with db.session_factory(engine)() as session, session.begin():
        claimed = (await session.scalars(select(models.Prompt).where(models.Prompt.status == "claimed"))).all()
        for prompt in claimed:
            prompt.claimed_at -= by
        return len(claimed)
