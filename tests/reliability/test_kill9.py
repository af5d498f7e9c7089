"""`kill -9` of a real `prepbot run` at each state boundary of a daily post, then a restart: no post lost, none doubled.

A daily post goes: claim the (channel, local date) row, send, record the platform message. Four
channels fall due; prepbot is SIGKILLed (no handler runs, nothing of its own is rolled back or
flushed) twice, each time with the posts stopped at known boundaries, and then started a third time:

1. before the claim: the test holds the write lock a claim needs (on PostgreSQL the process waits
   at the claim's INSERT, on SQLite at its first transaction), and kills it there;
2. the next process claims all four channels; one post goes through and is recorded, and the
   other three are stopped, one at each boundary in the post, all in that one process:
   - after the claim, before the send reached the platform: the fake holds the request, not
     carried out, with the claim row in the database;
   - during the send: the fake carries the post out (the message is on the platform) and never answers;
   - after the send, before the record: the process has the platform's answer (it logs "landed")
     and waits for the write lock the test holds;
3. the claims left unrecorded are moved `CLAIM_TIMEOUT` into the past, as the restart comes that
   much later (waiting 45 s in real time would prove nothing more), and prepbot starts again.

It must leave exactly one bot post per channel on the platform, each prompt row `posted` with
that message's id: the two posts that landed are found by their marker (Slack message metadata
through conversations.history; Discord history, the post sent with a nonce and enforce_nonce),
not sent again, and the one that never reached the platform is sent once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import db
from bot.posting import CLAIM_TIMEOUT
from bot.settings import Settings
from tests.conftest import FIXTURE_BANK
from tests.fakes.slack import wait_until
from tests.reliability.platforms import Platform
from tests.reliability.support import (
    PROCESS_WAIT_SECONDS, backdate_claims, eventually, kill, launch, logged, prompt_rows, seed, waiting_to_claim, write_lock,
)

LANDED = "; recording it"  # the poster's DEBUG line once a send has landed, just before its record


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    yield engine
    await engine.dispose()


async def test_prepbot_killed_at_every_boundary_of_a_post_and_restarted_posts_each_channel_exactly_once(
    platform: Platform, engine: AsyncEngine, tmp_path: Path,
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    channels = platform.new_channels(4)
    await seed(engine, Settings(database_url=url, question_bank_dir=FIXTURE_BANK, default_track="mini"),
               platform.name, platform.workspace, dict.fromkeys(channels, timedelta(minutes=1)))
    # DEBUG for the poster's "landed" line.
    environment = platform.environment(url) | {"LOG_LEVEL": "DEBUG"}

    # 1. Killed before it claimed.
    async with write_lock(engine):
        first = await launch(environment, tmp_path, "first")
        try:
            await eventually(lambda: waiting_to_claim(engine, first), "the process to wait for the lock to claim")
        finally:
            await kill(first)
    assert await prompt_rows(engine) == {}, "no claim outlives a process killed before it claimed"
    assert [platform.sends(channel) for channel in channels] == [0] * 4

    # 2. Killed with one post stopped at each boundary: before the send, during it, before the record.
    platform.holds.hold(platform.post_key, times=3)
    second = await launch(environment, tmp_path, "second")
    try:
        async def three_held_and_one_posted() -> bool:
            assert second.process.returncode is None, second.log.read_text()
            return len(platform.holds.held) == 3 and [r.status for r in (await prompt_rows(engine)).values()].count("posted") == 1

        await eventually(three_held_and_one_posted, "three posts held at the platform and the fourth recorded")
        before_send, during_send, before_record = platform.holds.held
        stopped = [platform.channel_of(held) for held in platform.holds.held]
        assert {channel: row.status for channel, row in (await prompt_rows(engine)).items() if channel in stopped} == dict.fromkeys(
            stopped, "claimed"), "each claimed before its send"
        async with write_lock(engine):
            before_record.answer()
            await logged(second, LANDED, times=2)  # the fourth channel's post, then this one
            during_send.land_unanswered()
            await wait_until(lambda: platform.prompts(platform.channel_of(during_send)), PROCESS_WAIT_SECONDS, "the post to land")
            await kill(second)
    finally:
        if second.process.returncode is None:
            await kill(second)
    rows = await prompt_rows(engine)
    assert {channel: rows[channel].status for channel in stopped} == dict.fromkeys(stopped, "claimed"), "none of the three recorded"
    landed = {platform.channel_of(during_send), platform.channel_of(before_record)}
    assert {channel for channel in stopped if platform.prompts(channel)} == landed
    sent = {channel: platform.sends(channel) for channel in channels}

    # 3. The restart, CLAIM_TIMEOUT later: the three claims are stale.
    assert await backdate_claims(engine, CLAIM_TIMEOUT) == 3
    restarted = await launch(platform.environment(url), tmp_path, "restarted")
    try:
        async def all_posted() -> bool:
            assert restarted.process.returncode is None, restarted.log.read_text()
            found = await prompt_rows(engine)
            return len(found) == len(channels) and all(row.status == "posted" for row in found.values())

        await eventually(all_posted, "every channel's prompt to be recorded")
    finally:
        await restarted.stop()
    assert "Traceback" not in restarted.log.read_text(), restarted.log.read_text()

    rows = await prompt_rows(engine)
    for channel in channels:
        [prompt] = platform.prompts(channel)
        assert (rows[channel].message_id, rows[channel].marker, True) == (prompt.message_id, prompt.marker, prompt.thread_open), channel
    resent = {channel: platform.sends(channel) - sent[channel] for channel in channels}
    # Only the post that never reached the platform is sent again; the two that landed are found by marker.
    assert resent == {channel: 0 if channel in landed or channel not in stopped else 1 for channel in channels}
