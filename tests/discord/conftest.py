"""Fixtures for the Discord adapter: a fake Discord, and the real discord.py client connected to it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import discord.gateway
import discord.http
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.discord import DiscordAdapter
from bot import models
from bot.core import PrepBot
from bot.settings import Settings
from tests.fakes.discord import FakeDiscord, FakeUser, Json

KEYCAPS = {n: f"{n}\ufe0f\u20e3" for n in range(1, 6)}
CLIENT_OPTIONS = {"guild_ready_timeout": 0.05}


@pytest.fixture(autouse=True)
def restore_discord_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """`redirect` sets process-wide URLs in discord.py; put them back after each test."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


@pytest.fixture
def message_content() -> bool:
    return True


def settings_for(fake: FakeDiscord, database_url: str = "sqlite+aiosqlite://", **changes: Any) -> Settings:
    values: dict[str, Any] = dict(database_url=database_url, discord_token=fake.token, discord_api_url=fake.api_url,
                                  discord_gateway_url=fake.gateway_url, default_track="mini")
    return replace(Settings(), **{**values, **changes})


@dataclass
class Bot:
    """The adapter serving the fake, and helpers that act as the server's members would."""

    fake: FakeDiscord
    adapter: DiscordAdapter
    core: PrepBot
    task: asyncio.Task[None]
    sessions: async_sessionmaker[AsyncSession]

    async def command(self, user: FakeUser, *path: str, channel_id: int | None = None, **options: Any) -> str:
        interaction = await self.fake.answered(await self.fake.invoke(user, "prep", *path, options=options, channel_id=channel_id))
        return interaction.reply_text()

    async def setup_channel(self) -> None:
        reply = await self.command(self.fake.organizer, "setup", time="09:00", timezone="UTC", days="daily")
        assert reply.startswith("Done."), reply

    async def post_prompt(self) -> Json:
        """`/prep now`: the prompt message, once its thread is open."""
        before = len(self.fake.bot_posts())
        reply = await self.command(self.fake.organizer, "now")
        assert reply.startswith("Posted today's question"), reply
        prompt = self.fake.bot_posts()[before]
        await self.fake.wait_for(lambda: self.fake.thread(int(prompt["id"])), what="the prompt's thread")
        return prompt

    async def answer(self, user: FakeUser, thread_id: int, text: str) -> Json:
        message = await self.fake.post(user, thread_id, text)
        await self.wait_for_answer(int(message["id"]))
        return message

    async def wait_for_answer(self, message_id: int) -> models.Answer:
        return await poll(lambda: self.answer_row(message_id), what=f"answer {message_id} to be recorded")  # type: ignore[no-any-return]

    async def answer_row(self, message_id: int | str) -> models.Answer | None:
        async with self.sessions() as session:
            return await session.scalar(select(models.Answer).where(models.Answer.message_id == str(message_id)))

    async def ratings(self, message_id: int | str) -> dict[int, int]:
        """The rating in force per rater (Discord user id) on a message."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(models.Member.external_id, models.Rating.score)
                .join(models.Member, models.Member.id == models.Rating.rater_id)
                .where(models.Rating.message_id == str(message_id)))
            return {int(member): score for member, score in rows}

    async def settle(self) -> None:
        """Wait until every gateway event sent so far has been received and handled.

        The gateway is ordered: once a sentinel sent last has arrived, every earlier event has too,
        and its handler task exists; then those tasks are awaited.
        """
        client = self.adapter.client
        assert client is not None
        token = f"sentinel-{uuid.uuid4().hex[:8]}"
        arrived = asyncio.ensure_future(client.wait_for(  # type: ignore[attr-defined]
            "raw_reaction_add", check=lambda payload: payload.emoji.name == token, timeout=10))
        await self.fake.react(self.fake.carol, self.fake.channel_id, 1, token)
        await arrived
        current = asyncio.current_task()
        handlers = [t for t in asyncio.all_tasks() if t is not current and t.get_name().startswith("discord.py: on_")]
        await asyncio.wait_for(asyncio.gather(*handlers, return_exceptions=True), 10)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def poll(check: Any, timeout: float = 10.0, what: str = "a condition") -> Any:
    """Await `check()` until truthy, at most `timeout` seconds (a bounded wait, never a fixed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def start_bot(fake: FakeDiscord, sessions: async_sessionmaker[AsyncSession], *, requests_per_second: float = 30.0,
                    adapter_options: dict[str, Any] | None = None, **settings: Any) -> Bot:
    adapter = DiscordAdapter(settings_for(fake, **settings), sessions, first_retry_seconds=0.05,
                             max_retry_seconds=0.4, client_options=CLIENT_OPTIONS, requests_per_second=requests_per_second,
                             **(adapter_options or {}))
    core = PrepBot(sessions, adapter.port, default_track="mini")
    task = asyncio.create_task(adapter.run(core))
    await fake.wait_for(lambda: fake.live is not None and fake.live.socket is not None or task.done(), what="the client to identify")
    if task.done():
        task.result()
    await poll(lambda: _ready(adapter), what="the client to be ready")
    return Bot(fake, adapter, core, task, sessions)


async def _ready(adapter: DiscordAdapter) -> bool:
    return adapter.client is not None and adapter.client.became_ready


@pytest.fixture
async def bot(fake: FakeDiscord, sessions: async_sessionmaker[AsyncSession], message_content: bool) -> AsyncIterator[Bot]:
    running = await start_bot(fake, sessions, discord_message_content=message_content)
    yield running
    await running.stop()


Launch = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def launch(fake: FakeDiscord, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Launch]:
    """Start bots with particular settings; every one still running is stopped when the test ends."""
    started: list[Bot] = []

    async def launch_(**settings: Any) -> Bot:
        started.append(await start_bot(fake, sessions, **settings))
        return started[-1]

    yield launch_
    for running in started:
        await running.stop()
