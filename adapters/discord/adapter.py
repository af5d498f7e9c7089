"""`DiscordAdapter`: builds the discord.py client, owns its loop, and backs off when logging in fails."""

from __future__ import annotations

import asyncio
import logging
import os

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.discord.client import PrepClient, PrepClientMixin, ShardedPrepClient
from adapters.discord.port import DiscordChat
from adapters.discord.threads import ThreadParents
from bot.core import PrepBot
from bot.settings import Settings

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


def message_content_from_env() -> bool:
    return os.environ.get("DISCORD_MESSAGE_CONTENT", "").strip().lower() in ("1", "true", "yes", "on")


def redirect(api_url: str | None, gateway_url: str | None) -> None:
    """Point discord.py at another REST base and gateway (a proxy, or a fake in tests).

    discord.py builds every REST and webhook URL from `Route.BASE` and opens its first gateway
    connection at `DiscordWebSocket.DEFAULT_GATEWAY`; both are process-wide, like the process's
    one Discord application.
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
        message_content: bool | None = None,
        first_retry_seconds: float = FIRST_RETRY_SECONDS,
        max_retry_seconds: float = MAX_RETRY_SECONDS,
    ) -> None:
        if not settings.discord_token:
            raise ValueError("DiscordAdapter needs DISCORD_TOKEN")
        self._settings = settings
        self._sessions = sessions
        self._token = settings.discord_token
        self.message_content = message_content_from_env() if message_content is None else message_content
        self._first_retry = first_retry_seconds
        self._max_retry = max_retry_seconds
        self._threads = ThreadParents()
        self._chat = DiscordChat(self._threads)
        self.client: PrepClientMixin | None = None
        self.failed_logins = 0

    @property
    def port(self) -> DiscordChat:
        return self._chat

    def build_client(self, core: PrepBot) -> PrepClientMixin:
        settings = self._settings
        common = dict(
            core=core, threads=self._threads, message_content=self.message_content,
            dev_guild=int(settings.discord_dev_guild) if settings.discord_dev_guild else None,
            gateway_from_rest=bool(settings.discord_api_url and not settings.discord_gateway_url),
        )
        if settings.discord_shard_count:
            return ShardedPrepClient(shard_count=settings.discord_shard_count, **common)  # type: ignore[arg-type]
        return PrepClient(**common)  # type: ignore[arg-type]

    async def run(self, core: PrepBot) -> None:
        """Connect and serve until cancelled; a failed login or connection is retried with back-off."""
        redirect(self._settings.discord_api_url, self._settings.discord_gateway_url)
        delay = self._first_retry
        while True:
            client = self.build_client(core)
            self.client = client
            self._chat.attach(client)  # type: ignore[arg-type]
            try:
                async with client:  # type: ignore[attr-defined]
                    await client.start(self._token)  # type: ignore[attr-defined]
                logger.warning("the Discord connection closed; reconnecting")
            except discord.LoginFailure:
                self.failed_logins += 1
                logger.error("Discord refused the bot token: check DISCORD_TOKEN (retrying in %.0f s)", delay)
            except discord.PrivilegedIntentsRequired:
                logger.error("Discord refused the Message Content intent: enable it in the Developer Portal (Bot → "
                             "Privileged Gateway Intents) or unset DISCORD_MESSAGE_CONTENT (retrying in %.0f s)", delay)
            except (discord.DiscordException, aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
                self.failed_logins += 1
                logger.error("could not connect to Discord (%s: %s); retrying in %.1f s", type(error).__name__, error, delay)
            finally:
                self._chat.attach(None)
            if client.became_ready:
                delay = self._first_retry
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_retry)

