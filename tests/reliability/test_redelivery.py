"""Redelivery, property-tested: any session, each event delivered one to four times in any order, ends where one clean delivery ends.

Hypothesis generates a practice session on two posted prompts (several members, answers in the
prompts' threads and elsewhere, edits with and without an author, deletions, rating and other
reactions, self-reactions, a bot's replies and reactions, read-only commands and drills). Each
event keeps the `at` the platform stamped on it; only the delivery order and the number of copies
vary, so removes arrive before adds and deletions before posts. Copies of answer and reaction
events sometimes carry a different delivery id, as when a platform replays an event under a new
envelope: the core must then deduplicate by natural keys.

Commands that change the schedule are left out on purpose: platforms deliver interactive commands
once and in order (the member sees the reply), and the core orders them by arrival, not by `at`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot import bank, db, models, progress
from bot.actions import PostPrompt
from bot.answers import MAX_ANSWER_CHARS
from bot.core import PrepBot
from bot.events import (
    AnswerDeleted,
    AnswerEdited,
    AnswerPosted,
    CommandInvoked,
    DrillRequested,
    Event,
    ReactionAdded,
    ReactionRemoved,
)
from bot.fake_chat import FakeChat
from bot.refs import ChannelRef, MessageRef, UserRef
from tests.builders import CHANNEL, WORKSPACE
from tests.conftest import FIXTURE_BANK, Databases, FakeClock
from tests.reliability.support import examples, reset

MEMBERS = ("alice", "bob", "carol")
HELPER_BOT = "helper-bot"
RATINGS = ("one", "two", "three", "four", "five")
OTHER_EMOJI = ("thumbsup", "heart", "6", "fives")
READ_ONLY_COMMANDS = ("stats", "leaderboard", "leaderboard all", "leaderboard month", "help", "rubric", "schedule",
                      "leaderboard yesterday", "dance", "pause", "skip", "now")  # the last three: refused, not organizers
OTHER_CHANNEL = ChannelRef(WORKSPACE, "C-not-set-up")
# Where a reply goes: a posted prompt's thread (0 and 1), a thread on some other message, a channel without a schedule.
PLACES = ("prompt-0", "prompt-1", "side-thread", "other-channel")
DAY_ONE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EVENTS_START = DAY_ONE + timedelta(days=1, minutes=5)
LONG = "<over-long>"  # stands for an answer one character over the limit, so failures print short


@dataclass(frozen=True, slots=True)
class Step:
    """One thing a member does, before it becomes a core event (prompt threads are known only at run time)."""

    kind: str
    who: str = ""
    message: str = ""
    place: str = ""
    text: str | None = None
    emoji: str = ""
    with_author: bool = True


@dataclass
class _Draft:
    steps: list[Step] = field(default_factory=list)
    messages: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (author, place), not deleted
    present: set[tuple[str, str, str]] = field(default_factory=set)  # (rater, message, emoji)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


answer_texts = st.one_of(st.text(max_size=40), st.just(LONG), st.none())


@st.composite
def practice_sessions(draw: st.DrawFn) -> list[Step]:
    """A plausible session: edits, deletions and removals only of what exists; times in the order drawn."""
    draft = _Draft()
    for _ in range(draw(st.integers(min_value=3, max_value=24))):
        kinds = ["answer", "answer", "react", "react", "command", "drill"]
        if draft.messages:
            kinds += ["edit", "delete"]
        if draft.present:
            kinds += ["unreact", "unreact"]
        kind = draw(st.sampled_from(kinds))
        if kind == "answer":
            message = f"a{next(draft.ids)}"
            who = draw(st.sampled_from((*MEMBERS, HELPER_BOT)))
            place = draw(st.sampled_from(PLACES))
            draft.messages[message] = (who, place)
            draft.steps.append(Step("answer", who, message, place, draw(answer_texts)))
        elif kind == "edit":
            message = draw(st.sampled_from(sorted(draft.messages)))
            who, place = draft.messages[message]
            draft.steps.append(Step("edit", who, message, place, draw(answer_texts), with_author=draw(st.booleans())))
        elif kind == "delete":
            message = draw(st.sampled_from(sorted(draft.messages)))
            _, place = draft.messages.pop(message)
            draft.present = {p for p in draft.present if p[1] != message}
            draft.steps.append(Step("delete", message=message, place=place))
        elif kind == "react":
            targets = sorted(m for m, (_, place) in draft.messages.items() if place != "other-channel")
            message = draw(st.sampled_from([*targets, "prompt-0", "prompt-1"]))
            rater = draw(st.sampled_from((*MEMBERS, HELPER_BOT)))
            emoji = draw(st.sampled_from(RATINGS + OTHER_EMOJI))
            if (rater, message, emoji) in draft.present:
                continue  # a platform reports an emoji already on a message only once
            draft.present.add((rater, message, emoji))
            draft.steps.append(Step("react", rater, message, emoji=emoji))
        elif kind == "unreact":
            rater, message, emoji = draw(st.sampled_from(sorted(draft.present)))
            draft.present.discard((rater, message, emoji))
            draft.steps.append(Step("unreact", rater, message, emoji=emoji))
        elif kind == "command":
            draft.steps.append(Step("command", draw(st.sampled_from(MEMBERS)), text=draw(st.sampled_from(READ_ONLY_COMMANDS))))
        else:
            place = draw(st.sampled_from(("prompt-0", "prompt-1", "channel")))
            topic = draw(st.sampled_from(("", "", "data", "strategy-q1", "no such topic")))
            draft.steps.append(Step("drill", draw(st.sampled_from(MEMBERS)), place=place, text=topic))
    return draft.steps


def materialise(steps: list[Step], prompts: list[MessageRef]) -> list[Event]:
    """The core events for `steps`, one second apart, with delivery ids `ev1`, `ev2`, …"""
    side_thread = MessageRef(CHANNEL, "side-1")
    threads = {"prompt-0": prompts[0], "prompt-1": prompts[1], "side-thread": side_thread,
               "other-channel": MessageRef(OTHER_CHANNEL, "side-2")}

    def message(step: Step) -> MessageRef:
        if step.message.startswith("prompt-"):
            return threads[step.message]
        channel = OTHER_CHANNEL if step.place == "other-channel" else CHANNEL
        return MessageRef(channel, step.message)

    def text(step: Step) -> str | None:
        return "x" * (MAX_ANSWER_CHARS + 1) if step.text == LONG else step.text

    events: list[Event] = []
    for number, step in enumerate(steps, 1):
        ids, at, who = f"ev{number}", EVENTS_START + timedelta(seconds=number), UserRef(WORKSPACE, step.who, step.who)
        match step.kind:
            case "answer":
                events.append(AnswerPosted(ids, at, message(step), threads[step.place], who, text(step), step.who == HELPER_BOT))
            case "edit":
                events.append(AnswerEdited(ids, at, message(step), text(step), threads[step.place], who if step.with_author else None))
            case "delete":
                events.append(AnswerDeleted(ids, at, message(step)))
            case "react":
                events.append(ReactionAdded(ids, at, message(step), who, step.emoji, step.who == HELPER_BOT))
            case "unreact":
                events.append(ReactionRemoved(ids, at, message(step), who, step.emoji, step.who == HELPER_BOT))
            case "command":
                events.append(CommandInvoked(ids, at, CHANNEL, who, step.text or ""))
            case "drill":
                events.append(DrillRequested(ids, at, CHANNEL, who, step.text or "", threads.get(step.place)))
    return events


NATURAL_KEYS = (AnswerPosted, AnswerEdited, AnswerDeleted, ReactionAdded, ReactionRemoved)


@st.composite
def deliveries(draw: st.DrawFn, count: int) -> list[tuple[int, int]]:
    """(event index, copy) pairs: every event one to four times, shuffled."""
    copies = draw(st.lists(st.integers(min_value=1, max_value=4), min_size=count, max_size=count))
    order = [(index, copy) for index, times in enumerate(copies) for copy in range(times)]
    return draw(st.permutations(order))


def redelivered(event: Event, copy: int, new_envelope: bool) -> Event:
    """Copy `copy` of `event`; a replay under a new envelope gets its own delivery id."""
    if copy == 0 or not new_envelope or not isinstance(event, NATURAL_KEYS):
        return event
    return type(event)(**{**{f: getattr(event, f) for f in event.__dataclass_fields__}, "event_id": f"{event.event_id}/replay{copy}"})


@dataclass
class Practice:
    """One channel with two posted prompts, on a database reset for each run."""

    sessions: async_sessionmaker[AsyncSession]
    clock: FakeClock
    chat: FakeChat = field(default_factory=FakeChat)

    async def start(self) -> tuple[PrepBot, list[MessageRef]]:
        await reset(self.sessions)
        self.chat = FakeChat()
        core = PrepBot(self.sessions, self.chat, default_track="mini", clock=self.clock)
        self.clock.set(DAY_ONE - timedelta(hours=1))
        reply = await core.handle(CommandInvoked("setup", self.clock(), CHANNEL, UserRef(WORKSPACE, "organizer"),
                                                 "setup 09:00 UTC daily", user_is_admin=True))
        assert reply is not None and reply.message.plain_text().startswith("Done."), reply
        for day in range(2):
            self.clock.set(DAY_ONE + timedelta(days=day))
            assert [r.outcome for r in await core.tick()] == ["posted"]
        self.clock.set(EVENTS_START + timedelta(hours=3))  # the core's own clock, for commands and drills
        return core, [ref for _, ref in self.chat.prompts]


async def outcome(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Answers, ratings, drills, members, prompts, every member's stats, leaderboards and recaps, by natural keys."""
    author, rater = aliased(models.Member), aliased(models.Member)
    async with sessions() as session:
        answers = (await session.execute(
            select(models.Answer.message_id, models.Prompt.local_date, author.external_id, models.Answer.text,
                   models.Answer.posted_at, models.Answer.withdrawn_at)
            .outerjoin(models.Prompt, models.Prompt.id == models.Answer.prompt_id)
            .outerjoin(author, author.id == models.Answer.member_id).order_by(models.Answer.message_id))).all()
        ratings = (await session.execute(
            select(models.Rating.message_id, rater.external_id, models.Rating.score, models.Rating.rated_at)
            .join(rater, rater.id == models.Rating.rater_id).order_by(models.Rating.message_id, rater.external_id))).all()
        drills = (await session.execute(
            select(models.Member.external_id, models.Question.slug, models.Drill.step)
            .join(models.Member, models.Member.id == models.Drill.member_id)
            .join(models.Question, models.Question.id == models.Drill.question_id)
            .order_by(models.Member.external_id, models.Question.slug, models.Drill.step))).all()
        members = (await session.execute(
            select(models.Member.external_id, models.Member.is_bot).order_by(models.Member.external_id))).all()
        prompts = (await session.scalars(select(models.Prompt).order_by(models.Prompt.local_date))).all()
        channel_id = prompts[0].channel_id
        stats = {external: await progress.member_stats(session, channel_id, member_id)
                 for member_id, external in await session.execute(select(models.Member.id, models.Member.external_id))}
        return {
            "answers": [tuple(row) for row in answers],
            "ratings": [tuple(row) for row in ratings],
            "drills": [tuple(row) for row in drills],
            "members": [tuple(row) for row in members],
            "prompts": [(p.local_date, p.status, p.message_id, p.question_id) for p in prompts],
            "stats": stats,
            "leaderboard all": await progress.leaderboard(session, channel_id, None),
            "leaderboard week": await progress.leaderboard(session, channel_id, EVENTS_START - timedelta(days=7)),
            "recaps": [await session.run_sync(progress.recap, p.id) for p in prompts],
        }


