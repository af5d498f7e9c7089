"""`DiscordAdapter`: builds the discord.py client, owns its loop, and backs off when connecting fails."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.discord.client import PrepClient, PrepClientMixin, ShardedPrepClient
from adapters.discord.pacing import REQUESTS_PER_SECOND
from adapters.discord.port import REQUEST_SECONDS, DiscordChat
from adapters.discord.threads import ThreadParents
from adapters.logs import redact
from bot.core import PrepBot
from bot.settings import Settings

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 300.0
# Only a connection that lasted this long resets the back-off: one that fails right after READY
# must not turn into a loop of IDENTIFYs (Discord resets a token after 1,000 in a day).
STABLE_SECONDS = 60.0
GATEWAY_AUTHENTICATION_FAILED = 4004
GATEWAY_SHARDING_REQUIRED = 4011
# An interaction's token answers as the bot for 15 minutes; discord.py logs it at DEBUG in webhook URLs
# and in every INTERACTION_CREATE it receives.
INTERACTION_TOKEN = re.compile(r"(/(?:interactions|webhooks)/\d+/|'token': ')[^/?'\s]+")
DISCORD_LOGGERS = ("discord.gateway", "discord.webhook.async_", "discord.http", "discord.client", "discord.state")


class DiscordRefused(Exception):
    """Discord refused the bot's configuration (token or intents); retrying cannot help."""


def redirect(api_url: str | None, gateway_url: str | None) -> None:
    """Point discord.py at another REST base and gateway (a REST proxy, or a fake in tests).

    discord.py builds every REST, interaction and webhook URL from `Route.BASE` and opens its first
    gateway connection at `DiscordWebSocket.DEFAULT_GATEWAY`; both are process-wide, like the
    process's one Discord application, so they are set once before the client starts.
    """
    if api_url:
        discord.http.Route.BASE = api_url.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class DiscordAdapter:
    """Serves one Discord application; `port` is the `ChatPort` the core posts through."""

    platform = "discord"

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        *,
        first_retry_seconds: float = FIRST_RETRY_SECONDS,
        max_retry_seconds: float = MAX_RETRY_SECONDS,
        stable_seconds: float = STABLE_SECONDS,
        client_options: Mapping[str, Any] | None = None,
        requests_per_second: float = REQUESTS_PER_SECOND,
        request_seconds: float = REQUEST_SECONDS,
        send_retry_seconds: float = 1.0,
    ) -> None:
        if not settings.discord_token:
            raise ValueError("DiscordAdapter needs DISCORD_TOKEN")
        self._settings = settings
        self._token = settings.discord_token
        self.message_content = settings.discord_message_content
        self._first_retry = first_retry_seconds
        self._max_retry = max_retry_seconds
        self._stable = stable_seconds
        self._client_options = {"request_seconds": request_seconds, "retry_seconds": send_retry_seconds, **(client_options or {})}
        self._threads = ThreadParents()
        self._chat = DiscordChat(self._threads, requests_per_second, request_seconds=request_seconds, retry_seconds=send_retry_seconds)
        self.client: PrepClientMixin | None = None
        self._auto_shard = False

    @property
    def port(self) -> DiscordChat:
        return self._chat

    def build_client(self, core: PrepBot) -> PrepClientMixin:
        settings = self._settings
        common: dict[str, Any] = dict(
            core=core, threads=self._threads, message_content=self.message_content,
            dev_guild=int(settings.discord_dev_guild) if settings.discord_dev_guild else None,
            gateway_from_rest=bool(settings.discord_api_url and not settings.discord_gateway_url),
            on_logged_in=self._chat.logged_in, **self._client_options,
        )
        if settings.discord_shard_count:
            return ShardedPrepClient(shard_count=settings.discord_shard_count, **common)
        if self._auto_shard:
            return ShardedPrepClient(shard_count=None, **common)  # as many shards as Discord recommends
        return PrepClient(**common)

    async def run(self, core: PrepBot) -> None:
        """Connect and serve until cancelled.

        discord.py itself reconnects and resumes a dropped gateway connection. What it gives up on
        (Discord or the network unreachable, 5xx at login) is retried here with exponential back-off,
        so a restart storm never turns into a login storm. A refused token or intent stops the adapter.
        """
        redirect(self._settings.discord_api_url, self._settings.discord_gateway_url)
        redact(DISCORD_LOGGERS, INTERACTION_TOKEN)
        # prepbot never joins voice; discord.py would warn at every start that voice libraries are missing.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        delay = self._first_retry
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            client = self.build_client(core)
            self.client = client
            self._chat.attach(client)  # type: ignore[arg-type]
            try:
                async with client:  # type: ignore[attr-defined]
                    await client.start(self._token)  # type: ignore[attr-defined]
                logger.warning("the Discord connection closed; reconnecting in %.0f s", delay)
            except discord.LoginFailure as error:
                raise DiscordRefused(
                    "Discord refused the bot token (401 Unauthorized): check DISCORD_TOKEN "
                    "(Developer Portal → your application → Bot → Reset Token).") from error
            except discord.PrivilegedIntentsRequired as error:
                raise DiscordRefused(
                    "Discord refused the Message Content intent: enable it in the Developer Portal (Bot → Privileged "
                    "Gateway Intents → Message Content Intent) or set DISCORD_MESSAGE_CONTENT=false.") from error
            except discord.ConnectionClosed as error:
                if error.code == GATEWAY_AUTHENTICATION_FAILED:
                    raise DiscordRefused("Discord's gateway refused the bot token: check DISCORD_TOKEN.") from error
                if error.code == GATEWAY_SHARDING_REQUIRED and not self._auto_shard and not self._settings.discord_shard_count:
                    logger.warning("Discord requires this bot to shard; connecting again with the shard count Discord "
                                   "recommends (set DISCORD_SHARD_COUNT to choose it)")
                    self._auto_shard = True
                    continue
                logger.error("the Discord gateway closed the connection (code %s); retrying in %.0f s", error.code, delay)
            except (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError) as error:
                logger.error("could not connect to Discord (%s: %s); retrying in %.0f s", type(error).__name__, error, delay)
            finally:
                self._chat.attach(None)
            if client.became_ready and loop.time() - started >= self._stable:
                delay = self._first_retry
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_retry)
