"""Slack's limits: 429 with Retry-After is waited out and retried; posts to one channel are paced."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.slack import SlackAdapter
from adapters.slack.port import Pacer
from bot.actions import PostReply
from bot.messages import Message
from bot.refs import ChannelRef, MessageRef, WorkspaceRef
from tests.conftest import FakeClock
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import CHANNEL, Slack, slack_settings


async def test_a_rate_limited_post_is_retried_after_retry_after(slack: Slack) -> None:
    await slack.setup()
    slack.fake.rate_limit("chat.postMessage", times=1, retry_after=1)
    await slack.post_prompt()
    attempts = slack.fake.calls_to("chat.postMessage")
    assert len(attempts) == 2
    assert attempts[1].at - attempts[0].at >= 1
    assert len(slack.fake.posts(CHANNEL, top_level=True)) == 1


async def test_a_rate_limited_lookup_is_retried_too(slack: Slack) -> None:
    slack.fake.rate_limit("users.info", times=1, retry_after=0)
    assert (await slack.command("setup 09:00 UTC")).startswith("Done.")
    assert len(slack.fake.calls_to("users.info")) == 2


class SleepRecorder:
    """A fake `asyncio.sleep` that moves a fake monotonic clock instead of waiting."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.clock[0] += seconds


async def test_posts_to_one_channel_are_spaced_a_second_apart_and_other_channels_do_not_wait() -> None:
    now = [100.0]
    sleep = SleepRecorder(now)
    pacer = Pacer(1.0, clock=lambda: now[0], sleep=sleep)
    for key in ("T/C1", "T/C1", "T/C2", "T/C1"):
        await pacer.wait(key)
    assert sleep.slept == [1.0, 1.0]
    now[0] += 5
    await pacer.wait("T/C1")
    assert sleep.slept == [1.0, 1.0], "a channel quiet for a while posts at once"


async def test_the_adapter_paces_its_own_posts(
    fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    adapter = SlackAdapter(slack_settings(fake_slack), sessions, clock=clock, pace_seconds=0.3)
    thread = MessageRef(ChannelRef(WorkspaceRef("slack", fake_slack.team_id), CHANNEL), "1.000001")
    for text in ("one", "two", "three"):
        await adapter.port.perform(PostReply(thread, Message.text(text)))
    calls = fake_slack.calls_to("chat.postMessage")
    assert [c.args["text"] for c in calls] == ["one", "two", "three"]
    # Two intervals between three posts; arrival times at the fake jitter by a few milliseconds.
    assert calls[-1].at - calls[0].at >= 0.5
