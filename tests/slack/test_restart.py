"""A post whose outcome is unknown (a crash mid-send, a lost response) is found by its metadata marker, never sent twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.posting import Outcome
from tests.conftest import FakeClock
from tests.fakes.slack import FakeSlack, wait_until
from tests.slack.conftest import CHANNEL, Running, Slack, slack_settings, start_adapter


@pytest.fixture
async def first(fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> AsyncIterator[Slack]:
    running = await start_adapter(slack_settings(fake_slack), sessions, clock)
    driver = Slack(fake_slack, running, sessions, clock)
    await driver.setup("08:00 UTC daily")  # the clock reads 08:00: today's question is due
    yield driver
    await driver.close()
    await running.stop()


async def restart(driver: Slack) -> Running:
    """Stop the running adapter and start a fresh one on the same database, a minute later."""
    await driver.running.stop()
    driver.clock.advance(seconds=60)
    return await start_adapter(slack_settings(driver.fake), driver.sessions, driver.clock)


async def test_a_restart_during_a_post_is_reconciled_by_the_marker_without_a_second_post(first: Slack) -> None:
    fake = first.fake
    fake.hang("chat.postMessage")
    tick = asyncio.create_task(first.running.core.tick())
    await wait_until(lambda: fake.calls_to("chat.postMessage"), what="the post to reach Slack")
    tick.cancel()  # the process dies after Slack took the post and before prepbot recorded it
    await asyncio.gather(tick, return_exceptions=True)
    fake.release()

    second = await restart(first)
    try:
        [result] = await second.core.tick()
        posted = fake.posts(CHANNEL, top_level=True)
        assert (result.outcome, result.message_id) == (Outcome.RECONCILED, posted[0]["ts"])
        assert len(posted) == 1 and len(fake.calls_to("chat.postMessage")) == 1
        [history] = fake.calls_to("conversations.history")
        assert history.args["include_all_metadata"] in ("1", "true", True)
        assert await second.core.tick() == []

        await first.switch_to(second)
        reply = await first.answer(posted[0]["ts"], "UALICE")
        assert await first.answers() == {reply["ts"]: reply["text"]}
    finally:
        await second.stop()


async def test_a_lost_response_is_not_blindly_resent(first: Slack) -> None:
    fake = first.fake
    fake.drop_connection("chat.postMessage")
    [failed] = await first.running.core.tick()
    assert failed.outcome is Outcome.FAILED
    assert len(fake.calls_to("chat.postMessage")) == 1, "no automatic retry of a post Slack may have taken"
    [again] = await first.running.core.tick()
    assert again.outcome is Outcome.IN_FLIGHT, "a fresh claim is left alone until it goes stale"

    second = await restart(first)
    try:
        [result] = await second.core.tick()
        assert result.outcome is Outcome.RECONCILED
        assert len(fake.posts(CHANNEL, top_level=True)) == 1
    finally:
        await second.stop()


async def test_a_post_that_never_reached_slack_is_sent_on_the_next_attempt(first: Slack) -> None:
    fake = first.fake
    fake.fail("chat.postMessage", "internal_error")
    [failed] = await first.running.core.tick()
    assert failed.outcome is Outcome.FAILED and fake.posts(CHANNEL) == []

    second = await restart(first)
    try:
        [result] = await second.core.tick()
        assert result.outcome is Outcome.POSTED
        assert len(fake.posts(CHANNEL, top_level=True)) == 1
    finally:
        await second.stop()


async def test_the_marker_is_found_past_the_first_page_of_a_busy_channels_history(first: Slack) -> None:
    fake = first.fake
    fake.hang("chat.postMessage")
    tick = asyncio.create_task(first.running.core.tick())
    await wait_until(lambda: fake.calls_to("chat.postMessage"), what="the post to reach Slack")
    tick.cancel()
    await asyncio.gather(tick, return_exceptions=True)
    fake.release()
    for n in range(450):  # the channel kept talking while prepbot was down
        fake.add_message(CHANNEL, {"type": "message", "user": "UALICE", "text": f"chatter {n}", "ts": f"{2_000_000_000 + n}.000100"})
    fake.add_message(CHANNEL, {"type": "message", "user": "UOTHER", "ts": "2000000999.000100", "text": "look-alike",
                               "metadata": {"event_type": "another_apps_event", "event_payload": {"marker": "x"}}})

    second = await restart(first)
    try:
        [result] = await second.core.tick()
        assert result.outcome is Outcome.RECONCILED
        assert len(fake.calls_to("conversations.history")) == 3
        assert len(fake.posts(CHANNEL, top_level=True)) == 1
    finally:
        await second.stop()
