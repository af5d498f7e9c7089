"""The Discord `ChatPort`: posts prompts with a nonce and a thread, replies in threads, and DMs members."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal, TypeVar

import aiohttp
import discord

from adapters import retries
from adapters.discord import translate
from adapters.discord.pacing import REQUEST_BURST, REQUESTS_PER_SECOND, TokenBucket
from adapters.discord.threads import ThreadParents
from bot.actions import Action, PostPrivately, PostPrompt, PostReply
from bot.refs import ChannelRef, MessageRef

logger = logging.getLogger(__name__)

T = TypeVar("T")

THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440  # a day: a daily question's thread stays open until the next
THREAD_ALREADY_EXISTS = 160004
CANNOT_DM_USER = 50007
HISTORY_LIMIT = 100
# Less than the core's own send timeout, so a post waiting for the login fails cleanly rather than being cut off.
CONNECT_WAIT_SECONDS = 20.0
# Discord answers a request in well under a second; one taking longer is treated as lost and made again.
REQUEST_SECONDS = 10.0
# A request whose outcome is unknown (a 5xx, a timeout) is made again, up to this many times in all.
ATTEMPTS = 4


def outcome_unknown(error: BaseException) -> bool:
    """Whether a failed request may or may not have been carried out: a 5xx, a timeout, a lost connection."""
    return isinstance(error, discord.DiscordServerError | aiohttp.ClientError | TimeoutError | ConnectionError)


async def again_after_unknown(
    call: Callable[[], Awaitable[T]], what: str, *, request_seconds: float, retry_seconds: float,
    pace: contextlib.AbstractAsyncContextManager[None] | None = None,
) -> T:
    """`call()`, paced and bounded in time, made again after an unknown outcome (`adapters.retries`).

    Only for requests that are safe to repeat, as every one given here is: a message sent with a
    nonce and `enforce_nonce` (Discord returns the first message for a repeated nonce), a lookup, a
    thread that says so when it exists, an interaction response (Discord refuses a second one) or an edit.
    """

    async def once() -> T:
        async with pace if pace is not None else contextlib.nullcontext():
            return await asyncio.wait_for(call(), request_seconds)

    return await retries.again_after_unknown(
        once, what, unknown=outcome_unknown, attempts=ATTEMPTS, retry_seconds=retry_seconds)


class DiscordChat:
    """Carries out the core's actions through a discord.py client (set once the client exists)."""

    def __init__(
        self, threads: ThreadParents, requests_per_second: float = REQUESTS_PER_SECOND, *,
        request_seconds: float = REQUEST_SECONDS, retry_seconds: float = 1.0,
    ) -> None:
        self._client: discord.Client | None = None
        self._request_seconds = request_seconds
        self._retry_seconds = retry_seconds
        self._ready = asyncio.Event()
        self._threads = threads
        self._pace = TokenBucket(requests_per_second, REQUEST_BURST)
        # Members who refuse DMs: asking again would only add to Discord's count of invalid requests.
        self._no_dms: set[str] = set()

    def attach(self, client: discord.Client | None) -> None:
        """Use `client` from now on (`None` while reconnecting); it is ready once it has logged in."""
        self._client = client
        self._ready.clear()

    def logged_in(self) -> None:
        self._ready.set()

    async def connected(self) -> discord.Client:
        """The client, once it has logged in: a post due at start-up waits for the login, not fails."""
        try:
            await asyncio.wait_for(self._ready.wait(), CONNECT_WAIT_SECONDS)
        except TimeoutError:
            raise RuntimeError("the Discord client is not connected; the post will be retried") from None
        assert self._client is not None
        return self._client

    async def perform(self, action: Action) -> MessageRef | None:
        client = await self.connected()
        match action:
            case PostPrompt():
                return await self._post_prompt(client, action)
            case PostReply():
                thread = client.get_partial_messageable(int(action.thread.id), guild_id=_guild_id(action.thread.channel))
                nonce = secrets.token_hex(12)
                embed = translate.render(action.message)
                sent = await self._again(lambda: thread.send(embed=embed, nonce=nonce), f"a reply in {action.thread}")
                return MessageRef(action.thread.channel, str(sent.id))
            case PostPrivately():
                await self._send_privately(client, action)
                return None

    async def find_prompt(self, channel: ChannelRef, marker: str, since: datetime) -> MessageRef | None:
        """Look through the channel's messages since `since` for the bot's prompt carrying `marker`."""
        client = await self.connected()
        messageable = client.get_partial_messageable(int(channel.id), guild_id=_guild_id(channel))
        after = discord.Object(discord.utils.time_snowflake(since))

        async def recent() -> list[discord.Message]:
            return [m async for m in messageable.history(after=after, limit=HISTORY_LIMIT, oldest_first=True)]

        for message in await self._again(recent, f"the history of {channel}"):  # paced: one request, one page
            if client.user is not None and message.author.id == client.user.id and translate.has_marker(message, marker):
                await self._open_thread(client, int(channel.id), message.id, translate.thread_name_of(message))
                return MessageRef(channel, str(message.id))
        return None

    async def _post_prompt(self, client: discord.Client, action: PostPrompt) -> MessageRef:
        channel_id = int(action.channel.id)
        messageable = client.get_partial_messageable(channel_id, guild_id=_guild_id(action.channel))
        # discord.py sends a nonce with enforce_nonce: a retried send with the same nonce (within a few
        # minutes) returns the first message instead of creating a second one.
        embed, nonce = translate.render(action.message, marker=action.marker), translate.nonce_for(action.marker)
        sent = await self._again(lambda: messageable.send(embed=embed, nonce=nonce), f"the prompt for {action.channel}")
        await self._open_thread(client, channel_id, sent.id, translate.thread_name(action.message))
        return MessageRef(action.channel, str(sent.id))

    async def _open_thread(self, client: discord.Client, channel_id: int, message_id: int, name: str) -> None:
        # Known before Discord answers: a member may answer in the thread (whose id is the message's) at once.
        self._threads.opened(message_id, channel_id)
        try:
            await self._again(lambda: client.http.start_thread_with_message(
                channel_id, message_id, name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES), f"the thread on {message_id}")
        except discord.HTTPException as error:
            if error.code != THREAD_ALREADY_EXISTS:
                raise

    async def _send_privately(self, client: discord.Client, action: PostPrivately) -> None:
        if action.user.id in self._no_dms:
            return
        embed, nonce = translate.render(action.message), secrets.token_hex(12)
        try:
            dm = await self._again(lambda: client.create_dm(discord.Object(int(action.user.id))), "opening a DM")
            await self._again(lambda: dm.send(embed=embed, nonce=nonce), "a DM")
        except discord.Forbidden as error:
            if error.code != CANNOT_DM_USER:
                raise
            self._no_dms.add(action.user.id)
            logger.info("member %s does not accept DMs; skipped a private message", action.user.id)

    async def _again(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        return await again_after_unknown(
            call, what, request_seconds=self._request_seconds, retry_seconds=self._retry_seconds, pace=self._pace)


def _guild_id(channel: ChannelRef) -> int:
    return int(channel.workspace.id)
