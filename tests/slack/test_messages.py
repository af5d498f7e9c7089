"""Message events: answers, edits, deletes, broadcasts, and everything in a channel that is not an answer."""

from __future__ import annotations

import pytest

from bot.answers import MAX_ANSWER_CHARS
from tests.slack.conftest import CHANNEL, Slack


@pytest.fixture
async def prompt_ts(slack: Slack) -> str:
    await slack.setup()
    return await slack.post_prompt()


async def test_an_edit_updates_the_answer(slack: Slack, prompt_ts: str) -> None:
    alice = await slack.answer(prompt_ts, "UALICE", "first draft")
    assert (await slack.event(slack.payloads.edited(alice, "second, better draft"))).status == 200
    assert await slack.answers() == {alice["ts"]: "second, better draft"}


async def test_a_delete_withdraws_the_answer(slack: Slack, prompt_ts: str) -> None:
    alice = await slack.answer(prompt_ts, "UALICE")
    bob = await slack.answer(prompt_ts, "UBOB")
    assert (await slack.event(slack.payloads.deleted(alice))).status == 200
    assert set(await slack.answers()) == {bob["ts"]}
    stats = await slack.command("stats", "UALICE")
    assert "Answers given: 0" in stats


async def test_a_delete_delivered_before_its_message_keeps_the_answer_withdrawn(slack: Slack, prompt_ts: str) -> None:
    alice = slack.payloads.reply(CHANNEL, prompt_ts, "UALICE", "gone soon")
    await slack.event(slack.payloads.deleted(alice))
    await slack.event(alice)
    assert await slack.answers() == {}


async def test_a_reply_also_sent_to_the_channel_is_an_answer(slack: Slack, prompt_ts: str) -> None:
    broadcast = slack.payloads.broadcast(CHANNEL, prompt_ts, "UCAROL", "Shared with the channel too.")
    assert (await slack.event(broadcast)).status == 200
    assert await slack.answers() == {broadcast["ts"]: "Shared with the channel too."}


async def test_an_over_long_answer_is_refused_with_a_reason_and_counts_once_shortened(slack: Slack, prompt_ts: str) -> None:
    long = await slack.answer(prompt_ts, "UDAN", "x" * (MAX_ANSWER_CHARS + 1))
    assert await slack.answers() == {}
    note = slack.fake.ephemerals[-1]
    assert note["user"] == "UDAN" and f"{MAX_ANSWER_CHARS:,}" in note["text"] and "not recorded" in note["text"]
    await slack.event(slack.payloads.edited(long, "Short enough now."))
    assert await slack.answers() == {long["ts"]: "Short enough now."}


async def test_messages_that_are_not_answers_record_nothing(slack: Slack, prompt_ts: str) -> None:
    fake, payloads = slack.fake, slack.payloads
    not_answers = [
        payloads.top_level(CHANNEL, "UALICE", "Good morning, all"),
        payloads.bot_reply(CHANNEL, prompt_ts, "BOTHER", "I am another app"),
        payloads.reply(CHANNEL, prompt_ts, fake.bot_user_id, "prepbot talking to itself"),
        payloads.reply(CHANNEL, prompt_ts, "UBOB", f"<@{fake.bot_user_id}> drill please"),
        payloads.reply(CHANNEL, "1700000000.000100", "UBOB", "a reply in some other thread"),
        {**payloads.top_level(CHANNEL, "UBOB", "joined"), "subtype": "channel_join"},
        payloads.edited({"type": "message", "user": fake.bot_user_id, "text": "prompt", "ts": prompt_ts,
                         "thread_ts": prompt_ts, "channel": CHANNEL}, "prompt, with a reply count"),
    ]
    for event in not_answers:
        assert (await slack.event(event)).status == 200
    assert await slack.answers() == {}
    assert not fake.ephemerals, "nobody is sent a rubric for a message that is not an answer"


async def test_an_edit_of_a_message_outside_any_prompt_thread_is_ignored(slack: Slack, prompt_ts: str) -> None:
    chatter = slack.payloads.top_level(CHANNEL, "UALICE", "hello")
    assert (await slack.event(slack.payloads.edited(chatter, "hello again"))).status == 200
    assert (await slack.event(slack.payloads.deleted(chatter))).status == 200
    assert await slack.answers() == {}
