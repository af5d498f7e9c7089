"""Replies that arrive before their thread is known as a prompt's: held while the post is in flight, counted once it is recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import answers as answers_module, models
from bot.actions import Action, PostPrivately, PostPrompt
from bot.answers import MAX_ANSWER_CHARS
from bot.core import PrepBot
from bot.events import AnswerEdited, AnswerPosted
from bot.fake_chat import FakeChat
from bot.posting import CLAIM_TIMEOUT, Outcome
from bot.refs import MessageRef
from tests.builders import CHANNEL, Session, event_id, user
from tests.conftest import FakeClock
from tests.core.test_answers_and_ratings import answers, leaderboard
from tests.core.test_posting import MONDAY_0900

Landing = Callable[[MessageRef], Awaitable[None]]


class LandingChat(FakeChat):
    """A chat where something happens once the platform has a daily post and before prepbot hears it did."""

    def __init__(self) -> None:
        super().__init__()
        self.on_landing: Landing | None = None

    async def perform(self, action: Action) -> MessageRef | None:
        ref = await super().perform(action)
        if isinstance(action, PostPrompt) and self.on_landing is not None and ref is not None:
            landing, self.on_landing = self.on_landing, None
            await landing(ref)
        return ref


async def held(sessions: async_sessionmaker[AsyncSession]) -> list[models.HeldReply]:
    async with sessions() as session:
        return list((await session.scalars(select(models.HeldReply).order_by(models.HeldReply.id))).all())


def notes_to(chat: FakeChat, who: str) -> list[PostPrivately]:
    return [a for a in chat.actions if isinstance(a, PostPrivately) and a.user == user(who)]


async def setup(sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> tuple[PrepBot, LandingChat, Session]:
    chat = LandingChat()
    core = PrepBot(sessions, chat, default_track="mini", clock=clock)
    members = Session(core, chat, clock)
    await members.setup("09:00 UTC daily")
    clock.set(MONDAY_0900)
    return core, chat, members


async def test_a_reply_before_the_post_is_recorded_is_held_and_counts_once_the_post_is_recorded(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    core, chat, members = await setup(sessions, clock)
    seen: dict[str, object] = {}

    async def members_reply(prompt: MessageRef) -> None:
        seen["alice"] = await members.answer("alice", "Triage by severity first", thread=prompt)
        await members.react("bob", seen["alice"], "five")  # type: ignore[arg-type]
        await members.answer("carol", "lunch?", thread=MessageRef(CHANNEL, "another-thread"))
        seen["answers"], seen["held"] = await answers(sessions), [(r.message_id, r.thread_id) for r in await held(sessions)]

    chat.on_landing = members_reply
    [result] = await core.tick()

    assert result.outcome is Outcome.POSTED
    assert seen["answers"] == []  # not an answer yet: the thread was no known prompt's
    assert seen["held"] == [("a1", result.message_id), ("a2", "another-thread")]
    [answer] = await answers(sessions)
    assert (answer.message_id, answer.text, answer.rating_count, answer.rating_sum) == ("a1", "Triage by severity first", 1, 5)
    assert "<@alice>" in await leaderboard(members)
    [note] = notes_to(chat, "alice")
    assert note.thread == MessageRef(CHANNEL, str(result.message_id)) and "A strong answer covers:" in note.message.plain_text()
    assert [r.thread_id for r in await held(sessions)] == ["another-thread"]  # not a prompt's thread: left to go stale


async def test_a_held_reply_delivered_again_after_the_record_counts_once(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    core, chat, members = await setup(sessions, clock)
    first: list[object] = []

    async def alice_replies(prompt: MessageRef) -> None:
        event = members.answer_event("alice", MessageRef(CHANNEL, "a1"), prompt, "my answer")
        first.append(event)
        await core.handle(event)

    chat.on_landing = alice_replies
    await core.tick()
    [event] = first
    await core.handle(event)  # type: ignore[arg-type]  # the platform's redelivery, same id
    await core.handle(members.answer_event("alice", event.message, event.thread, "my answer", at=event.at))  # type: ignore[attr-defined]  # a second delivery, new id
    assert len(await answers(sessions)) == 1
    assert len(notes_to(chat, "alice")) == 1


async def test_edits_and_deletions_of_held_replies_take_effect_once_the_post_is_recorded(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    core, chat, members = await setup(sessions, clock)

    async def members_reply(prompt: MessageRef) -> None:
        alice = await members.answer("alice", "draft", thread=prompt)
        await members.edit(alice, "final")  # an edit that names neither thread nor author
        bob = await members.answer("bob", "oops, wrong channel", thread=prompt)
        await members.delete(bob)

    chat.on_landing = members_reply
    await core.tick()

    alice, bob = sorted(await answers(sessions), key=lambda a: a.message_id)  # bob's deletion wrote its row first
    assert (alice.text, alice.withdrawn_at) == ("final", None)
    assert bob.withdrawn_at is not None and bob.text is None
    assert "<@bob>" not in await leaderboard(members)
    assert await held(sessions) == []


async def test_replies_to_a_post_whose_send_outcome_was_lost_count_once_it_is_reconciled(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    core, chat, members = await setup(sessions, clock)
    chat.fail_next(TimeoutError("the response was lost"), delivered=True)
    [failed] = await core.tick()
    assert failed.outcome is Outcome.FAILED
    await members.answer("alice", "answered while prepbot did not know its own post")
    assert await answers(sessions) == []

    clock.advance(seconds=CLAIM_TIMEOUT.total_seconds())
    [reconciled] = await core.tick()

    assert reconciled.outcome is Outcome.RECONCILED
    [answer] = await answers(sessions)
    assert answer.text == "answered while prepbot did not know its own post"
    assert len(notes_to(chat, "alice")) == 1


async def test_replies_to_unknown_threads_are_not_held_without_a_post_in_flight(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = Session(core, chat, clock)
    await members.setup("09:00 UTC daily")
    await members.post_now()
    await members.answer("alice", "in some other thread", thread=MessageRef(CHANNEL, "chit-chat"))
    assert await held(sessions) == []


async def test_a_claim_older_than_the_lateness_window_holds_nothing(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    core, chat, members = await setup(sessions, clock)
    chat.fail_next(TimeoutError("the response was lost"), delivered=True)
    await core.tick()
    clock.advance(hours=3, minutes=1)  # the claim can never be taken over now: its date is past the lateness window
    await members.answer("alice", "too late to matter", thread=MessageRef(CHANNEL, "m1"))
    assert await held(sessions) == []


async def test_held_replies_to_other_threads_are_dropped_at_a_later_record_once_stale(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    core, chat, members = await setup(sessions, clock)

    async def chit_chat(prompt: MessageRef) -> None:
        await members.answer("carol", "lunch?", thread=MessageRef(CHANNEL, "another-thread"))

    chat.on_landing = chit_chat
    await core.tick()
    assert len(await held(sessions)) == 1
    clock.advance(days=1)
    [result] = await core.tick()
    assert result.outcome is Outcome.POSTED
    assert await held(sessions) == []


async def test_an_over_long_held_reply_is_refused_with_its_length_once_the_post_is_recorded(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    core, chat, members = await setup(sessions, clock)

    async def long_reply(prompt: MessageRef) -> None:
        message = await members.answer("alice", "x" * (MAX_ANSWER_CHARS + 1), thread=prompt)
        await core.handle(AnswerEdited(event_id(), members.now(), message, "short enough", prompt, user("alice")))

    chat.on_landing = long_reply
    await core.tick()

    refused, rubric = notes_to(chat, "alice")
    assert f"{MAX_ANSWER_CHARS + 1:,} characters" in refused.message.plain_text()
    assert "A strong answer covers:" in rubric.message.plain_text()
    [answer] = await answers(sessions)
    assert answer.text == "short enough"


async def test_replies_racing_the_record_all_count_exactly_once(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    core, chat, members = await setup(sessions, clock)
    replies: list[asyncio.Task[MessageRef]] = []

    async def everyone_replies(prompt: MessageRef) -> None:
        replies.extend(asyncio.create_task(members.answer(f"member-{n}", f"answer {n}", thread=prompt)) for n in range(30))
        await asyncio.gather(*replies[:10])  # held; the rest are applied while the post is recorded, or after

    chat.on_landing = everyone_replies
    await core.tick()
    await asyncio.gather(*replies)

    assert sorted(a.text or "" for a in await answers(sessions)) == sorted(f"answer {n}" for n in range(30))
    assert all(a.prompt_id is not None for a in await answers(sessions))
    assert sorted(n.user.id for n in chat.actions if isinstance(n, PostPrivately)) == sorted(f"member-{n}" for n in range(30))
    assert await held(sessions) == []


async def test_the_record_waits_for_a_reply_being_held_in_a_transaction_still_open(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    core, chat, members = await setup(sessions, clock)
    commit = asyncio.Event()
    holding: list[asyncio.Task[None]] = []

    async def hold_open(event: AnswerPosted, applied: asyncio.Event) -> None:
        async with sessions() as session, session.begin():
            await session.run_sync(answers_module.record_answer, event, clock(), clock() - timedelta(hours=1))
            applied.set()
            await commit.wait()

    async def a_reply_is_being_applied(prompt: MessageRef) -> None:
        applied = asyncio.Event()
        holding.append(asyncio.create_task(hold_open(members.answer_event("alice", MessageRef(CHANNEL, "a1"), prompt), applied)))
        await applied.wait()  # held, not committed: the record must wait for it (PostgreSQL's channel lock, SQLite's write lock)
        asyncio.get_running_loop().call_later(0.3, commit.set)

    chat.on_landing = a_reply_is_being_applied
    await core.tick()
    await asyncio.gather(*holding)

    [answer] = await answers(sessions)
    assert answer.message_id == "a1" and answer.prompt_id is not None
