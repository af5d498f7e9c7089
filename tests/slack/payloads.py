"""Slack payloads shaped like the examples in Slack's API documentation, and a client that signs and sends them."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from tests.fakes.slack import FakeSlack, sign, wait_until

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
_ids = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_ids):06d}"


class Payloads:
    """Builds Events API envelopes, slash-command forms and shortcut payloads for one workspace.

    Timestamps advance by a millisecond per message from `start`, like a busy channel.
    """

    def __init__(self, team_id: str, bot_user_id: str, response_url: str, start: float | None = None) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.response_url = response_url
        self._now = start if start is not None else time.time()

    def ts(self) -> str:
        self._now += 0.001
        return f"{self._now:.6f}"

    def envelope(self, event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        return {
            "token": "XXYYZZ", "team_id": self.team_id, "api_app_id": "APREPBOT", "event": event,
            "type": "event_callback", "event_id": event_id or unique("Ev0PV52K"), "event_time": int(float(event["event_ts"])),
            "authorizations": [{"enterprise_id": None, "team_id": self.team_id, "user_id": self.bot_user_id,
                                "is_bot": True, "is_enterprise_install": False}],
            "is_ext_shared_channel": False, "event_context": unique("4-eyJldCI6Im1lc3NhZ2Ui"),
        }

    def reply(self, channel: str, thread_ts: str, user: str, text: str, *, ts: str | None = None) -> dict[str, Any]:
        ts = ts or self.ts()
        return {"client_msg_id": unique("c0ffee-"), "type": "message", "text": text, "user": user, "ts": ts,
                "team": self.team_id, "thread_ts": thread_ts, "parent_user_id": self.bot_user_id,
                "channel": channel, "event_ts": ts, "channel_type": "channel"}

    def broadcast(self, channel: str, thread_ts: str, user: str, text: str) -> dict[str, Any]:
        event = self.reply(channel, thread_ts, user, text)
        event["subtype"] = "thread_broadcast"
        event["root"] = {"type": "message", "user": self.bot_user_id, "ts": thread_ts, "thread_ts": thread_ts}
        return event

    def top_level(self, channel: str, user: str, text: str) -> dict[str, Any]:
        ts = self.ts()
        return {"client_msg_id": unique("c0ffee-"), "type": "message", "text": text, "user": user, "ts": ts,
                "team": self.team_id, "channel": channel, "event_ts": ts, "channel_type": "channel"}

    def bot_reply(self, channel: str, thread_ts: str, bot_id: str, text: str) -> dict[str, Any]:
        ts = self.ts()
        return {"type": "message", "subtype": "bot_message", "text": text, "ts": ts, "bot_id": bot_id,
                "username": "otherbot", "thread_ts": thread_ts, "channel": channel, "event_ts": ts, "channel_type": "channel"}

    def edited(self, original: Mapping[str, Any], text: str) -> dict[str, Any]:
        ts = self.ts()
        message = {"type": "message", "user": original["user"], "text": text, "ts": original["ts"],
                   "thread_ts": original.get("thread_ts"), "edited": {"user": original["user"], "ts": ts},
                   "team": self.team_id, "source_team": self.team_id}
        return {"type": "message", "subtype": "message_changed", "message": message, "previous_message": dict(original),
                "channel": original["channel"], "hidden": True, "ts": ts, "event_ts": ts, "channel_type": "channel"}

    def deleted(self, original: Mapping[str, Any]) -> dict[str, Any]:
        ts = self.ts()
        return {"type": "message", "subtype": "message_deleted", "hidden": True, "deleted_ts": original["ts"],
                "channel": original["channel"], "previous_message": dict(original), "ts": ts, "event_ts": ts,
                "channel_type": "channel"}

    def reaction(self, kind: str, user: str, reaction: str, channel: str, ts: str, item_user: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {"type": kind, "user": user, "reaction": reaction,
                                 "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": self.ts()}
        if item_user is not None:
            event["item_user"] = item_user
        return event

    def mention(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> dict[str, Any]:
        ts = self.ts()
        event = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts,
                 "team": self.team_id, "client_msg_id": unique("c0ffee-")}
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    def command(self, command: str, text: str, user: str, channel: str, key: str = "r") -> dict[str, str]:
        return {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO", "team_id": self.team_id, "team_domain": "example",
            "enterprise_id": "", "enterprise_name": "", "channel_id": channel, "channel_name": "interview-prep",
            "user_id": user, "user_name": user.lower(), "command": command, "text": text, "api_app_id": "APREPBOT",
            "is_enterprise_install": "false", "response_url": self.response_url.rsplit("/", 1)[0] + f"/{key}",
            "trigger_id": unique("13345224609.738474920.8088930838d88f008e0"),
        }

    def message_shortcut(self, callback_id: str, user: str, channel: str, message: Mapping[str, Any], key: str = "r") -> dict[str, Any]:
        return {
            "type": "message_action", "token": "Nj2rfC2hU8mAfgaJLemZgO7H", "action_ts": self.ts(),
            "team": {"id": self.team_id, "domain": "example"}, "user": {"id": user, "name": user.lower()},
            "channel": {"id": channel, "name": "interview-prep"}, "is_enterprise_install": False, "enterprise": None,
            "callback_id": callback_id, "trigger_id": unique("13345224609.8534564800.6f8ab1f53e13d0cd15f96106292d5536"),
            "response_url": self.response_url.rsplit("/", 1)[0] + f"/{key}", "message_ts": message["ts"],
            "message": dict(message),
        }


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    text: str
    headers: Mapping[str, str]


class SignedClient:
    """Sends requests to the bot's `/slack/events` the way Slack does: signed, over real HTTP."""

    def __init__(self, base_url: str, secret: str = SIGNING_SECRET) -> None:
        self.base_url = base_url
        self.secret = secret
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self._session.close()

    async def send(
        self, body: str, content_type: str, *, headers: Mapping[str, str] | None = None,
        timestamp: str | None = None, signature: str | None = None, unsigned: bool = False,
    ) -> Answer:
        stamp = timestamp or str(int(time.time()))
        sent = {"Content-Type": content_type, **(headers or {})}
        if not unsigned:
            sent["X-Slack-Request-Timestamp"] = stamp
            sent["X-Slack-Signature"] = signature or sign(self.secret, stamp, body)
        async with self._session.post(f"{self.base_url}/slack/events", data=body.encode(), headers=sent) as response:
            return Answer(response.status, await response.text(), dict(response.headers))

    async def event(self, envelope: Mapping[str, Any], *, retry_num: int | None = None, retry_reason: str = "http_timeout", **options: Any) -> Answer:
        headers = dict(options.pop("headers", {}))
        if retry_num is not None:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return await self.send(json.dumps(envelope), "application/json", headers=headers, **options)

    async def command(self, form: Mapping[str, str], **options: Any) -> Answer:
        return await self.send(urlencode(form), "application/x-www-form-urlencoded", **options)

    async def interaction(self, payload: Mapping[str, Any], **options: Any) -> Answer:
        return await self.send(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded", **options)


async def reply_showing(
    client: SignedClient, fake: FakeSlack, form: Callable[[str], Mapping[str, str]], shows: str, timeout: float = 20,
) -> str:
    """Send the slash command `form(key)` until its reply contains `shows`, and return that reply.

    A running prepbot acknowledges events once they are in its inbox and counts them a moment
    later, so a command sent right after a rating may still answer without it.
    """
    deadline = time.monotonic() + timeout
    for attempt in itertools.count():
        key = f"until-{attempt}"
        assert (await client.command(form(key))).status == 200
        await wait_until(lambda key=key: [r for r in fake.responses if r["key"] == key], timeout, f"the reply to {form(key)['command']}")
        text = str(next(r for r in fake.responses if r["key"] == key)["text"])
        if shows in text:
            return text
        assert time.monotonic() < deadline, f"no reply showed {shows!r}; the last was {text!r}"
        await asyncio.sleep(0.05)
    raise AssertionError("unreachable")
