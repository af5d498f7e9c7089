"""Discord failing a fifth of its REST requests (429s, 5xx and timeouts, some after doing the work): nothing lost, nothing doubled."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import models
from bot.core import PrepBot
from bot.posting import Outcome
from tests.conftest import FakeClock
from tests.discord.conftest import KEYCAPS, Bot, poll, start_bot
from tests.fakes.discord import FakeDiscord, FakeInteraction, message_text

ROOMS = 6
ROUNDS = 12  # ticks, a stale claim apart; each round a failed post is reconciled or sent again


@pytest.fixture
async def bot(fake: FakeDiscord, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Bot]:
    for n in range(1, ROOMS):
        fake.add_channel(f"practice-{n}")
    # A request unanswered for 1.5 s is lost (discord.py itself waits a second before retrying a 500); a request is made again after 50 ms.
    running = await start_bot(fake, sessions, adapter_options={"request_seconds": 1.5, "send_retry_seconds": 0.05})
    yield running
    await running.stop()


def rooms(fake: FakeDiscord) -> list[int]:
    return [channel_id for channel_id, channel in fake.channels.items() if channel["type"] == 0]


async def post_every_room(bot: Bot, core: PrepBot, clock: FakeClock) -> dict[int, int]:
    """Tick until every room's prompt is recorded, moving the clock past a stale claim between ticks."""
    for _ in range(ROUNDS):
        results = await core.tick()
        assert all(r.outcome in (Outcome.POSTED, Outcome.RECONCILED, Outcome.FAILED) for r in results), results
        async with bot.sessions() as session:
            prompts = (await session.execute(
                select(models.Channel.external_id, models.Prompt.message_id, models.Prompt.status)
                .join(models.Channel, models.Channel.id == models.Prompt.channel_id))).all()
        if len(prompts) == ROOMS and all(p.status == "posted" for p in prompts):
            return {int(p.external_id): int(p.message_id) for p in prompts}
        clock.advance(seconds=60)
    raise AssertionError(f"not every room was posted after {ROUNDS} rounds: {prompts}")


@pytest.mark.parametrize("seed", [1, 2])
async def test_every_post_and_reply_arrives_once_while_discord_fails_a_fifth_of_its_requests(bot: Bot, seed: int) -> None:
    fake = bot.fake
    # The ticking core's clock runs an hour behind: however far the rounds move it, it stays in Discord's past,
    # so a stale claim's marker is looked for from before the post was made.
    clock = FakeClock(datetime.now(UTC) - timedelta(hours=1))
    core = PrepBot(bot.sessions, bot.adapter.port, default_track="mini", clock=clock)
    due = (clock.now - timedelta(minutes=1)).strftime("%H:%M")
    for room in rooms(fake):
        reply = await bot.command(fake.organizer, "setup", channel_id=room, time=due, timezone="UTC", days="daily")
        assert reply.startswith("Done."), reply
    faults = fake.fail_randomly(0.2, seed)

    threads = await post_every_room(bot, core, clock)
    for room in rooms(fake):
        [prompt] = fake.bot_posts(room)
        assert int(prompt["id"]) == threads[room] and fake.thread(threads[room]) is not None

    asked: list[tuple[int, FakeInteraction]] = []
    for room, thread in threads.items():
        alice = await fake.post(fake.alice, thread, f"Alice answers in {room}.")
        bob = await fake.post(fake.bob, thread, f"Bob answers in {room}.")
        await fake.react(fake.bob, thread, int(alice["id"]), KEYCAPS[4])
        await bot.wait_for_answer(int(alice["id"]))
        await bot.wait_for_answer(int(bob["id"]))
        asked.append((thread, await fake.invoke(fake.alice, "drill", channel_id=thread)))
        asked.append((room, await fake.invoke(fake.carol, "prep", "stats", channel_id=room)))
        asked.append((room, await fake.invoke(fake.organizer, "prep", "now", channel_id=room)))
    for _, interaction in asked:
        await fake.answered(interaction, timeout=60)
    await bot.settle()
    await poll(lambda: _rubrics_sent(fake, 2 * ROOMS), timeout=60, what="every rubric DM")
    faults.paused = True

    for room, thread in threads.items():
        assert len(fake.bot_posts(room)) == 1, f"room {room}: one prompt"
        drills = [m for m in fake.channel_messages(thread) if int(m["author"]["id"]) == fake.bot.id]
        assert len(drills) == 1 and "Follow-up" in message_text(drills[0]), f"room {room}: one drill reply"
    for place, interaction in asked:
        assert len(interaction.callbacks) == 1 and not interaction.followups, interaction
        assert interaction.reply_text() and "Something went wrong" not in interaction.reply_text(), interaction.reply_text()
    for member in (fake.alice, fake.bob):
        rubrics = Counter(message_text(m).count("rubric") > 0 for m in fake.dms_to(member))
        assert rubrics[True] == ROOMS, f"{member.username}: one rubric DM per question answered, got {rubrics[True]}"
    for room, thread in threads.items():
        alice_answer = next(m for m in fake.channel_messages(thread) if int(m["author"]["id"]) == fake.alice.id)
        assert await bot.ratings(alice_answer["id"]) == {fake.bob.id: 4}
    kinds = Counter(fault.kind for _, fault in faults.drawn)
    assert set(kinds) == {"rate-limited", "server-error", "timeout"} and any(f.landed for _, f in faults.drawn), kinds


async def _rubrics_sent(fake: FakeDiscord, expected: int) -> bool:
    sent = [m for member in (fake.alice, fake.bob) for m in fake.dms_to(member) if "rubric" in message_text(m)]
    return len(sent) >= expected
