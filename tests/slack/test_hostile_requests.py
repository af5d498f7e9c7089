"""Requests no Slack would send: oversized bodies are refused with 413, malformed ones never fail the server; nothing changes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.slack.http import MAX_BODY_BYTES
from bot import models
from tests.conftest import FakeClock
from tests.fakes.slack import FakeSlack, sign
from tests.slack.conftest import CHANNEL, Running, Slack, slack_settings, start_adapter
from tests.slack.payloads import SIGNING_SECRET


@pytest.fixture
async def prompt_ts(slack: Slack) -> str:
    await slack.setup()
    return await slack.post_prompt()


async def counts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Rows per table that an event or command could add to."""
    async with sessions() as session:
        return {model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (models.InboxEvent, models.Answer, models.Rating, models.Member, models.Channel, models.Prompt)}


def signed_headers(body: bytes, content_type: str = "application/json") -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(SIGNING_SECRET, stamp, body.decode())}


def oversized_envelope(slack: Slack, prompt_ts: str) -> bytes:
    """A correctly signed, well-formed answer event, padded past the limit inside its text."""
    reply = slack.payloads.reply(CHANNEL, prompt_ts, "UALICE", "x" * (MAX_BODY_BYTES + 1))
    return json.dumps(slack.payloads.envelope(reply)).encode()


async def chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


async def post(url: str, body: Any, headers: dict[str, str]) -> int:
    """POST and return the status; a server that stops reading a refused body may also close the connection."""
    async with aiohttp.ClientSession() as session:
        try:
            async with session.post(url, data=body, headers=headers) as response:
                return response.status
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
            return 0


async def still_serves(slack: Slack, prompt_ts: str) -> None:
    reply = await slack.answer(prompt_ts, "UBOB", "still here")
    assert (await slack.answers())[reply["ts"]] == "still here"


async def test_a_body_whose_content_length_is_over_the_limit_is_refused_with_413(slack: Slack, prompt_ts: str) -> None:
    before = await counts(slack.sessions)
    body = oversized_envelope(slack, prompt_ts)
    status = await post(f"{slack.running.url}/slack/events", body, signed_headers(body))
    assert status == 413
    await slack.adapter.drain()
    assert await counts(slack.sessions) == before
    await still_serves(slack, prompt_ts)


async def test_a_chunked_body_over_the_limit_without_a_content_length_is_refused_with_413(slack: Slack, prompt_ts: str) -> None:
    before = await counts(slack.sessions)
    body = oversized_envelope(slack, prompt_ts)
    status = await post(f"{slack.running.url}/slack/events", chunks(body), signed_headers(body))
    assert status in (413, 0)  # 413, or the connection closed while the client was still sending
    await slack.adapter.drain()
    assert await counts(slack.sessions) == before
    await still_serves(slack, prompt_ts)


async def test_a_claimed_content_length_over_the_limit_is_refused_before_the_body_is_read(slack: Slack, prompt_ts: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", slack.adapter.http_port)
    writer.write(f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {MAX_BODY_BYTES * 50}\r\n\r\n{{".encode())
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"413"


async def test_oversized_bodies_on_the_install_pages_are_refused_too(
    fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    settings = slack_settings(fake_slack, slack_bot_token=None, slack_client_id=fake_slack.client_id,
                              slack_client_secret=fake_slack.client_secret, slack_state_secret="s" * 40)
    running: Running = await start_adapter(settings, sessions, clock)
    try:
        before = await counts(sessions)
        body = b"x" * (MAX_BODY_BYTES + 1)
        for path in ("/slack/install", "/slack/oauth_redirect?code=c&state=s"):
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{running.url}{path}", data=chunks(body)) as response:
                    assert response.status == 413, path
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(models.OAuthState)) == 0
        assert await counts(sessions) == before
    finally:
        await running.stop()


MALFORMED_JSON = [
    b"{not json",
    b"[1, 2, 3]",
    b'"a string"',
    b'{"type": "event_callback", "team_id": "T0001", "event_id": "Ev1", "event": "not an object"}',
    b'{"type": "event_callback", "team_id": "T0001", "event_id": "Ev2", "event": {"type": "message"}}',
    b'{"type": "event_callback", "team_id": "T0001", "event_id": "Ev3", "event": {"type": "message", "user": ["U"],'
    b' "ts": {"x": 1}, "thread_ts": 7, "channel": null, "text": {"rich": true}}}',
    b'{"type": "event_callback", "team_id": "T0001", "event_id": "Ev4", "event": {"type": "reaction_added", "user": "UBOB",'
    b' "reaction": "five", "item": ["message"], "event_ts": "1.0"}}',
    b'{"type": "event_callback", "team_id": ["T0001"], "event_id": {"id": 1}, "event": {"type": "reaction_removed"}}',
    b'{"type": "event_callback", "team_id": "T0001", "event_id": "Ev5", "event": {"type": "app_mention", "text": 42,'
    b' "channel": "C0PRACTICE", "user": "UALICE", "ts": "1.0"}}',
    b'{"type": "event_callback", "team_id": "T0001", "event_id": "Ev6", "event": {"type": "message", "subtype": "message_changed",'
    b' "channel": "C0PRACTICE", "message": "gone", "previous_message": 3, "ts": "1.0", "event_ts": "1.0"}}',
]

MALFORMED_FORMS = [
    urlencode({"payload": "{not json"}),
    urlencode({"payload": json.dumps(["a", "list"])}),
    urlencode({"payload": json.dumps({"type": "message_action", "callback_id": "drill_me", "team": "T0001", "user": None})}),
    urlencode({"command": "/prep", "text": "setup 09:00 UTC"}),  # no team, channel, user or trigger
    "%%%&&&===",
]


async def test_correctly_signed_malformed_events_and_forms_never_fail_the_server_and_change_nothing(
    slack: Slack, prompt_ts: str,
) -> None:
    before, responses = await counts(slack.sessions), len(slack.fake.responses)
    cases = [(body, "application/json") for body in MALFORMED_JSON]
    cases += [(form.encode(), "application/x-www-form-urlencoded") for form in MALFORMED_FORMS]
    for body, content_type in cases:
        status = await post(f"{slack.running.url}/slack/events", body, signed_headers(body, content_type))
        assert status in (200, 400, 404), (status, body)
    await slack.adapter.drain()
    assert await counts(slack.sessions) == before
    assert len(slack.fake.responses) == responses and slack.fake.ephemerals == [], "no command ran, nobody was told anything"
    await still_serves(slack, prompt_ts)


async def test_an_unsigned_unreadable_body_is_refused_without_an_error_in_the_log(
    slack: Slack, prompt_ts: str, caplog: pytest.LogCaptureFixture,
) -> None:
    before = await counts(slack.sessions)
    for body, content_type in ((b"{not json", "application/json"), (b"payload=%7Bnope", "application/x-www-form-urlencoded")):
        assert await post(f"{slack.running.url}/slack/events", body, {"Content-Type": content_type}) == 400
    assert [r for r in caplog.records if r.levelno >= 40] == []
    assert await counts(slack.sessions) == before
