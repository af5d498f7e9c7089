"""Per-answer tallies always equal a recount of the ratings by the rules, whatever order events came in."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session as OrmSession

from bot import db, tallies
from bot.core import PrepBot
from bot.events import AnswerDeleted, AnswerPosted, ReactionAdded, ReactionRemoved
from bot.fake_chat import FakeChat
from bot.refs import MessageRef
from tests.builders import CHANNEL, Session, event_id, user
from tests.conftest import FakeClock

# The rule, restated in plain SQL: a rating counts while its answer stands, its rater is not the
# author, and neither the rater nor the author is a bot.
RECOUNT = """
SELECT a.id, count(r.id), coalesce(sum(r.score), 0)
FROM answers a
LEFT JOIN ratings r ON r.channel_id = a.channel_id AND r.message_id = a.message_id
    AND a.withdrawn_at IS NULL AND a.prompt_id IS NOT NULL AND r.rater_id <> a.member_id
    AND NOT EXISTS (SELECT 1 FROM members m WHERE m.id = r.rater_id AND m.is_bot)
    AND NOT EXISTS (SELECT 1 FROM members m WHERE m.id = a.member_id AND m.is_bot)
GROUP BY a.id ORDER BY a.id
"""
KEPT = "SELECT id, rating_count, rating_sum FROM answers ORDER BY id"


async def tallies_and_recount(sessions: async_sessionmaker[AsyncSession]) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    async with sessions() as session:
        kept = [tuple(row) for row in await session.execute(text(KEPT))]
        recount = [tuple(row) for row in await session.execute(text(RECOUNT))]
    return kept, recount


async def test_tallies_follow_every_kind_of_change_and_match_a_recount(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    thread = await members.post_now()
    alice, bob = await members.answer("alice"), await members.answer("bob")
    early = MessageRef(CHANNEL, "late-answer")
    await members.react("carol", early, "five")  # a reaction before its answer arrives
    await core.handle(AnswerPosted(event_id(), members.now(), early, thread, user("carol-friend"), "late"))
    for who, target, emoji in [("bob", alice, "four"), ("carol", alice, "five"), ("alice", alice, "five"),
                               ("alice", bob, "three"), ("dave", alice, "two"), ("robot", bob, "five")]:
        await members.react(who, target, emoji)
    await members.unreact("carol", alice, "five")
    await core.note_member(user("dave"), is_bot=True)  # dave turns out to be a bot
    await members.delete(bob)
    kept, recount = await tallies_and_recount(sessions)
    assert kept == recount
    assert [row[1:] for row in kept] == [(1, 4), (0, 0), (1, 5)]


async def test_the_migration_backfills_tallies_for_ratings_recorded_before_it(database_url: str, clock: FakeClock) -> None:
    engine: AsyncEngine = db.create_engine(database_url)
    try:
        await db.upgrade(engine, "0002")
        async with engine.begin() as connection:
            now = clock()
            await connection.execute(text("INSERT INTO workspaces (id, platform, external_id, created_at) VALUES (1, 't', 'T', :now)"), {"now": now})
            await connection.execute(text(
                "INSERT INTO members (id, workspace_id, external_id, is_bot, created_at) VALUES "
                "(1, 1, 'author', false, :now), (2, 1, 'rater', false, :now), (3, 1, 'bot', true, :now)"), {"now": now})
            await connection.execute(text(
                "INSERT INTO channels (id, workspace_id, external_id, track, post_time, timezone, weekdays, paused, created_at, updated_at) "
                "VALUES (1, 1, 'C', 'mini', '09:00:00', 'UTC', 127, false, :now, :now)"), {"now": now})
            await connection.execute(text(
                "INSERT INTO prompts (id, channel_id, local_date, status, marker, claim_token, claimed_at, message_id) "
                "VALUES (1, 1, '2026-03-02', 'posted', 'm', 't', :now, 'p1')"), {"now": now})
            await connection.execute(text(
                "INSERT INTO answers (id, channel_id, message_id, prompt_id, member_id, posted_at) VALUES (1, 1, 'a1', 1, 1, :now)"),
                {"now": now})
            await connection.execute(text(
                "INSERT INTO ratings (channel_id, message_id, rater_id, score, rated_at) VALUES "
                "(1, 'a1', 2, 4, :now), (1, 'a1', 1, 5, :now), (1, 'a1', 3, 1, :now)"), {"now": now})
        await db.upgrade(engine)
        async with engine.connect() as connection:
            assert (await connection.execute(text(KEPT))).all() == [(1, 1, 4)]
            assert (await connection.execute(text(RECOUNT))).all() == [(1, 1, 4)]
    finally:
        await engine.dispose()


async def test_a_replayed_reaction_leaves_the_tally_as_it_was(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    await members.post_now()
    answer = await members.answer("alice")
    added = ReactionAdded(event_id(), members.now(), answer, user("bob"), "four")
    await core.handle(added)
    before = await tallies_and_recount(sessions)
    await core.handle(added)
    assert await tallies_and_recount(sessions) == before


async def test_a_batch_recounts_at_its_end_and_gets_the_tallies_single_events_would(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    thread = await members.post_now()
    alice = await members.answer("alice")
    early = MessageRef(CHANNEL, "answered-late")
    bob_reply = MessageRef(CHANNEL, "bob-reply")

    def at() -> datetime:
        clock.advance(seconds=1)
        return members.now()

    # One batch: reactions before their answer, the answer, re-rates, a removal and a deletion.
    batch = [
        ReactionAdded(event_id(), at(), early, user("carol"), "five"),
        ReactionAdded(event_id(), at(), alice, user("bob"), "two"),
        AnswerPosted(event_id(), at(), early, thread, user("dave"), "late"),
        ReactionAdded(event_id(), at(), alice, user("bob"), "four"),
        ReactionAdded(event_id(), at(), alice, user("carol"), "five"),
        ReactionRemoved(event_id(), at(), alice, user("carol"), "five"),
        ReactionAdded(event_id(), at(), early, user("alice"), "three"),
        AnswerPosted(event_id(), at(), bob_reply, thread, user("bob"), "mine"),
        ReactionAdded(event_id(), at(), bob_reply, user("alice"), "five"),
        AnswerDeleted(event_id(), at(), bob_reply),
    ]
    await db.transactions(sessions).run(lambda session: core._apply_member_events(session, batch))
    kept, recount = await tallies_and_recount(sessions)
    assert kept == recount
    assert [row[1:] for row in kept] == [(1, 4), (2, 8), (0, 0)]


async def test_recounts_wait_for_the_end_of_the_block_and_a_failed_block_recounts_nothing(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    await members.post_now()
    alice = await members.answer("alice")
    await members.react("bob", alice, "four")
    rated = (await tallies_and_recount(sessions))[0]

    def zero_then_recount(session: OrmSession) -> list[tuple[int, ...]]:
        session.execute(text("UPDATE answers SET rating_count = 0, rating_sum = 0"))
        answer_id, channel_id = session.execute(text("SELECT id, channel_id FROM answers")).one()
        with tallies.recounted_at_end(session):
            tallies.recount(session, channel_id, alice.id)
            waiting = [tuple(row) for row in session.execute(text(KEPT))]
        assert waiting == [(answer_id, 0, 0)]
        return [tuple(row) for row in session.execute(text(KEPT))]

    assert await db.transactions(sessions).run(zero_then_recount) == rated

    def fail_midway(session: OrmSession) -> None:
        session.execute(text("UPDATE answers SET rating_count = 0, rating_sum = 0"))
        with tallies.recounted_at_end(session):
            tallies.recount(session, *session.execute(text("SELECT channel_id, message_id FROM answers")).one())
            raise RuntimeError("the batch failed")

    def after_a_failure(session: OrmSession) -> list[tuple[int, ...]]:
        with pytest.raises(RuntimeError):
            fail_midway(session)
        kept = [tuple(row) for row in session.execute(text(KEPT))]
        tallies.recount(session, *session.execute(text("SELECT channel_id, message_id FROM answers")).one())  # runs at once again
        return [*kept, *[tuple(row) for row in session.execute(text(KEPT))]]

    zeroed, recounted = await db.transactions(sessions).run(after_a_failure)
    assert zeroed[1:] == (0, 0) and recounted == rated[0]


@pytest.mark.parametrize("seed", range(5))
async def test_reactions_applied_as_one_batch_rate_as_they_would_one_event_at_a_time(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession], seed: int,
) -> None:
    """Reactions go last in a batch and each rating is settled once, after all of them move: still the same ratings.

    The same shuffled reactions (adds and removes, their event times out of delivery order, some
    delivered twice) rate one pair of answers one event per transaction and a twin pair in two batches.
    """
    members = Session(core, chat, clock)
    await members.setup()
    thread = await members.post_now()
    alone = [await members.answer("alice"), await members.answer("bob")]
    together = [await members.answer("carol"), await members.answer("dave")]
    rng = random.Random(seed)
    start = members.now()
    plan = [(rng.choice((ReactionAdded, ReactionRemoved)), rng.randrange(2), rng.choice(("erin", "frank", "gina", "ivan", "judy", "kim")),
             rng.choice(("one", "three", "five", "thumbsup")), start + timedelta(seconds=rng.randrange(1, 40)))
            for _ in range(60)]
    plan += rng.sample(plan, 10)  # redelivered, under new ids as a reordered resend would be
    later = start + timedelta(seconds=50)
    plan += [(ReactionRemoved, which, who, emoji, later) for which in range(2) for who in ("erin", "frank")
             for emoji in ("one", "three", "five")]  # erin and frank take every rating back

    def events(answers: list[MessageRef]) -> list[ReactionAdded | ReactionRemoved]:
        return [kind(event_id(), at, answers[which], user(who), emoji) for kind, which, who, emoji, at in plan]

    for event in events(alone):
        await db.transactions(sessions).run(lambda session, event=event: core._apply_member_events(session, [event]))
    batched = events(together)
    batched.insert(30, AnswerPosted(event_id(), members.now(), MessageRef(CHANNEL, "mid-batch"), thread, user("hal"), "hi"))
    for batch in (batched[:35], batched[35:]):  # the second batch finds ratings to move on or drop
        await db.transactions(sessions).run(lambda session, batch=batch: core._apply_member_events(session, batch))

    async with sessions() as session:
        ratings = (await session.execute(text(
            "SELECT r.message_id, m.external_id, r.score, r.rated_at, r.counted FROM ratings r "
            "JOIN members m ON m.id = r.rater_id ORDER BY r.message_id, m.external_id"))).all()
    by_answer = {answer.id: sorted(row[1:] for row in ratings if row[0] == answer.id) for answer in alone + together}
    assert by_answer[alone[0].id] == by_answer[together[0].id] and by_answer[alone[1].id] == by_answer[together[1].id]
    assert any(by_answer.values()) and not any(who in ("erin", "frank") for _, who, *_ in ratings)
    kept, recount = await tallies_and_recount(sessions)
    assert kept == recount
    tallies_of = {row[0]: row[1:] for row in kept}
    async with sessions() as session:
        ids = dict((await session.execute(text("SELECT message_id, id FROM answers"))).all())
    assert [tallies_of[ids[a.id]] for a in alone] == [tallies_of[ids[a.id]] for a in together]
