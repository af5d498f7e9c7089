"""One post per channel per scheduled local date, exactly: claims, restarts, catch-up, reconcile, rotation."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import db, models
from bot.core import PrepBot
from bot.fake_chat import FakeChat
from bot.posting import CLAIM_TIMEOUT, MAX_CONCURRENT_POSTS, Outcome, PostResult, choose_question
from bot.refs import ChannelRef
from tests.builders import WORKSPACE, Session
from tests.conftest import FakeClock

MONDAY_0900 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def new_core(sessions: async_sessionmaker[AsyncSession], chat: FakeChat, clock: FakeClock, **kwargs: object) -> PrepBot:
    return PrepBot(sessions, chat, default_track="mini", clock=clock, **kwargs)  # type: ignore[arg-type]


async def prompts(sessions: async_sessionmaker[AsyncSession]) -> list[models.Prompt]:
    async with sessions() as session:
        return list((await session.scalars(select(models.Prompt).order_by(models.Prompt.local_date))).all())


async def test_a_due_channel_gets_its_question_once_however_often_the_tick_fires(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    await Session(core, chat, clock).setup("09:00 UTC daily")
    clock.set(MONDAY_0900 - timedelta(seconds=1))
    assert await core.tick() == []
    clock.set(MONDAY_0900)
    [result] = await core.tick()
    assert result.outcome is Outcome.POSTED and result.local_date == date(2026, 3, 2)
    for _ in range(3):
        clock.advance(minutes=1)
        assert await core.tick() == []
    assert len(chat.prompts) == 1


async def test_the_same_tick_fired_twice_at_once_posts_once(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    await Session(core, chat, clock).setup("09:00 UTC daily")
    clock.set(MONDAY_0900)
    await asyncio.gather(core.tick(), core.tick(), core.tick())
    assert len(chat.prompts) == 1


async def test_two_processes_on_one_database_post_once(sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> None:
    first_chat, second_chat = FakeChat("x"), FakeChat("y")
    first, second = new_core(sessions, first_chat, clock), new_core(sessions, second_chat, clock)
    await Session(first, first_chat, clock).setup("09:00 UTC daily")
    clock.set(MONDAY_0900)
    await asyncio.gather(first.tick(), second.tick())
    assert len(first_chat.prompts) + len(second_chat.prompts) == 1


async def test_a_restarted_process_does_not_post_again(sessions: async_sessionmaker[AsyncSession], chat: FakeChat, clock: FakeClock) -> None:
    before = new_core(sessions, chat, clock)
    await Session(before, chat, clock).setup("09:00 UTC daily")
    clock.set(MONDAY_0900 + timedelta(minutes=1))
    await before.tick()
    after_restart = new_core(sessions, chat, clock)
    clock.advance(minutes=5)
    assert await after_restart.tick() == []
    assert len(chat.prompts) == 1


async def test_a_post_missed_while_down_goes_out_on_start_within_the_lateness_window(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    await Session(core, chat, clock).setup("09:00 UTC daily")
    clock.set(MONDAY_0900 + timedelta(hours=2, minutes=59))
    [result] = await core.tick()
    assert result.outcome is Outcome.POSTED


async def test_a_post_later_than_the_lateness_window_is_skipped(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    await Session(core, chat, clock).setup("09:00 UTC daily")
    clock.set(MONDAY_0900 + timedelta(hours=3, minutes=1))
    assert await core.tick() == []
    assert chat.prompts == []


async def test_the_lateness_window_is_configurable(sessions: async_sessionmaker[AsyncSession], chat: FakeChat, clock: FakeClock) -> None:
    core = new_core(sessions, chat, clock, lateness=timedelta(minutes=10))
    await Session(core, chat, clock).setup("09:00 UTC daily")
    clock.set(MONDAY_0900 + timedelta(minutes=11))
    assert await core.tick() == []


async def test_each_channel_posts_at_its_own_local_time(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    berlin = ChannelRef(WORKSPACE, "C-BERLIN")
    kolkata = ChannelRef(WORKSPACE, "C-KOLKATA")
    await Session(core, chat, clock, berlin).setup("09:00 Europe/Berlin daily")
    await Session(core, chat, clock, kolkata).setup("09:00 Asia/Kolkata daily")
    clock.set(datetime(2026, 3, 2, 3, 30, tzinfo=UTC))  # 09:00 in Kolkata, 04:30 in Berlin
    assert [r.channel for r in await core.tick()] == [kolkata]
    clock.set(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))  # 09:00 in Berlin
    assert [r.channel for r in await core.tick()] == [berlin]


async def test_on_a_spring_forward_day_a_time_in_the_gap_posts_at_the_end_of_the_gap(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    await Session(core, chat, clock).setup("02:30 America/New_York daily")
    clock.set(datetime(2026, 3, 8, 6, 59, tzinfo=UTC))  # 01:59 EST
    assert await core.tick() == []
    clock.set(datetime(2026, 3, 8, 7, 0, tzinfo=UTC))  # 03:00 EDT, the first instant after the gap
    [result] = await core.tick()
    assert result.local_date == date(2026, 3, 8)


async def test_on_a_fall_back_day_an_ambiguous_time_posts_once_at_its_first_occurrence(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    await Session(core, chat, clock).setup("01:30 America/New_York daily")
    clock.set(datetime(2026, 11, 1, 5, 30, tzinfo=UTC))  # 01:30 EDT, the first 01:30
    assert len(await core.tick()) == 1
    clock.set(datetime(2026, 11, 1, 6, 30, tzinfo=UTC))  # 01:30 EST, the second
    assert await core.tick() == []
    assert len(chat.prompts) == 1


async def test_paused_and_skipped_dates_do_not_post(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = Session(core, chat, clock)
    clock.set(MONDAY_0900 - timedelta(hours=2))
    await members.setup("09:00 UTC daily")
    assert "Skipped the question of Mon 02 Mar" in await members.command("skip")
    clock.set(MONDAY_0900)
    assert await core.tick() == []
    await members.command("pause")
    clock.set(MONDAY_0900 + timedelta(days=1))
    assert await core.tick() == []
    await members.command("resume")
    assert len(await core.tick()) == 1


async def test_a_send_that_landed_but_was_never_recorded_is_reconciled_not_resent(
    sessions: async_sessionmaker[AsyncSession], chat: FakeChat, clock: FakeClock,
) -> None:
    core = new_core(sessions, chat, clock)
    await Session(core, chat, clock).setup("09:00 UTC daily")
    clock.set(MONDAY_0900)
    chat.fail_next(ConnectionResetError("connection lost after sending"), delivered=True)
    [failed] = await core.tick()
    assert failed.outcome is Outcome.FAILED and len(chat.prompts) == 1

    restarted = new_core(sessions, chat, clock)
    clock.advance(seconds=10)
    [waiting] = await restarted.tick()
    assert waiting.outcome is Outcome.IN_FLIGHT  # the claim is still fresh: its owner may yet record it
    clock.advance(seconds=CLAIM_TIMEOUT.total_seconds())
    [reconciled] = await restarted.tick()
    assert reconciled.outcome is Outcome.RECONCILED
    assert len(chat.prompts) == 1
    [prompt] = await prompts(sessions)
    assert prompt.status == "posted" and prompt.message_id == chat.prompts[0][1].id


async def test_a_send_that_never_landed_is_sent_again_after_the_claim_goes_stale(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    await Session(core, chat, clock).setup("09:00 UTC daily")
    clock.set(MONDAY_0900)
    chat.fail_next(TimeoutError("platform did not answer"))
    [failed] = await core.tick()
    assert failed.outcome is Outcome.FAILED and chat.prompts == []
    clock.advance(seconds=CLAIM_TIMEOUT.total_seconds() + 1)
    [posted] = await core.tick()
    assert posted.outcome is Outcome.POSTED and len(chat.prompts) == 1


async def test_a_crash_after_the_claim_and_before_the_send_is_recovered(
    sessions: async_sessionmaker[AsyncSession], chat: FakeChat, clock: FakeClock,
) -> None:
    core = new_core(sessions, chat, clock)
    await Session(core, chat, clock).setup("09:00 UTC daily")
    clock.set(MONDAY_0900)
    async with sessions() as session:
        channel = (await session.scalars(select(models.Channel))).one()
    day = date(2026, 3, 2)
    claim = await db.transactions(sessions).run(
        lambda session: core.poster._claim(session, channel.id, day, None, choose_question(session, channel, day), clock()))  # noqa: SLF001
    assert claim.token is not None  # the claim is committed, then the process dies before sending
    clock.advance(seconds=CLAIM_TIMEOUT.total_seconds() + 1)
    [result] = await new_core(sessions, chat, clock).tick()
    assert result.outcome is Outcome.POSTED and len(chat.prompts) == 1


async def test_rotation_uses_every_question_before_repeating_and_avoids_the_same_category_twice(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    await Session(core, chat, clock).setup("09:00 UTC daily")
    for day in range(12):
        clock.set(MONDAY_0900 + timedelta(days=day))
        await core.tick()
    async with sessions() as session:
        rows = (await session.execute(
            select(models.Question.slug, models.Question.category)
            .join(models.Prompt, models.Prompt.question_id == models.Question.id)
            .order_by(models.Prompt.local_date))).all()
    slugs = [slug for slug, _ in rows]
    assert len(slugs) == 12
    assert len(set(slugs[:6])) == 6 and len(set(slugs[6:])) == 6
    categories = [category for _, category in rows]
    assert all(a != b for a, b in zip(categories, categories[1:], strict=False))


async def test_the_choice_for_a_channel_and_date_is_the_same_in_every_process(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    await Session(new_core(sessions, FakeChat(), clock), FakeChat(), clock).setup("09:00 UTC daily")
    picks = set()
    for _ in range(3):  # each session stands for a separate process reading the same history
        async with sessions() as session:
            channel = (await session.scalars(select(models.Channel))).one()
            picks.add(await session.run_sync(choose_question, channel, date(2026, 3, 2)))
    assert len(picks) == 1


async def test_a_retired_question_is_not_chosen(core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession]) -> None:
    await Session(core, chat, clock).setup("09:00 UTC daily")
    async with sessions() as session, session.begin():
        await session.execute(update(models.Question).where(models.Question.slug != "data-q2").values(retired_at=clock()))
    for day in range(3):
        clock.set(MONDAY_0900 + timedelta(days=day))
        await core.tick()
    async with sessions() as session:
        slugs = (await session.scalars(select(models.Question.slug).join(
            models.Prompt, models.Prompt.question_id == models.Question.id))).all()
    assert slugs == ["data-q2"] * 3


async def test_the_next_post_recaps_the_previous_one(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = Session(core, chat, clock)
    await members.setup("09:00 UTC daily")
    clock.set(MONDAY_0900)
    await core.tick()
    first = await members.answer("alice", "Alice's answer")
    await members.answer("bob", "Bob's answer")
    await members.react("bob", first, "four")
    await members.react("carol", first, "five")
    clock.set(MONDAY_0900 + timedelta(days=1))
    await core.tick()
    recap = members.prompt_actions()[-1].message.plain_text()
    assert "Recap of Mon 02 Mar: 2 answers from 2 members. Top-rated: <@alice> (4.5 from 2 ratings)." in recap



async def test_many_channels_due_at_once_are_posted_a_bounded_number_at_a_time(
    core: PrepBot, chat: FakeChat, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    total = MAX_CONCURRENT_POSTS + 30
    for n in range(total):
        await Session(core, chat, clock, ChannelRef(WORKSPACE, f"C{n}")).setup("09:00 UTC daily")
    clock.set(MONDAY_0900)
    release, in_flight, most = asyncio.Event(), [0], [0]

    async def held_post(channel: models.Channel, local_date: date) -> PostResult:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await release.wait()
        in_flight[0] -= 1
        return PostResult(ChannelRef(WORKSPACE, channel.external_id), local_date, Outcome.POSTED)

    monkeypatch.setattr(core.poster, "post", held_post)
    ticking = asyncio.create_task(core.tick())
    while in_flight[0] < MAX_CONCURRENT_POSTS and not ticking.done():
        await asyncio.sleep(0)
    for _ in range(100):  # every other post has had its chance to start
        await asyncio.sleep(0)
    assert in_flight[0] == MAX_CONCURRENT_POSTS
    release.set()
    assert len(await ticking) == total
    assert most[0] == MAX_CONCURRENT_POSTS


async def test_posts_due_together_take_turns_to_write_on_sqlite_and_run_side_by_side_elsewhere(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    # SQLite writes one transaction at a time; posts that raced for it slept in its busy handler.
    # Their reads (the question to choose, the message to send) begin deferred and take no turn.
    for n in range(12):
        await Session(core, chat, clock, ChannelRef(WORKSPACE, f"C{n}")).setup("09:00 UTC daily")
    clock.set(MONDAY_0900)
    writing, most, reads = [0], [0], [0]

    def began(connection: Connection) -> None:
        if connection.get_execution_options().get("prepbot_reads_only"):
            reads[0] += 1
            return
        writing[0] += 1
        most[0] = max(most[0], writing[0])

    def ended(connection: Connection) -> None:
        if not connection.get_execution_options().get("prepbot_reads_only"):
            writing[0] -= 1

    for name, listener in (("begin", began), ("commit", ended), ("rollback", ended)):
        event.listen(Engine, name, listener)
    try:
        results = await core.tick()
    finally:
        for name, listener in (("begin", began), ("commit", ended), ("rollback", ended)):
            event.remove(Engine, name, listener)
    assert [r.outcome for r in results] == [Outcome.POSTED] * 12
    assert reads[0] >= 24, "each post reads before its claim and before its send"
    if sessions.kw["bind"].dialect.name == "sqlite":
        assert most[0] == 1, "one post's write transaction at a time"
    else:
        assert most[0] > 1, "posts' transactions run side by side"


