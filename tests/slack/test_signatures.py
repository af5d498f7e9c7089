"""Request verification: only requests signed with the app's signing secret, and recent, are served."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.fakes.slack import sign
from tests.slack.conftest import CHANNEL, Slack

STALE = str(int(time.time()) - 6 * 60)


@pytest.fixture
async def prompt_ts(slack: Slack) -> str:
    await slack.setup()
    return await slack.post_prompt()


@pytest.mark.parametrize(("case", "options"), [
    ("a wrong signature", {"signature": "v0=" + "0" * 64}),
    ("a signature made with another secret", {"signature": sign("another-secret", str(int(time.time())), "{}")}),
    ("a timestamp older than five minutes", {"timestamp": STALE}),
    ("no signature headers at all", {"unsigned": True}),
])
async def test_an_unverified_event_is_refused_with_401_and_changes_nothing(
    slack: Slack, prompt_ts: str, case: str, options: dict[str, Any],
) -> None:
    reply = slack.payloads.reply(CHANNEL, prompt_ts, "UALICE", "forged")
    answer = await slack.client.event(slack.payloads.envelope(reply), **options)
    assert answer.status == 401, case
    await slack.adapter.drain()
    assert await slack.answers() == {}


async def test_a_stale_but_correctly_signed_request_is_refused(slack: Slack, prompt_ts: str) -> None:
    body = json.dumps(slack.payloads.envelope(slack.payloads.reply(CHANNEL, prompt_ts, "UALICE", "replayed")))
    answer = await slack.client.send(body, "application/json", timestamp=STALE, signature=sign(slack.client.secret, STALE, body))
    assert answer.status == 401
    assert await slack.answers() == {}


async def test_an_unsigned_command_runs_nothing(slack: Slack) -> None:
    answer = await slack.client.command(slack.payloads.command("/prep", "setup 09:00 UTC", "UADMIN", "C0OTHER"), unsigned=True)
    assert answer.status == 401
    await slack.adapter.drain()
    assert slack.fake.responses == [] and slack.fake.calls_to("users.info") == []
    assert (await slack.command("schedule", channel="C0OTHER")).startswith("This channel has no practice schedule yet.")


async def test_the_url_verification_challenge_is_answered(slack: Slack) -> None:
    challenge = {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                 "type": "url_verification"}
    answer = await slack.client.event(challenge)
    assert answer.status == 200
    assert json.loads(answer.text) == {"challenge": challenge["challenge"]}


async def test_health_is_reported_without_a_signature(slack: Slack) -> None:
    async with slack.client._session.get(f"{slack.running.url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"ok": True}
