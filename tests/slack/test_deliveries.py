"""Slack's delivery rules: record before acknowledging, acknowledge fast, and survive retries and duplicates."""

from __future__ import annotations

import asyncio
import time

import pytest

from adapters.slack import adapter as slack_adapter

from tests.fakes.slack import wait_until
from tests.slack.conftest import CHANNEL, Slack


@pytest.fixture
async def prompt_ts(slack: Slack) -> str:
    await slack.setup()
    return await slack.post_prompt()


async def test_an_answer_is_recorded_before_slack_gets_its_acknowledgement(slack: Slack, prompt_ts: str) -> None:
    reply = slack.payloads.reply(CHANNEL, prompt_ts, "UALICE", "durable")
    answer = await slack.client.event(slack.payloads.envelope(reply))
    assert answer.status == 200
    # No waiting for background work: by the time the 200 arrived the answer was committed.
    assert await slack.answers() == {reply["ts"]: "durable"}
    await slack.adapter.drain()


async def test_a_duplicated_delivery_changes_nothing(slack: Slack, prompt_ts: str) -> None:
    reply = slack.payloads.reply(CHANNEL, prompt_ts, "UALICE", "once")
    envelope = slack.payloads.envelope(reply)
    for _ in range(3):
        assert (await slack.client.event(envelope)).status == 200
    await slack.adapter.drain()
    assert await slack.answers() == {reply["ts"]: "once"}
    assert len([e for e in slack.fake.ephemerals if e["user"] == "UALICE"]) == 1, "one rubric note, not three"


async def test_a_first_delivery_marked_as_a_retry_is_processed(slack: Slack, prompt_ts: str) -> None:
    reply = slack.payloads.reply(CHANNEL, prompt_ts, "UBOB", "the first try was lost")
    assert (await slack.client.event(slack.payloads.envelope(reply), retry_num=1, retry_reason="http_timeout")).status == 200
    await slack.adapter.drain()
    assert await slack.answers() == {reply["ts"]: "the first try was lost"}


async def test_a_retry_of_an_event_already_seen_is_ignored(slack: Slack, prompt_ts: str) -> None:
    alice = await slack.answer(prompt_ts, "UALICE")
    added = slack.payloads.envelope(slack.payloads.reaction("reaction_added", "UBOB", "five", CHANNEL, alice["ts"]))
    removed = slack.payloads.envelope(slack.payloads.reaction("reaction_removed", "UBOB", "five", CHANNEL, alice["ts"]))
    await slack.client.event(added)
    await slack.client.event(removed)
    # The add is redelivered after the removal: it must not bring the rating back.
    assert (await slack.client.event(added, retry_num=2, retry_reason="http_error")).status == 200
    await slack.adapter.drain()
    assert await slack.ratings() == {}


async def test_redeliveries_in_any_order_end_where_one_delivery_would(slack: Slack, prompt_ts: str) -> None:
    alice = slack.payloads.reply(CHANNEL, prompt_ts, "UALICE", "draft")
    edit = slack.payloads.edited(alice, "final")
    envelopes = [slack.payloads.envelope(e) for e in (alice, edit)]
    for envelope in (envelopes[1], envelopes[0], envelopes[1], envelopes[0]):
        assert (await slack.client.event(envelope)).status == 200
    await slack.adapter.drain()
    assert await slack.answers() == {alice["ts"]: "final"}


async def test_commands_and_events_are_acknowledged_while_slack_itself_is_slow(slack: Slack, prompt_ts: str) -> None:
    slack.fake.hang("users.info", times=10)
    slack.fake.hang("chat.postEphemeral", times=10)
    started = time.monotonic()
    command = await slack.client.command(slack.payloads.command("/prep", "stats", "UCAROL", CHANNEL, key="slow"))
    answer = await slack.client.event(slack.payloads.envelope(slack.payloads.reply(CHANNEL, prompt_ts, "UCAROL", "hi")))
    assert command.status == 200 and answer.status == 200
    assert time.monotonic() - started < 1.5, "acknowledged well inside Slack's 3 seconds"
    assert not [r for r in slack.fake.responses if r["key"] == "slow"], "the reply comes after the ack"
    slack.fake.release()
    await asyncio.wait_for(slack.adapter.drain(), 5)
    assert [r["text"] for r in slack.fake.responses if r["key"] == "slow"][0].startswith("Your practice so far")


async def test_a_command_is_acknowledged_with_an_empty_body_and_answered_privately(slack: Slack, prompt_ts: str) -> None:
    answer = await slack.client.command(slack.payloads.command("/prep", "help", "UBOB", CHANNEL, key="help"))
    assert (answer.status, answer.text) == (200, "")
    await slack.adapter.drain()
    [reply] = [r for r in slack.fake.responses if r["key"] == "help"]
    assert reply["response_type"] == "ephemeral" and "/prep" in reply["text"]


async def test_a_reply_falls_back_to_an_ephemeral_message_when_the_response_url_fails(slack: Slack, prompt_ts: str) -> None:
    form = slack.payloads.command("/prep", "help", "UBOB", CHANNEL)
    form["response_url"] = f"{slack.fake.base_url}/no-such-hook"
    assert (await slack.client.command(form)).status == 200
    await slack.adapter.drain()
    assert slack.fake.ephemerals[-1]["user"] == "UBOB" and "/prep" in slack.fake.ephemerals[-1]["text"]


async def test_stopping_does_not_wait_for_ever_on_a_reply_slack_never_answers(
    slack: Slack, prompt_ts: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(slack_adapter, "SHUTDOWN_GRACE_SECONDS", 0.2)
    slack.fake.hang("chat.postEphemeral", times=1)
    await slack.client.event(slack.payloads.envelope(slack.payloads.reply(CHANNEL, prompt_ts, "UDAN", "stuck note")))
    await wait_until(lambda: slack.fake.calls_to("chat.postEphemeral"), what="the rubric note to reach Slack")
    started = time.monotonic()
    await asyncio.wait_for(slack.running.stop(), 5)
    assert time.monotonic() - started < 2


async def test_an_answer_given_before_prepbot_hears_its_post_landed_counts_once_the_post_is_recorded(slack: Slack) -> None:
    await slack.setup()
    slack.fake.hang("chat.postMessage")  # Slack has the post and shows it; its answer to prepbot is slow
    posting = asyncio.create_task(slack.command("now"))
    await wait_until(lambda: slack.fake.posts(CHANNEL, top_level=True), what="the daily post on Slack")
    prompt_ts = str(slack.fake.posts(CHANNEL, top_level=True)[-1]["ts"])

    reply = slack.payloads.reply(CHANNEL, prompt_ts, "UALICE", "quick off the mark")
    assert (await slack.client.event(slack.payloads.envelope(reply))).status == 200
    rating = slack.payloads.reaction("reaction_added", "UBOB", "five", CHANNEL, reply["ts"], "UALICE")
    assert (await slack.client.event(slack.payloads.envelope(rating))).status == 200
    assert await slack.answers() == {}, "prepbot does not know the thread yet: the reply waits"

    slack.fake.release()
    assert (await posting).startswith("Posted today's question")
    assert await slack.answers() == {reply["ts"]: "quick off the mark"}
    assert await slack.ratings() == {(reply["ts"], "UBOB"): 5}
    [note] = [e for e in slack.fake.ephemerals if e["user"] == "UALICE"]
    assert note["thread_ts"] == prompt_ts and "rubric" in note["text"].lower()
