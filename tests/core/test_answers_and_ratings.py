"""Answers (record, edit, withdraw) and ratings (one per rater per answer, the latest still present)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import models
from bot.actions import PostPrivately
from bot.answers import MAX_ANSWER_CHARS
from bot.core import PrepBot
from bot.events import AnswerDeleted, AnswerEdited, ReactionAdded, ReactionRemoved
from bot.fake_chat import FakeChat
from bot.refs import MessageRef
from tests.builders import CHANNEL, Session, event_id, user
from tests.conftest import FakeClock


async def started(core: PrepBot, chat: FakeChat, clock: FakeClock) -> Session:
    members = Session(core, chat, clock)
    await members.setup("09:00 UTC daily")
    await members.post_now()
    return members


async def answers(sessions: async_sessionmaker[AsyncSession]) -> list[models.Answer]:
    async with sessions() as session:
        return list((await session.scalars(select(models.Answer).order_by(models.Answer.id))).all())


async def leaderboard(members: Session) -> str:
    return await members.command("leaderboard all", who="someone")


async def test_replies_in_the_prompt_thread_are_answers_and_other_threads_are_not(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = await started(core, chat, clock)
    await members.answer("alice", "Start from the harm taxonomy")
    await members.answer("bob", "An unrelated thread", thread=MessageRef(CHANNEL, "not-a-prompt"))
    await members.answer("prepbot", "I am a bot", bot=True)
    [answer] = await answers(sessions)
    assert answer.text == "Start from the harm taxonomy"


async def test_a_first_answer_earns_the_rubric_privately_and_a_second_does_not(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    await members.answer("alice", "first try")
    await members.answer("alice", "and an addendum")
    notes = [a for a in chat.actions if isinstance(a, PostPrivately)]
    assert len(notes) == 1 and notes[0].user == user("alice")
    assert "A strong answer covers:" in notes[0].message.plain_text()


async def test_an_edit_updates_the_text_and_a_delete_withdraws_the_answer_and_its_ratings(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = await started(core, chat, clock)
    alice = await members.answer("alice", "draft")
    await members.edit(alice, "final")
    assert [a.text for a in await answers(sessions)] == ["final"]
    await members.react("bob", alice, "five")
    assert "<@alice>" in await leaderboard(members)
    await members.delete(alice)
    assert "<@alice>" not in await leaderboard(members)
    [answer] = await answers(sessions)
    assert answer.withdrawn_at is not None and answer.text is None


async def test_an_over_long_answer_is_refused_with_its_length_and_a_shortened_edit_then_counts(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = await started(core, chat, clock)
    long = await members.answer("alice", "x" * (MAX_ANSWER_CHARS + 1))
    assert await answers(sessions) == []
    [note] = [a for a in chat.actions if isinstance(a, PostPrivately)]
    assert f"{MAX_ANSWER_CHARS + 1:,} characters" in note.message.plain_text()
    await core.handle(AnswerEdited(event_id(), members.now(), long, "short enough", members.latest_prompt(), user("alice")))
    assert [a.text for a in await answers(sessions)] == ["short enough"]


async def test_add_four_add_five_remove_five_leaves_a_rating_of_four(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    alice = await members.answer("alice")
    await members.react("bob", alice, "four")
    await members.react("bob", alice, "five")
    assert "avg 5.00 from 1 rating" in await leaderboard(members)
    await members.unreact("bob", alice, "five")
    assert "avg 4.00 from 1 rating" in await leaderboard(members)
    await members.unreact("bob", alice, "four")
    assert "No rated answers yet" in await leaderboard(members)


async def test_one_rating_per_rater_per_answer(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    alice = await members.answer("alice")
    for emoji in ("one", "three", "two"):
        await members.react("bob", alice, emoji)
    assert "avg 2.00 from 1 rating" in await leaderboard(members)


async def test_self_reactions_bot_reactions_and_other_emoji_do_not_count(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    alice = await members.answer("alice")
    await members.react("alice", alice, "five")
    await members.react("helper-bot", alice, "five", bot=True)
    await members.react("bob", alice, "thumbsup")
    await members.react("bob", alice, "+1")
    assert "No rated answers yet" in await leaderboard(members)
    await members.react("bob", alice, "three")
    assert "avg 3.00 from 1 rating" in await leaderboard(members)


async def test_a_rater_found_to_be_a_bot_later_stops_counting(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    alice = await members.answer("alice")
    await members.react("sneaky", alice, "five")
    assert "<@alice>" in await leaderboard(members)
    await core.note_member(user("sneaky"), is_bot=True)
    assert "No rated answers yet" in await leaderboard(members)


async def test_reactions_on_the_prompt_or_unknown_messages_are_ignored(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    await members.react("bob", members.latest_prompt(), "five")
    await members.react("bob", MessageRef(CHANNEL, "elsewhere"), "five")
    assert "No rated answers yet" in await leaderboard(members)


async def test_a_remove_that_arrives_before_its_add_leaves_no_rating(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    alice = await members.answer("alice")
    added_at, removed_at = members.now(), members.now()
    await core.handle(ReactionRemoved(event_id(), removed_at, alice, user("bob"), "five"))
    await core.handle(ReactionAdded(event_id(), added_at, alice, user("bob"), "five"))
    assert "No rated answers yet" in await leaderboard(members)


async def test_a_delete_that_arrives_before_its_answer_keeps_the_answer_withdrawn(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = await started(core, chat, clock)
    message = MessageRef(CHANNEL, "late-answer")
    posted = members.answer_event("alice", message, members.latest_prompt(), at=members.now())
    await core.handle(AnswerDeleted(event_id(), members.now(), message))
    await core.handle(posted)
    await members.react("bob", message, "five")
    assert "No rated answers yet" in await leaderboard(members)
    assert [a.withdrawn_at is not None for a in await answers(sessions)] == [True]


async def test_an_older_edit_arriving_late_does_not_overwrite_a_newer_one(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = await started(core, chat, clock)
    alice = await members.answer("alice", "v1")
    older, newer = members.now(), members.now()
    await core.handle(AnswerEdited(event_id(), newer, alice, "v3"))
    await core.handle(AnswerEdited(event_id(), older, alice, "v2"))
    assert [a.text for a in await answers(sessions)] == ["v3"]


async def test_the_leaderboard_uses_a_bayesian_average_so_one_five_does_not_beat_ten_four_point_eights(
    core: PrepBot, chat: FakeChat, clock: FakeClock,
) -> None:
    members = await started(core, chat, clock)
    for generous in range(20):  # a generous channel: the bar must not be its own mean
        await members.react(f"fan-{generous}", await members.answer(f"star-{generous}"), "five")
    lucky = await members.answer("lucky")
    await members.react("rater-0", lucky, "five")
    steady = [await members.answer("steady", f"answer {i}") for i in range(2)]
    # Ten ratings averaging 4.8: eight 5s and two 4s.
    scores = ["five"] * 8 + ["four"] * 2
    for index, emoji in enumerate(scores):
        await members.react(f"rater-{index + 1}", steady[index % 2], emoji)
    board = await leaderboard(members)
    assert board.index("<@steady>") < board.index("<@lucky>")


async def test_leaderboard_ties_are_broken_by_the_number_of_ratings(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    few = await members.answer("few")
    many = await members.answer("many")
    await members.react("r1", few, "three")
    for rater in ("r1", "r2", "r3"):
        await members.react(rater, many, "three")
    board = await leaderboard(members)
    assert board.index("<@many>") < board.index("<@few>")


async def test_the_week_leaderboard_leaves_out_older_answers(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    old = await members.answer("veteran")
    await members.react("bob", old, "five")
    clock.advance(days=8)
    assert "<@veteran>" not in await members.command("leaderboard week", who="x")
    assert "<@veteran>" in await members.command("leaderboard month", who="x")
    assert "<@veteran>" in await members.command("leaderboard all", who="x")


async def test_stats_count_answers_ratings_and_the_streak(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    first = await members.answer("alice")
    await members.react("bob", first, "four")
    await members.react("carol", first, "five")
    await members.react("alice", await members.answer("bob"), "three")
    for day in (1, 2):
        clock.set(clock() + timedelta(days=1))
        await members.command("now", admin=True)
        await members.answer("alice")
    stats = await members.command("stats", who="alice")
    assert "Answers given: 3" in stats
    assert "Ratings received: 2 (average 4.50)" in stats
    assert "Ratings given: 1" in stats
    assert "Current streak: 3 questions in a row" in stats
    clock.set(clock() + timedelta(days=1))
    await members.command("now", admin=True)
    assert "Current streak: 3 questions" in await members.command("stats", who="alice")  # today's is still open
    clock.set(clock() + timedelta(days=1))
    await members.command("now", admin=True)
    stats = await members.command("stats", who="alice")
    assert "Current streak: 0 questions" in stats and "Best streak: 3 questions" in stats


async def test_stats_before_any_question_is_posted_still_count_drills(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    async with sessions() as session:
        slug = (await session.scalars(select(models.Question.slug).limit(1))).one()
    await members.drill("alice", slug)
    await members.drill("alice", slug)
    stats = await members.command("stats", who="alice")
    assert "Drills taken: 2" in stats and "Answers given: 0" in stats and "Ratings given: 0" in stats
    assert "0 questions posted in this channel so far." in stats
    assert "Drills taken: 0" in await members.command("stats", who="bob")
