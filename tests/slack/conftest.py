"""Fixtures for Slack tests: a fake Slack, the real adapter serving HTTP on 127.0.0.1, and a signed client."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.slack import SlackAdapter
from bot import models, progress
from bot.core import PrepBot
from bot.ports import ChatRouter
from bot.settings import Settings
from tests.conftest import FakeClock
from tests.fakes.slack import FakeSlack
from tests.slack.payloads import SIGNING_SECRET, Answer, Payloads, SignedClient

CHANNEL = "C0PRACTICE"
ADMIN = "UADMIN"
LISTED_ORGANIZER = "ULISTED"
MEMBERS = ("UALICE", "UBOB", "UCAROL", "UDAN")
OTHER_BOT = "UOTHERBOT"


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    fake.add_user(ADMIN, is_admin=True)
    fake.add_user(LISTED_ORGANIZER)
    for member in MEMBERS:
        fake.add_user(member)
    fake.add_user(OTHER_BOT, is_bot=True)
    yield fake
    await fake.stop()


def slack_settings(fake: FakeSlack, **changes: Any) -> Settings:
    base = Settings(
        host="127.0.0.1", port=0, slack_bot_token=fake.bot_token, slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake.api_url, organizers=frozenset({LISTED_ORGANIZER}), default_track="mini",
    )
    return dataclasses.replace(base, **changes)


class Running:
    """A started `SlackAdapter` with its core; stop it to simulate the process going away."""

    def __init__(self, adapter: SlackAdapter, core: PrepBot, task: asyncio.Task[None]) -> None:
        self.adapter, self.core, self.task = adapter, core, task

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.adapter.http_port}"

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def start_adapter(settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: FakeClock, **options: Any) -> Running:
    adapter = SlackAdapter(settings, sessions, clock=clock, pace_seconds=0, **options)
    core = PrepBot(sessions, ChatRouter({"slack": adapter.port}), organizers=settings.organizers,
                   default_track=settings.default_track, clock=clock)
    task = asyncio.create_task(adapter.run(core))
    ready = asyncio.create_task(adapter.ready.wait())
    await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        task.result()
    assert adapter.ready.is_set(), "the Slack adapter did not become ready"
    return Running(adapter, core, task)


class Slack:
    """Drives a running adapter the way a Slack workspace would, and reads back what happened."""

    def __init__(self, fake: FakeSlack, running: Running, sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> None:
        self.fake, self.running, self.sessions, self.clock = fake, running, sessions, clock
        self.client = SignedClient(running.url)
        self.payloads = Payloads(fake.team_id, fake.bot_user_id, fake.response_url(), start=clock().timestamp())

    @property
    def adapter(self) -> SlackAdapter:
        return self.running.adapter

    async def switch_to(self, running: Running) -> None:
        """Talk to another running adapter from now on (after a restart)."""
        await self.client.close()
        self.running, self.client = running, SignedClient(running.url)

    async def close(self) -> None:
        await self.client.close()

    async def event(self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None) -> Answer:
        """Deliver one Events API event and wait for the work it started after the ack."""
        answer = await self.client.event(self.payloads.envelope(event, event_id), retry_num=retry_num)
        await self.adapter.drain()
        return answer

    async def command(self, text: str, user: str = ADMIN, *, command: str = "/prep", channel: str = CHANNEL) -> str:
        """Run a slash command and return the private reply it got through the response URL."""
        key = f"cmd-{len(self.fake.responses)}-{user}"
        answer = await self.client.command(self.payloads.command(command, text, user, channel, key=key))
        assert answer.status == 200, answer
        await self.adapter.drain()
        replies = [r for r in self.fake.responses if r["key"] == key]
        assert len(replies) == 1, f"expected one reply to {command} {text}, got {replies}"
        return str(replies[0]["text"])

    async def setup(self, spec: str = "09:00 UTC daily") -> None:
        reply = await self.command(f"setup {spec}")
        assert reply.startswith("Done."), reply

    async def post_prompt(self, channel: str = CHANNEL) -> str:
        """`/prep now` as an organizer; the new prompt's ts."""
        before = len(self.fake.posts(channel, top_level=True))
        reply = await self.command("now", channel=channel)
        assert reply.startswith("Posted today's question"), reply
        prompts = self.fake.posts(channel, top_level=True)
        assert len(prompts) == before + 1
        return str(prompts[-1]["ts"])

    async def answer(self, thread_ts: str, user: str, text: str = "My answer: measure, then fix.") -> dict[str, Any]:
        reply = self.payloads.reply(CHANNEL, thread_ts, user, text)
        assert (await self.event(reply)).status == 200
        return reply

    async def react(self, user: str, reaction: str, message: dict[str, Any], *, removed: bool = False) -> Answer:
        kind = "reaction_removed" if removed else "reaction_added"
        return await self.event(self.payloads.reaction(kind, user, reaction, CHANNEL, message["ts"], message.get("user")))

    async def ratings(self) -> dict[tuple[str, str], int]:
        """{(answer message ts, rater id): score} for every rating that counts."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(models.Rating.message_id, models.Rating.rater_id, models.Rating.score).where(models.Rating.counted.is_(True))
            )).all()
            raters = {m.id: m.external_id for m in (await session.scalars(select(models.Member))).all()}
        return {(row.message_id, raters[row.rater_id]): row.score for row in rows}

    async def answers(self) -> dict[str, str | None]:
        """{message ts: text} of the answers that stand."""
        async with self.sessions() as session:
            standing = (await session.scalars(select(models.Answer).where(*progress.STANDING))).all()
        return {answer.message_id: answer.text for answer in standing}


@pytest.fixture
async def slack(fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> AsyncIterator[Slack]:
    running = await start_adapter(slack_settings(fake_slack), sessions, clock)
    driver = Slack(fake_slack, running, sessions, clock)
    yield driver
    await driver.close()
    await running.stop()
