"""Several `prepbot run` OS processes on one database, posting to one fake platform: 200 channels due at once get one post each.

Three processes share a PostgreSQL database, two a SQLite file; all post to one fake Slack, or to
one fake Discord. They start together on a new, empty database, so they also race to migrate it
and to load the question bank. Once every process serves the platform, a workspace with 200
channels due a minute ago is added in one transaction, so every process's next tick finds all of
them due at the same moment, as when the minute they are scheduled for arrives. Only the
database's claims stand between the processes: each channel must end with exactly one post on the
platform, sent once, and its prompt row `posted` with that message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import db
from tests.conftest import Databases
from tests.reliability.platforms import Platform
from tests.reliability.support import add_workspace, eventually, launch, logged, prompt_rows

CHANNELS = 200
PROCESSES = {"sqlite": 2, "postgresql": 3}


@pytest.fixture
async def engine(databases: Databases) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(await databases.new())
    yield engine
    await engine.dispose()


async def test_several_processes_on_one_database_post_each_of_200_channels_due_at_once_exactly_once(
    platform: Platform, engine: AsyncEngine, tmp_path: Path,
) -> None:
    # A tick a second: every process joins the race within a second, without re-reading 200 claims five times a second.
    environment = platform.environment(engine.url.render_as_string(hide_password=False)) | {"PREP_TICK_SECONDS": "1"}
    bots = [await launch(environment, tmp_path, f"prepbot-{n}") for n in range(PROCESSES[engine.dialect.name])]
    try:
        await asyncio.gather(*(logged(bot, platform.ready_line) for bot in bots))
        channels = platform.new_channels(CHANNELS)
        await add_workspace(engine, platform.name, platform.workspace, dict.fromkeys(channels, timedelta(minutes=1)))

        async def all_posted() -> bool:
            for bot in bots:
                assert bot.process.returncode is None, bot.log.read_text()
            rows = await prompt_rows(engine)
            return len(rows) == CHANNELS and all(row.status == "posted" for row in rows.values())

        await eventually(all_posted, f"all {CHANNELS} prompts to be recorded")
    finally:
        codes = await asyncio.gather(*(bot.stop() for bot in bots))
    logs = [bot.log.read_text() for bot in bots]
    assert codes == [130] * len(bots) and not any("Traceback" in log for log in logs), "\n".join(logs)

    rows = await prompt_rows(engine)
    for channel in channels:
        [prompt] = platform.prompts(channel)
        assert (rows[channel].message_id, rows[channel].marker, True) == (prompt.message_id, prompt.marker, prompt.thread_open)
    assert {channel: platform.sends(channel) for channel in channels} == dict.fromkeys(channels, 1), "sent once, never again"
    # Each process logs what it posted itself: one post per channel in all, however the race was shared out.
    posted_by = [log.count("INFO bot.posting: posted prompt") for log in logs]
    assert sum(posted_by) == CHANNELS, posted_by
