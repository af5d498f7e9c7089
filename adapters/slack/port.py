"""The Slack `ChatPort`: posts through the Web API, paced per channel, and finds prompts by their metadata marker."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from adapters import retries
from adapters.slack import translate
from bot.actions import Action, PostPrivately, PostReply
from bot.messages import Message
from bot.refs import ChannelRef, MessageRef, UserRef

logger = logging.getLogger(__name__)

ClientFor = Callable[[str], Awaitable[AsyncWebClient]]
"""The Web API client holding the bot token of a workspace (team id)."""

Spawn = Callable[[Coroutine[Any, Any, None]], None]
"""Runs work in the background, after the current request is acknowledged."""

HISTORY_PAGES = 10
# A reply whose outcome is unknown is looked for, then sent again, up to this many times in all.
SEND_ATTEMPTS = 5
# Slack's `ts` is Slack's clock; a reply is looked for from a little before this process's clock says it was sent.
CLOCK_SKEW_SECONDS = 300
# Web API methods that only read: a read met by a 5xx or a timeout can be asked again without harm.
READ_METHODS = frozenset({"auth.test", "users.info", "conversations.history", "conversations.replies"})
READ_RETRIES = 3
# What Slack answers when it failed on its side; the call may have been carried out before it failed.
SERVER_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})


class Pacer:
    """Spaces calls with the same key at least `interval` seconds apart, first come first served.

    Each caller reserves the next free slot before it waits, so concurrent posts to one channel
    queue up in order instead of bursting past Slack's one message per second per channel.
    """

    def __init__(
        self, interval: float, *, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}

    async def wait(self, key: str) -> None:
        now = self._clock()
        slot = max(now, self._next.get(key, now))
        self._next[key] = slot + self._interval
        if len(self._next) > 1024:
            self._next = {k: t for k, t in self._next.items() if t > now}
        if slot > now:
            await self._sleep(slot - now)


class SlackChat:
    """What the core asks of Slack, done with the workspace's own bot token.

    Private notes (`PostPrivately`) are sent in the background: the core sends them while it
    handles an answer, which happens before Slack's event is acknowledged.
    """

    def __init__(self, client_for: ClientFor, pacer: Pacer, spawn: Spawn, *, retry_seconds: float = 1.0) -> None:
        self._client_for = client_for
        self._pacer = pacer
        self._spawn = spawn
        self._retry_seconds = retry_seconds

    async def perform(self, action: Action) -> MessageRef | None:
        if isinstance(action, PostPrivately):
            self._spawn(self.reply_privately(action.channel, action.user, action.message, action.thread))
            return None
        if isinstance(action, PostReply):
            return await self._reply(action)
        # A prompt is sent once: after an unknown outcome the poster's claim goes stale and its marker is looked for.
        client = await self._client_for(action.channel.workspace.id)
        await self._pacer.wait(f"{action.channel.workspace.id}/{action.channel.id}")
        response = await client.chat_postMessage(**translate.post_arguments(action))
        return MessageRef(action.channel, str(response["ts"]))

    async def _reply(self, action: PostReply) -> MessageRef:
        """A thread reply, exactly once: after an unknown outcome it is sent again only if its marker is not in the thread.

        Slack has no idempotency key, but a reply carries a marker in its message metadata, and
        `conversations.replies` shows it once Slack has taken the reply.
        """
        channel = action.thread.channel
        client = await self._client_for(channel.workspace.id)
        marker = "pr" + secrets.token_hex(9)
        arguments = translate.post_arguments(action, marker=marker)
        since = time.time() - CLOCK_SKEW_SECONDS
        maybe_sent = False
        for attempt in range(SEND_ATTEMPTS):
            if attempt:
                await asyncio.sleep(self._retry_seconds * 2 ** (attempt - 1))
            if maybe_sent:
                try:
                    found = await self._find_reply(client, action.thread, marker, since)
                except Exception as error:
                    if not outcome_unknown(error):
                        raise
                    logger.warning("looking for a reply in %s failed (%s); trying again", channel, describe(error))
                    continue
                if found is not None:
                    return found
            await self._pacer.wait(f"{channel.workspace.id}/{channel.id}")
            try:
                response = await client.chat_postMessage(**arguments)
            except Exception as error:
                if not outcome_unknown(error) or attempt == SEND_ATTEMPTS - 1:
                    raise
                logger.warning("a reply in %s met %s; it is looked for before it is sent again", channel, describe(error))
                maybe_sent = True
                continue
            return MessageRef(channel, str(response["ts"]))
        raise RuntimeError(f"gave up on a reply in {channel} after {SEND_ATTEMPTS} attempts")

    async def _find_reply(self, client: AsyncWebClient, thread: MessageRef, marker: str, since: float) -> MessageRef | None:
        return await _find_marked(
            client.conversations_replies, {"channel": thread.channel.id, "ts": thread.id, "oldest": f"{since:.6f}"},
            translate.reply_marker, marker, thread.channel)

    async def find_prompt(self, channel: ChannelRef, marker: str, since: datetime) -> MessageRef | None:
        client = await self._client_for(channel.workspace.id)
        return await _find_marked(
            client.conversations_history, {"channel": channel.id, "oldest": f"{since.timestamp():.6f}"},
            translate.prompt_marker, marker, channel)

    async def reply_privately(self, channel: ChannelRef, user: UserRef, message: Message, thread: MessageRef | None = None) -> None:
        """An ephemeral message, in a thread when given one."""
        arguments = translate.post_arguments(PostPrivately(channel, user, message))
        if thread is not None:
            arguments["thread_ts"] = thread.id
        client = await self._client_for(channel.workspace.id)
        # Slack can neither look an ephemeral message up nor deduplicate one, so after an unknown outcome it is
        # sent again: a member may rarely see a private note twice, rather than never.
        await retries.again_after_unknown(
            lambda: client.chat_postEphemeral(**arguments), f"a private message in {channel}",
            unknown=outcome_unknown, attempts=SEND_ATTEMPTS, retry_seconds=self._retry_seconds, describe=describe)


async def _find_marked(
    read: Callable[..., Awaitable[Any]], query: dict[str, Any], marker_of: Callable[[Any], str | None], marker: str,
    channel: ChannelRef,
) -> MessageRef | None:
    """The message carrying `marker`, paging through `read` (a channel's history or a thread's replies) from `query`."""
    cursor: str | None = None
    for _ in range(HISTORY_PAGES):
        arguments = {**query, "inclusive": True, "include_all_metadata": True, "limit": 200, **({"cursor": cursor} if cursor else {})}
        response = await read(**arguments)
        for message in response.get("messages") or []:
            if marker_of(message) == marker:
                return MessageRef(channel, str(message["ts"]))
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return None
    logger.warning("gave up looking for marker %s in %s after %s pages", marker, channel, HISTORY_PAGES)
    return None


def outcome_unknown(error: BaseException) -> bool:
    """Whether a failed call may or may not have been carried out: a 5xx, Slack's own failure, a timeout, a lost connection.

    An answer that is not Slack's JSON at all (an empty or HTML body from a proxy) counts too.
    """
    if isinstance(error, SlackApiError):
        status, reason = _status_and_reason(error)
        return status is None or status >= 500 or reason is None or reason in SERVER_ERRORS
    return isinstance(error, aiohttp.ClientError | TimeoutError)


def describe(error: BaseException) -> str:
    """A failure in a few words, without the request (whose headers hold the token)."""
    if isinstance(error, SlackApiError):
        status, reason = _status_and_reason(error)
        return f"HTTP {status} {reason or ''}".strip()
    return type(error).__name__


def _status_and_reason(error: SlackApiError) -> tuple[int | None, str | None]:
    response = error.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    data = getattr(response, "data", None)
    reason = data.get("error") if isinstance(data, dict) else None
    return (status if isinstance(status, int) else None), (str(reason) if reason else None)


class ReadRetryHandler(AsyncRetryHandler):
    """Retries reads (`READ_METHODS`) after a 5xx, a timeout or a lost connection; never a write."""

    def __init__(self) -> None:
        super().__init__(max_retry_count=READ_RETRIES)

    async def _can_retry_async(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None, error: Exception | None = None,
    ) -> bool:
        if request.url.rstrip("/").rsplit("/", 1)[-1] not in READ_METHODS:
            return False
        if error is not None:
            return isinstance(error, aiohttp.ClientError | TimeoutError)
        return response is not None and response.status_code >= 500
