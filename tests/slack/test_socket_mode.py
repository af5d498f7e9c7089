"""Socket Mode: the same loop over the fake Slack's websocket, with every envelope acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.slack import SlackAdapter
from adapters.slack.translate import DRILL_CALLBACK_ID
from bot.app import StartupError
from bot.core import PrepBot
from bot.ports import ChatRouter
from tests.conftest import FakeClock
from tests.fakes.slack import FakeSlack, wait_until
from tests.slack.conftest import ADMIN, CHANNEL, Slack, slack_settings, start_adapter


@pytest.fixture
async def socket(fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> AsyncIterator[Slack]:
    settings = slack_settings(fake_slack, slack_app_token=fake_slack.app_token, slack_signing_secret=None)
    running = await start_adapter(settings, sessions, clock)
    driver = Slack(fake_slack, running, sessions, clock)
    yield driver
    await driver.close()
    await running.stop()


async def command(driver: Slack, text: str, user: str = ADMIN, name: str = "/prep") -> str:
    fake = driver.fake
    key = f"sm-{len(fake.responses)}"
    envelope = await fake.send_envelope("slash_commands", driver.payloads.command(name, text, user, CHANNEL, key=key),
                                        accepts_response_payload=True)
    assert (await fake.ack_for(envelope)) == {"envelope_id": envelope}
    await wait_until(lambda: any(r["key"] == key for r in fake.responses), what=f"the reply to {name} {text}")
    return str(next(r for r in fake.responses if r["key"] == key)["text"])


async def test_socket_mode_connects_through_apps_connections_open_with_the_app_token(socket: Slack) -> None:
    [opened] = socket.fake.calls_to("apps.connections.open")
    assert opened.token == socket.fake.app_token
    assert socket.fake.connections == 1


async def test_the_whole_loop_runs_over_socket_mode(socket: Slack) -> None:
    fake, payloads = socket.fake, socket.payloads
    assert (await command(socket, "setup 09:00 UTC daily")).startswith("Done.")
    assert (await command(socket, "now")).startswith("Posted today's question")
    prompt_ts = fake.posts(CHANNEL, top_level=True)[-1]["ts"]

    reply = payloads.reply(CHANNEL, prompt_ts, "UALICE", "over the socket")
    envelope = await fake.send_envelope("events_api", payloads.envelope(reply))
    assert await fake.ack_for(envelope) == {"envelope_id": envelope}
    assert await socket.answers() == {reply["ts"]: "over the socket"}, "recorded before the ack"

    rating = payloads.envelope(payloads.reaction("reaction_added", "UBOB", "four", CHANNEL, reply["ts"], "UALICE"))
    await fake.ack_for(await fake.send_envelope("events_api", rating))
    assert await socket.ratings() == {(reply["ts"], "UBOB"): 4}

    mention = payloads.mention(CHANNEL, "UBOB", f"<@{fake.bot_user_id}> drill", thread_ts=prompt_ts)
    await fake.ack_for(await fake.send_envelope("events_api", payloads.envelope(mention)))
    await wait_until(lambda: fake.posts(CHANNEL, thread=prompt_ts), what="the drill in the thread")
    assert "<@UBOB>" in fake.posts(CHANNEL, thread=prompt_ts)[0]["text"]

    shortcut = payloads.message_shortcut(DRILL_CALLBACK_ID, "UCAROL", CHANNEL, reply)
    await fake.ack_for(await fake.send_envelope("interactive", shortcut))
    await wait_until(lambda: len(fake.posts(CHANNEL, thread=prompt_ts)) == 2, what="the shortcut's drill")

    assert "Ratings received: 1" in await command(socket, "stats", "UALICE")


@pytest.mark.parametrize(("kind", "payload"), [
    ("events_api", {"type": "member_joined_channel", "user": "UNEW", "channel": CHANNEL, "channel_type": "C",
                    "team": "T0001", "event_ts": "1700000000.000200"}),
    ("events_api", {"type": "channel_rename", "channel": {"id": CHANNEL, "name": "prep", "created": 1700000000},
                    "event_ts": "1700000000.000300"}),
    ("interactive", {"type": "block_actions", "team": {"id": "T0001"}, "user": {"id": "UBOB"}, "trigger_id": "1.2.3",
                     "actions": [{"action_id": "someone_elses_button", "block_id": "b", "type": "button", "value": "x",
                                  "action_ts": "1700000000.1"}], "container": {"type": "message"}}),
    ("interactive", {"type": "shortcut", "callback_id": "not_ours", "team": {"id": "T0001"},
                     "user": {"id": "UBOB"}, "trigger_id": "1.2.4", "action_ts": "1700000000.2"}),
    ("interactive", {"type": "block_suggestion", "team": {"id": "T0001"}, "user": {"id": "UBOB"}, "action_id": "pick",
                     "block_id": "b", "value": "ca", "container": {"type": "view", "view_id": "V1"}}),
    ("events_api", {"type": "app_home_opened", "user": "UBOB", "channel": "D1", "tab": "home",
                    "event_ts": "1700000000.000400"}),
    ("interactive", {"type": "view_submission", "team": {"id": "T0001"}, "user": {"id": "UBOB"},
                     "view": {"id": "V1", "callback_id": "a_modal", "state": {"values": {}}, "type": "modal"}}),
])
async def test_every_envelope_is_acknowledged_even_ones_prepbot_ignores(socket: Slack, kind: str, payload: dict[str, object]) -> None:
    body = socket.payloads.envelope(payload) if kind == "events_api" and "event_ts" in payload else payload
    envelope = await socket.fake.send_envelope(kind, body)
    assert (await socket.fake.ack_for(envelope))["envelope_id"] == envelope


async def test_an_unknown_slash_command_is_acknowledged_with_an_explanation(socket: Slack) -> None:
    envelope = await socket.fake.send_envelope(
        "slash_commands", socket.payloads.command("/prepare", "", "UBOB", CHANNEL), accepts_response_payload=True)
    ack = await socket.fake.ack_for(envelope)
    assert "/prep and /drill" in ack["payload"]["text"]


async def test_a_redelivered_envelope_is_acknowledged_and_changes_nothing(socket: Slack) -> None:
    fake, payloads = socket.fake, socket.payloads
    await command(socket, "setup 09:00 UTC daily")
    await command(socket, "now")
    prompt_ts = fake.posts(CHANNEL, top_level=True)[-1]["ts"]
    envelope = payloads.envelope(payloads.reply(CHANNEL, prompt_ts, "UALICE", "once"))
    await fake.ack_for(await fake.send_envelope("events_api", envelope))
    again = await fake.send_envelope("events_api", envelope, retry_attempt=1, retry_reason="timeout")
    await fake.ack_for(again)
    await socket.adapter.drain()
    assert len(await socket.answers()) == 1
    assert len([e for e in fake.ephemerals if e["user"] == "UALICE"]) == 1


async def test_a_disconnect_request_reconnects_and_envelopes_keep_flowing(socket: Slack) -> None:
    fake = socket.fake
    await fake.disconnect()
    await wait_until(lambda: fake.connections == 2 and len(fake.sockets) == 1, what="the reconnection")
    assert len(fake.calls_to("apps.connections.open")) == 2
    assert (await command(socket, "help", "UBOB")).startswith("prepbot")


async def test_a_bad_app_token_stops_the_start_with_a_clear_message(
    fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    settings = slack_settings(fake_slack, slack_app_token="xapp-wrong", slack_signing_secret=None)
    with pytest.raises(StartupError, match="Slack refused SLACK_APP_TOKEN \\(invalid_auth\\)"):
        await start_adapter(settings, sessions, clock)


async def test_a_bad_bot_token_stops_the_start_with_a_clear_message(
    fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    with pytest.raises(StartupError, match="Slack refused SLACK_BOT_TOKEN \\(invalid_auth\\)"):
        await start_adapter(slack_settings(fake_slack, slack_bot_token="xoxb-wrong"), sessions, clock)




async def test_health_says_starting_until_the_socket_is_connected(
    fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    fake_slack.hang("apps.connections.open")
    adapter = SlackAdapter(slack_settings(fake_slack, slack_app_token=fake_slack.app_token, slack_signing_secret=None),
                           sessions, clock=clock, pace_seconds=0)
    core = PrepBot(sessions, ChatRouter({"slack": adapter.port}), default_track="mini", clock=clock)
    task = asyncio.create_task(adapter.run(core))
    try:
        await wait_until(lambda: adapter.http_port, what="the HTTP server")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{adapter.http_port}/healthz") as starting:
                assert (starting.status, await starting.json()) == (503, {"ok": False, "status": "starting"})
            fake_slack.release()
            await asyncio.wait_for(adapter.ready.wait(), 5)
            async with session.get(f"http://127.0.0.1:{adapter.http_port}/healthz") as ready:
                assert ready.status == 200
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
