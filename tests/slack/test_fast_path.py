"""The fast path: messages and reactions served without bolt's dispatch, with every guarantee bolt gave them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.slack import SlackAdapter
from bot.actions import Reply
from bot.core import PrepBot
from bot.events import Event
from bot.ports import ChatRouter
from tests.conftest import FakeClock
from tests.fakes.slack import FakeSlack, sign
from tests.slack.conftest import CHANNEL, OTHER_BOT, Running, Slack, slack_settings

STALE = str(int(time.time()) - 6 * 60)


class RecordingBot(PrepBot):
    """The real core, remembering every event an adapter handed it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[Event] = []

    async def handle(self, event: Event) -> Reply | None:
        self.seen.append(event)
        return await super().handle(event)


async def start(fake: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock, *, fast_path: bool) -> Running:
    settings = slack_settings(fake)
    adapter = SlackAdapter(settings, sessions, clock=clock, pace_seconds=0, fast_path=fast_path)
    core = RecordingBot(sessions, ChatRouter({"slack": adapter.port}), organizers=settings.organizers,
                        default_track=settings.default_track, clock=clock)
    task = asyncio.create_task(adapter.run(core))
    await asyncio.wait_for(adapter.ready.wait(), 10)
    return Running(adapter, core, task)


@pytest.fixture
async def prompt_ts(slack: Slack) -> str:
    await slack.setup()
    return await slack.post_prompt()


def deliveries(slack: Slack, prompt_ts: str) -> list[dict[str, Any]]:
    """One of every kind of message and reaction event Slack sends a channel, envelopes with fixed ids."""
    p = slack.payloads
    alice = p.reply(CHANNEL, prompt_ts, "UALICE", "Alice's answer")
    bob = p.broadcast(CHANNEL, prompt_ts, "UBOB", "Bob's answer, also in the channel")
    events = [
        alice, bob,
        p.bot_reply(CHANNEL, prompt_ts, "BOTHER", "another bot talking"),
        p.top_level(CHANNEL, "UCAROL", "not in a thread"),
        p.reply(CHANNEL, prompt_ts, "UCAROL", f"<@{slack.fake.bot_user_id}> drill me"),
        p.reply(CHANNEL, prompt_ts, slack.fake.bot_user_id, "the bot's own reply"),
        p.edited(alice, "Alice's answer, edited"),
        p.reaction("reaction_added", "UBOB", "four", CHANNEL, alice["ts"], "UALICE"),
        p.reaction("reaction_added", "UCAROL", "five::skin-tone-3", CHANNEL, alice["ts"], "UALICE"),
        p.reaction("reaction_added", "UCAROL", "tada", CHANNEL, alice["ts"], "UALICE"),
        p.reaction("reaction_added", "UALICE", "five", CHANNEL, alice["ts"], "UALICE"),
        p.reaction("reaction_added", OTHER_BOT, "one", CHANNEL, bob["ts"], "UBOB"),
        p.reaction("reaction_added", slack.fake.bot_user_id, "three", CHANNEL, bob["ts"], "UBOB"),
        p.reaction("reaction_removed", "UBOB", "four", CHANNEL, alice["ts"], "UALICE"),
        p.deleted(bob),
    ]
    return [p.envelope(event, f"EvFAST{i:04d}") for i, event in enumerate(events)]