async def clean_and_redelivered(practice: Practice, steps: list[Step], order: list[tuple[int, int]], envelopes: list[bool]) -> None:
    core, prompts = await practice.start()
    events = materialise(steps, prompts)
    for event in events:
        await core.handle(event)
    expected = await outcome(practice.sessions)

    core, prompts = await practice.start()
    events = materialise(steps, prompts)
    for index, copy in order:
        await core.handle(redelivered(events[index], copy, envelopes[index]))
    assert len([a for a in practice.chat.actions if isinstance(a, PostPrompt)]) == 2, "a redelivery posted a prompt"
    assert await outcome(practice.sessions) == expected


@pytest.fixture
async def practice(databases: Databases, clock: FakeClock) -> Any:
    engine = db.create_engine(await databases.new())
    try:
        await db.upgrade(engine)
        sessions = db.session_factory(engine)
        async with sessions() as session, session.begin():
            await bank.sync(session, bank.load_bank(FIXTURE_BANK), clock())
        yield Practice(sessions, clock)
    finally:
        await engine.dispose()


def property_settings(max_examples: int) -> Any:
    return settings(
        max_examples=max_examples, deadline=None, database=None, print_blob=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@st.composite
def redelivered_sessions(draw: st.DrawFn) -> tuple[list[Step], list[tuple[int, int]], list[bool]]:
    steps = draw(practice_sessions())
    order = draw(deliveries(len(steps)))
    envelopes = draw(st.lists(st.booleans(), min_size=len(steps), max_size=len(steps)))
    return steps, order, envelopes


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
@property_settings(max_examples=examples(60))
@given(case=redelivered_sessions())
async def test_any_redelivery_of_a_session_ends_where_one_clean_delivery_ends_on_sqlite(
    practice: Practice, case: tuple[list[Step], list[tuple[int, int]], list[bool]],
) -> None:
    await clean_and_redelivered(practice, *case)


@pytest.mark.parametrize("databases", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@property_settings(max_examples=examples(25))
@given(case=redelivered_sessions())
async def test_any_redelivery_of_a_session_ends_where_one_clean_delivery_ends_on_postgresql(
    practice: Practice, case: tuple[list[Step], list[tuple[int, int]], list[bool]],
) -> None:
    await clean_and_redelivered(practice, *case)


SCRIPTED = [
    Step("answer", "alice", "a1", "prompt-1", "alice v1"),
    Step("answer", "bob", "a2", "prompt-1", "bob v1"),
    Step("edit", "alice", "a1", "prompt-1", "alice v2", with_author=False),
    Step("edit", "bob", "a2", "prompt-1", "bob v2"),
    Step("react", "bob", "a1", emoji="four"),
    Step("react", "bob", "a1", emoji="five"),
    Step("unreact", "bob", "a1", emoji="five"),
    Step("react", "alice", "a2", emoji="three"),
    Step("react", "alice", "a1", emoji="five"),  # a self-rating: never counts
    Step("react", HELPER_BOT, "a2", emoji="five"),  # a bot's rating: never counts
    Step("answer", "carol", "a3", "prompt-1", "carol v1"),
    Step("react", "alice", "a3", emoji="two"),
    Step("delete", message="a3", place="prompt-1"),
    Step("drill", "alice", place="prompt-1"),
]


@pytest.mark.parametrize("databases", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
async def test_a_session_delivered_backwards_twice_over_ends_where_the_clean_delivery_ends(practice: Practice) -> None:
    """The worst order, fixed: every remove before its add, every delete and edit before its post."""
    backwards = [(index, copy) for index in reversed(range(len(SCRIPTED))) for copy in range(2)]
    await clean_and_redelivered(practice, SCRIPTED, backwards, [True] * len(SCRIPTED))


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
async def test_the_clean_delivery_of_the_script_keeps_the_rating_rules(practice: Practice) -> None:
    """The oracle itself is right: add 4, add 5, remove 5 rates 4; self and bot ratings and a withdrawn answer do not count."""
    core, prompts = await practice.start()
    for event in materialise(SCRIPTED, prompts):
        await core.handle(event)
    result = await outcome(practice.sessions)
    assert [(s.member_external_id, s.ratings, s.average) for s in result["leaderboard all"]] == [("alice", 1, 4.0), ("bob", 1, 3.0)]
    assert [(a[0], a[3], a[5] is not None) for a in result["answers"]] == [
        ("a1", "alice v2", False), ("a2", "bob v2", False), ("a3", None, True)]


BOT_EDITS = [
    Step("answer", HELPER_BOT, "a1", "prompt-1", "a bot's reply"),
    Step("edit", HELPER_BOT, "a1", "prompt-1", "a bot's reply, edited"),  # Discord names the author, not that it is a bot
    Step("react", "alice", "a1", emoji="five"),
    Step("answer", "bob", "a2", "prompt-1", "bob's answer"),
]


@pytest.mark.parametrize("databases", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@pytest.mark.parametrize("backwards", [False, True])
async def test_a_bots_edited_reply_never_counts_as_an_answer_whichever_event_arrives_first(practice: Practice, backwards: bool) -> None:
    core, prompts = await practice.start()
    events = materialise(BOT_EDITS, prompts)
    for event in reversed(events) if backwards else events:
        await core.handle(event)
    result = await outcome(practice.sessions)
    assert result["leaderboard all"] == []
    assert (result["recaps"][1].answers, result["recaps"][1].members) == (1, 1)
    assert result["stats"]["alice"].ratings_given == 0


READDED = [
    Step("answer", "alice", "a1", "prompt-1", "alice's answer"),
    Step("react", "bob", "a1", emoji="four"),
    Step("unreact", "bob", "a1", emoji="four"),
    Step("react", "bob", "a1", emoji="four"),
]


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
async def test_a_re_added_reaction_dates_the_rating_from_the_re_add_even_when_the_remove_arrives_last(practice: Practice) -> None:
    await clean_and_redelivered(practice, READDED, [(0, 0), (1, 0), (3, 0), (2, 0)], [False] * len(READDED))


SHORTENED = [
    Step("answer", "alice", "a1", "prompt-1", LONG),  # refused: too long
    Step("edit", "alice", "a1", "prompt-1", "shorter", with_author=False),
    Step("edit", "alice", "a1", "prompt-1", "shorter still"),
]


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]])
async def test_an_over_long_answer_shortened_by_edits_counts_once_an_edit_names_its_author_in_any_order(
    practice: Practice, order: list[int],
) -> None:
    await clean_and_redelivered(practice, SHORTENED, [(index, 0) for index in order], [False] * len(SHORTENED))
    [answer] = (await outcome(practice.sessions))["answers"]
    assert (answer[1], answer[2], answer[3]) == (DAY_ONE.date() + timedelta(days=1), "alice", "shorter still")


RECORDED_BY_EDITS = [
    Step("answer", "alice", "a1", "prompt-1", LONG),  # refused: the edits record the answer
    Step("edit", "alice", "a1", "prompt-1", "first"),
    Step("edit", "alice", "a1", "prompt-1", "second"),
    Step("edit", "alice", "a1", "prompt-1", "third", with_author=False),
]


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
@pytest.mark.parametrize("order", [[3, 2, 1, 0], [2, 3, 1, 0], [1, 3, 2, 0]])
async def test_an_answer_recorded_by_edits_is_dated_from_the_earliest_of_them_in_any_order(practice: Practice, order: list[int]) -> None:
    await clean_and_redelivered(practice, RECORDED_BY_EDITS, [(index, 0) for index in order], [False] * len(RECORDED_BY_EDITS))
    [answer] = (await outcome(practice.sessions))["answers"]
    assert (answer[3], answer[4]) == ("third", EVENTS_START + timedelta(seconds=2))
