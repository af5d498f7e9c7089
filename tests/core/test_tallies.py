"""Per-answer tallies always equal a recount of the ratings by the rules, whatever order events came in."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import db
from bot.core import PrepBot
from bot.events import AnswerPosted, ReactionAdded
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
