"""Restart catch-up: a post missed while the bot was down goes out within 60 s of start inside the lateness window, and not after it.

The real composition runs: `bot.app.run` in process with a waiting test adapter (so only the
scheduler can post), and `python -m bot run --platform console` as a separate process.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import app, db, models
from bot.core import PrepBot
from bot.fake_chat import FakeChat
from bot.settings import Settings
from tests.conftest import FIXTURE_BANK
from tests.reliability.support import seed

ROOT = Path(__file__).parent.parent.parent
CATCH_UP_LIMIT = 60.0


class WaitingAdapter:
    """A platform that only records what the core asks of it, and serves until told to stop."""

    platform = "restart-test"

    def __init__(self) -> None:
        self.chat = FakeChat()
        self.stop = asyncio.Event()

    @property
    def port(self) -> FakeChat:
        return self.chat

    async def run(self, core: PrepBot) -> None:
        await self.stop.wait()


async def prompts_by_channel(engine: AsyncEngine) -> dict[str, list[str]]:
    async with db.session_factory(engine)() as session:
        rows = await session.execute(select(models.Channel.external_id, models.Prompt.status).join(
            models.Prompt, models.Prompt.channel_id == models.Channel.id))
        found: dict[str, list[str]] = {}
        for channel, status in rows:
            found.setdefault(channel, []).append(status)
        return found


async def poll(condition: object, timeout: float) -> float:
    """Seconds until `condition()` (a coroutine function) holds; fails after `timeout`."""
    started = time.monotonic()
    while not await condition():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
async def engine_only(database_url: str) -> AsyncIterator[tuple[AsyncEngine, str]]:
    engine = db.create_engine(database_url)
    yield engine, database_url
    await engine.dispose()


async def test_a_post_missed_an_hour_ago_goes_out_within_a_minute_of_start_and_one_missed_past_the_window_does_not(
    engine_only: tuple[AsyncEngine, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, url = engine_only
    # Ticks ten minutes apart: only the tick at start can post within the minute.
    settings = Settings(database_url=url, question_bank_dir=FIXTURE_BANK, default_track="mini", lateness=timedelta(hours=3),
                        tick_seconds=600)
    await seed(engine, settings, WaitingAdapter.platform, "W1", {"an-hour-late": timedelta(hours=1), "four-hours-late": timedelta(hours=4)})
    adapter = WaitingAdapter()
    monkeypatch.setattr(app, "build_adapter", lambda *args: adapter)

    started = time.monotonic()
    running = asyncio.create_task(app.run(settings, [adapter.platform], io.StringIO(), io.StringIO()))
    try:
        async def posted() -> bool:
            assert not running.done(), running
            return (await prompts_by_channel(engine)).get("an-hour-late") == ["posted"]

        await poll(posted, CATCH_UP_LIMIT)
        elapsed = time.monotonic() - started
        assert elapsed < CATCH_UP_LIMIT
        [(action, _)] = adapter.chat.prompts
        assert action.channel.id == "an-hour-late"
        # The same tick decided both channels: the one past the lateness window is skipped, not posted late.
        assert "four-hours-late" not in await prompts_by_channel(engine)
    finally:
        adapter.stop.set()
        await asyncio.wait_for(running, 30)


async def test_prepbot_run_as_a_process_posts_the_missed_question_within_a_minute_and_only_once(
    engine_only: tuple[AsyncEngine, str], tmp_path: Path,
) -> None:
    engine, url = engine_only
    settings = Settings(database_url=url, question_bank_dir=FIXTURE_BANK, default_track="mini")
    await seed(engine, settings, "console", "local", {"practice": timedelta(hours=1)})
    env = {**os.environ, "DATABASE_URL": url, "QUESTION_BANK_DIR": str(FIXTURE_BANK), "PREP_DEFAULT_TRACK": "mini",
           "PREP_TICK_SECONDS": "600", "PYTHONPATH": str(ROOT)}
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "DISCORD_TOKEN"):
        env.pop(name, None)

    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--platform", "console", cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    seen = ""
    try:
        async def prompt_printed() -> bool:
            nonlocal seen
            try:
                seen += (await asyncio.wait_for(process.stdout.readline(), 0.5)).decode()  # type: ignore[union-attr]
            except TimeoutError:
                pass
            return "#practice · prepbot" in seen

        await poll(prompt_printed, CATCH_UP_LIMIT)
        elapsed = time.monotonic() - started
    finally:
        process.stdin.close()
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert elapsed < CATCH_UP_LIMIT
    seen += out.decode()
    assert seen.count("#practice · prepbot:") == 1, seen  # the post itself; a re-show says "(the current question)"
    assert await prompts_by_channel(engine) == {"practice": ["posted"]}