async def test_the_fast_path_hands_the_core_exactly_the_events_bolt_did(
    fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    handed: dict[bool, list[Event]] = {}
    for fast in (False, True):
        running = await start(fake_slack, sessions, clock, fast_path=fast)
        slack = Slack(fake_slack, running, sessions, clock)
        try:
            prompt = "1772438400.000100"  # the same thread both times; which prompt it is does not matter here
            for envelope in deliveries(slack, prompt):
                assert (await slack.client.event(envelope)).status == 200
            await slack.adapter.drain()
            assert isinstance(running.core, RecordingBot)
            handed[fast] = list(running.core.seen)
        finally:
            await slack.close()
            await running.stop()
    # Not empty, and covering answers, edits, deletions and reactions: the comparison means something.
    kinds = {type(event).__name__ for event in handed[True]}
    assert kinds >= {"AnswerPosted", "AnswerEdited", "AnswerDeleted", "ReactionAdded", "ReactionRemoved"}, kinds
    assert handed[True] == handed[False]


@pytest.mark.parametrize(("case", "options"), [
    ("a wrong signature", {"signature": "v0=" + "0" * 64}),
    ("a signature made with another secret", {"signature": sign("another-secret", str(int(time.time())), "{}")}),
    ("a timestamp older than five minutes", {"timestamp": STALE}),
    ("a timestamp that is not a number", {"timestamp": "soon"}),
    ("no signature headers at all", {"unsigned": True}),
])
async def test_a_reaction_that_fails_verification_is_refused_with_401_and_changes_nothing(
    slack: Slack, prompt_ts: str, case: str, options: dict[str, Any],
) -> None:
    alice = await slack.answer(prompt_ts, "UALICE")
    reaction = slack.payloads.reaction("reaction_added", "UBOB", "five", CHANNEL, alice["ts"], "UALICE")
    answer = await slack.client.event(slack.payloads.envelope(reaction), **options)
    assert answer.status == 401, case
    await slack.adapter.drain()
    assert await slack.ratings() == {}


async def test_a_correctly_signed_but_stale_edit_is_refused(slack: Slack, prompt_ts: str) -> None:
    alice = await slack.answer(prompt_ts, "UALICE", "the original")
    body = json.dumps(slack.payloads.envelope(slack.payloads.edited(alice, "a replayed edit")))
    answer = await slack.client.send(body, "application/json", timestamp=STALE, signature=sign(slack.client.secret, STALE, body))
    assert answer.status == 401
    assert await slack.answers() == {alice["ts"]: "the original"}


async def test_a_retried_reaction_with_the_same_event_id_counts_once(slack: Slack, prompt_ts: str) -> None:
    alice = await slack.answer(prompt_ts, "UALICE")
    envelope = slack.payloads.envelope(slack.payloads.reaction("reaction_added", "UBOB", "five", CHANNEL, alice["ts"], "UALICE"))
    removed = slack.payloads.envelope(slack.payloads.reaction("reaction_removed", "UBOB", "five", CHANNEL, alice["ts"], "UALICE"))
    assert (await slack.client.event(envelope)).status == 200
    assert (await slack.client.event(removed)).status == 200
    for attempt in (1, 2, 3):
        assert (await slack.client.event(envelope, retry_num=attempt, retry_reason="http_timeout")).status == 200
    await slack.adapter.drain()
    assert await slack.ratings() == {}, "the retried add came after the removal and must not bring the rating back"


async def test_a_reaction_is_acknowledged_without_waiting_for_slack(slack: Slack, prompt_ts: str) -> None:
    alice = await slack.answer(prompt_ts, "UALICE")
    slack.fake.hang("users.info", times=10)  # looking up whether the rater is a bot never finishes
    reaction = slack.payloads.reaction("reaction_added", "UDAN", "three", CHANNEL, alice["ts"], "UALICE")
    answer = await asyncio.wait_for(slack.client.event(slack.payloads.envelope(reaction)), 5)
    assert answer.status == 200
    assert await slack.ratings() == {(alice["ts"], "UDAN"): 3}
    slack.fake.release()
    await slack.adapter.drain()


async def test_many_reactions_from_one_new_rater_ask_slack_about_them_once(slack: Slack, prompt_ts: str) -> None:
    answers = [await slack.answer(prompt_ts, member) for member in ("UALICE", "UBOB", "UCAROL")]
    lookups = len(slack.fake.calls_to("users.info"))
    envelopes = [slack.payloads.envelope(slack.payloads.reaction("reaction_added", "UDAN", "four", CHANNEL, a["ts"], a["user"]))
                 for a in answers]
    statuses = await asyncio.gather(*(slack.client.event(e) for e in envelopes))
    await slack.adapter.drain()
    assert [s.status for s in statuses] == [200, 200, 200]
    assert [c.args["user"] for c in slack.fake.calls_to("users.info")[lookups:]] == ["UDAN"]


async def test_a_failing_core_answers_500_so_slack_retries(slack: Slack, prompt_ts: str, monkeypatch: pytest.MonkeyPatch) -> None:
    reply = slack.payloads.reply(CHANNEL, prompt_ts, "UALICE", "an answer the database refused")

    async def refuse(event: Event) -> Reply | None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(slack.running.core, "handle", refuse)
    envelope = slack.payloads.envelope(reply)
    assert (await slack.client.event(envelope)).status == 500
    monkeypatch.undo()
    assert (await slack.client.event(envelope, retry_num=1, retry_reason="http_error")).status == 200
    await slack.adapter.drain()
    assert await slack.answers() == {reply["ts"]: "an answer the database refused"}


async def test_a_mention_and_the_url_check_still_go_through_bolt(slack: Slack, prompt_ts: str) -> None:
    mention = slack.payloads.mention(CHANNEL, "UBOB", f"<@{slack.fake.bot_user_id}> drill", thread_ts=prompt_ts)
    assert (await slack.event(mention)).status == 200
    assert slack.fake.posts(CHANNEL, thread=prompt_ts), "the drill was posted in the thread"
    answer = await slack.client.event({"type": "url_verification", "challenge": "c-123", "token": "t"})
    assert json.loads(answer.text) == {"challenge": "c-123"}


@pytest.fixture
async def socket_slack(fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> AsyncIterator[Running]:
    settings = slack_settings(fake_slack, slack_app_token=fake_slack.app_token, slack_signing_secret=None)
    adapter = SlackAdapter(settings, sessions, clock=clock, pace_seconds=0)
    core = PrepBot(sessions, ChatRouter({"slack": adapter.port}), organizers=settings.organizers,
                   default_track=settings.default_track, clock=clock)
    task = asyncio.create_task(adapter.run(core))
    await asyncio.wait_for(adapter.ready.wait(), 10)
    yield Running(adapter, core, task)
    await Running(adapter, core, task).stop()


async def test_socket_mode_reactions_take_the_fast_path_and_are_acknowledged_after_they_are_recorded(
    socket_slack: Running, fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    slack = Slack(fake_slack, socket_slack, sessions, clock)
    try:
        setup = await fake_slack.send_envelope("slash_commands", slack.payloads.command("/prep", "setup 09:00 UTC daily", "UADMIN", CHANNEL))
        await fake_slack.ack_for(setup)
        await socket_slack.adapter.drain()  # the command runs after its ack; /prep now needs the schedule
        now = await fake_slack.send_envelope("slash_commands", slack.payloads.command("/prep", "now", "UADMIN", CHANNEL))
        await fake_slack.ack_for(now)
        await socket_slack.adapter.drain()
        prompt = fake_slack.posts(CHANNEL, top_level=True)[-1]["ts"]
        alice = slack.payloads.reply(CHANNEL, prompt, "UALICE", "over the socket")
        await fake_slack.ack_for(await fake_slack.send_envelope("events_api", slack.payloads.envelope(alice)))
        rating = slack.payloads.reaction("reaction_added", "UBOB", "two", CHANNEL, alice["ts"], "UALICE")
        envelope = await fake_slack.send_envelope("events_api", slack.payloads.envelope(rating))
        assert await fake_slack.ack_for(envelope) == {"envelope_id": envelope}
        assert await slack.ratings() == {(alice["ts"], "UBOB"): 2}, "recorded before the ack"
        await socket_slack.adapter.drain()
    finally:
        await slack.close()
