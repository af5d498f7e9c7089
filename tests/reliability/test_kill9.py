"""`kill -9` of a real `prepbot run` at each state boundary of a daily post, then a restart: no post lost, none doubled.

A daily post goes: claim the (channel, local date) row, send, record the platform message. The
process is SIGKILLed (no handler, no rollback of its own, no flush) with the post stopped at one
boundary, deterministically:

- before the claim: the test holds the write lock a claim needs, so the process waits for it;
- after the claim, before the send reached the platform: the fake holds the post request, not
  carried out, and the claim row is in the database;
- during the send: the fake has carried the post out (the message is on the platform) and never
  answers;
- after the send, before the record: the process has the platform's answer (it logs "landed"), and
  the test holds the write lock the record needs.

The three mid-post boundaries are reached at once, one channel each, in one process. Then the
claims left unrecorded are moved `CLAIM_TIMEOUT` into the past: the restart comes that much later,
when they are stale (waiting 45 s in real time would prove nothing more). The restarted process must
leave exactly one bot post per channel on the platform, found by its marker (Slack message
metadata through conversations.history; Discord history, the post sent with a nonce and
enforce_nonce) rather than sent again, and each prompt row `posted` with that message's id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.common import BotProcess
from bot import db
from bot.posting import CLAIM_TIMEOUT
from bot.settings import Settings
from tests.conftest import FIXTURE_BANK
from tests.fakes.slack import wait_until
from tests.reliability.platforms import Platform, platform  # noqa: F401 (the fixture)
from tests.reliability.support import (
    PROCESS_WAIT_SECONDS, backdate_claims, eventually, kill, launch, logged, prompt_rows, seed, waiting_to_claim,
    write_lock,
)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    yield engine
    await engine.dispose()


async def seeded(engine: AsyncEngine, platform: Platform, count: int) -> list[str]:
    """`count` channels on the platform, each due a minute ago."""
    channels = platform.new_channels(count)
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False), question_bank_dir=FIXTURE_BANK,
                        default_track="mini")
    await seed(engine, settings, platform.name, platform.workspace, {c: timedelta(minutes=1) for c in channels})
    return channels


def debug_environment(platform: Platform, engine: AsyncEngine) -> dict[str, str]:
    # DEBUG: the statements SQLAlchemy is about to run, and the poster's "landed" line, mark where the process is.
    return platform.environment(engine.url.render_as_string(hide_password=False)) | {"LOG_LEVEL": "DEBUG"}


async def restart_and_check(platform: Platform, engine: AsyncEngine, channels: list[str], folder: Path) -> None:
    """Start again; once every channel's row is posted: one post per channel on the platform, and it is the one recorded."""
    restarted = await launch(platform.environment(engine.url.render_as_string(hide_password=False)), folder, "restarted")
    try:
        async def all_posted() -> bool:
            assert restarted.process.returncode is None, restarted.log.read_text()
            rows = await prompt_rows(engine)
            return len(rows) == len(channels) and all(row.status == "posted" for row in rows.values())

        await eventually(all_posted, "every channel's prompt to be recorded")
    finally:
        await restarted.stop()
    rows = await prompt_rows(engine)
    for channel in channels:
        [prompt] = platform.prompts(channel)
        assert (rows[channel].message_id, rows[channel].marker, True) == (prompt.message_id, prompt.marker, prompt.thread_open), channel
    assert "Traceback" not in restarted.log.read_text(), restarted.log.read_text()


async def test_a_process_killed_before_it_claimed_leaves_no_claim_and_its_restart_posts_once(
    platform: Platform, engine: AsyncEngine, tmp_path: Path,
) -> None:
    channels = await seeded(engine, platform, 2)
    async with write_lock(engine):
        first = await launch(debug_environment(platform, engine), tmp_path, "first")
        try:
            # On PostgreSQL it gets as far as the claim's INSERT, on SQLite to its first transaction, and waits there.
            await eventually(lambda: waiting_to_claim(engine, first), "the process to wait for the lock")
        finally:
            await kill(first)
    assert await prompt_rows(engine) == {}
    assert all(platform.sends(channel) == 0 for channel in channels)

    await restart_and_check(platform, engine, channels, tmp_path)
    assert all(platform.sends(channel) == 1 for channel in channels)


async def test_a_process_killed_mid_post_at_every_boundary_is_reconciled_by_its_restart_never_doubled_never_missed(
    platform: Platform, engine: AsyncEngine, tmp_path: Path,
) -> None:
    channels = await seeded(engine, platform, 3)
    platform.holds.hold(platform.post_key, times=3)
    first = await launch(debug_environment(platform, engine), tmp_path, "first")
    try:
        await wait_until(lambda: len(platform.holds.held) == 3 or first.process.returncode is not None, PROCESS_WAIT_SECONDS,
                         "the three posts to reach the platform")
        assert first.process.returncode is None, first.log.read_text()
        before_send, during_send, before_record = platform.holds.held
        assert {row.status for row in (await prompt_rows(engine)).values()} == {"claimed"}, "claimed before the send"

        async with write_lock(engine):
            before_record.answer()
            await logged(first, "; recording it")
            during_send.land_unanswered()
            await wait_until(lambda: platform.prompts(platform.channel_of(during_send)), PROCESS_WAIT_SECONDS, "the post to land")
            await kill(first)
    finally:
        await kill_if_running(first)

    rows = await prompt_rows(engine)
    assert {channel: row.status for channel, row in rows.items()} == dict.fromkeys(channels, "claimed"), "nothing recorded"
    landed = {platform.channel_of(during_send), platform.channel_of(before_record)}
    assert {channel for channel in channels if platform.prompts(channel)} == landed
    sent = {channel: platform.sends(channel) for channel in channels}

    assert await backdate_claims(engine, CLAIM_TIMEOUT) == 3  # the restart comes CLAIM_TIMEOUT later: the claims are stale
    await restart_and_check(platform, engine, channels, tmp_path)
    resent = {channel: platform.sends(channel) - sent[channel] for channel in channels}
    # The post that never reached the platform is sent again; the two that landed are found by marker, not resent.
    assert resent == {channel: 0 if channel in landed else 1 for channel in channels}


async def kill_if_running(bot: BotProcess) -> None:
    if bot.process.returncode is None:
        await kill(bot)

