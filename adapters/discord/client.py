"""The discord.py client: gateway events and interactions in, core events out, replies back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
import discord.gateway
import yarl

from adapters.discord import translate
from adapters.discord.commands import build_tree
from adapters.discord.port import REQUEST_SECONDS, again_after_unknown
from adapters.discord.threads import ThreadParents
from bot.actions import Reply
from bot.core import PrepBot
from bot.events import Event
from bot.messages import Message

logger = logging.getLogger(__name__)

# Discord drops an interaction not acknowledged within 3 s; past this the reply is deferred.
ACK_SECONDS = 2.0
SLOW_COMMANDS = frozenset({"now", "setup"})
RAW_REACTIONS = frozenset({"raw_reaction_add", "raw_reaction_remove"})
# The core's own send timeout bounds how long a prompt can stay unrecorded after its thread opened.
RECORD_WAIT_SECONDS = 35.0
RECORD_POLL_SECONDS = 0.05
ALREADY_ACKNOWLEDGED = 40060
SOMETHING_WENT_WRONG = "Something went wrong on prepbot's side; nothing was changed. Try again shortly."


def intents(*, message_content: bool) -> discord.Intents:
    """Guilds, guild messages and guild reactions; message content only when the operator enabled it."""
    chosen = discord.Intents.none()
    chosen.guilds = chosen.guild_messages = chosen.guild_reactions = True
    chosen.message_content = message_content
    return chosen


class PrepClientMixin:
    """Event handlers shared by the plain and the auto-sharded client.

    Thread events are placed in the thread's parent channel: that is where the core knows the prompt.
    """

    user: discord.ClientUser | None

    def __init__(
        self, *, core: PrepBot, threads: ThreadParents, message_content: bool, dev_guild: int | None,
        gateway_from_rest: bool, on_logged_in: Callable[[], None] = lambda: None,
        request_seconds: float = REQUEST_SECONDS, retry_seconds: float = 1.0, **options: Any,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]
            intents=intents(message_content=message_content),
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            max_messages=None,  # every handler takes raw or fresh payloads; a cache of messages would only cost memory
            **options,
        )
        self.prep = core
        self.threads = threads
        self.message_content = message_content
        self.dev_guild = dev_guild
        self.became_ready = False
        self._gateway_from_rest = gateway_from_rest
        self._on_logged_in = on_logged_in
        self._request_seconds = request_seconds
        self._retry_seconds = retry_seconds
        self._bots: set[int] = set()
        self._deliveries: dict[int, tuple[str, datetime]] = {}
        self._last_at = datetime.min.replace(tzinfo=UTC)
        self.tree = build_tree(self)

    @property
    def _client(self) -> discord.Client:
        return self  # type: ignore[return-value]

    async def setup_hook(self) -> None:
        """Once logged in, before the gateway connects: find the gateway behind a REST proxy, sync the commands."""
        self._on_logged_in()
        if self._gateway_from_rest:
            # discord.py opens its built-in gateway URL; behind a REST proxy, ask the proxy where the gateway is.
            _, url, _ = await self._client.http.get_bot_gateway()
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        if self.dev_guild is not None:
            guild = discord.Object(self.dev_guild)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        logger.info("synced %d application commands (%s)", len(synced),
                    f"to guild {self.dev_guild}" if self.dev_guild is not None else "globally")

    async def on_ready(self) -> None:
        self.became_ready = True
        if self.user is not None:
            self._bots.add(self.user.id)
        logger.info("connected to Discord as %s in %d servers", self.user, len(self._client.guilds))

    async def on_guild_available(self, guild: discord.Guild) -> None:
        for channel in (*guild.channels, *guild.threads):
            self.threads.learn(channel)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.on_guild_available(guild)

    async def on_thread_create(self, thread: discord.Thread) -> None:
        self.threads.learn(thread)

    async def on_thread_join(self, thread: discord.Thread) -> None:
        self.threads.learn(thread)

    async def on_message(self, message: discord.Message) -> None:
        if message.guild is None or message.webhook_id is not None or self._is_me(message.author.id):
            return
        if message.author.bot:
            self._bots.add(message.author.id)
        place = await self.place(message.guild.id, message.channel.id)
        event = translate.answer_posted(message, place, with_text=self.message_content)
        if event is not None:
            await self._until_prompt_recorded(place)
            await self._handle(event)

    async def _until_prompt_recorded(self, place: translate.Place) -> None:
        """Hold an answer in a thread this process has just opened until the core has recorded its prompt.

        The core records a prompt once the post returns, a moment after the thread opens; a member
        quick enough to reply in that moment must not have the answer taken for a stray message.
        """
        thread_id = place.thread_id
        if thread_id is None or not self.threads.is_fresh(thread_id):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECORD_WAIT_SECONDS
        while loop.time() < deadline:
            current = await self.prep.current_prompt(place.channel)
            if current is not None and current[0].id == str(thread_id):
                break
            await asyncio.sleep(RECORD_POLL_SECONDS)
        self.threads.settled(thread_id)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        if payload.guild_id is None or not self.message_content:
            return  # without the content intent an edit carries nothing prepbot keeps
        author = payload.data.get("author")
        if author is not None and self._is_me(int(author["id"])):
            return
        place = await self.place(payload.guild_id, payload.channel_id)
        if place.thread is None:
            return
        event = translate.answer_edited(payload, place)
        if event is not None:
            await self._handle(event)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if payload.guild_id is None:
            return
        place = await self.place(payload.guild_id, payload.channel_id)
        if place.thread is not None:
            await self._handle(translate.answer_deleted(payload.message_id, place, self._receipt_time()))

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        # Called synchronously while the gateway message is parsed, so the socket's sequence is this event's:
        # note it now, before the handler runs in its own task.
        if event in RAW_REACTIONS and args:
            self._deliveries[id(args[0])] = (self._gateway_position(getattr(args[0], "guild_id", None)), self._receipt_time())
        super().dispatch(event, *args, **kwargs)  # type: ignore[misc]

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._on_reaction(payload)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._on_reaction(payload)

    async def _on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        noted = self._deliveries.pop(id(payload), None)
        delivery, at = noted if noted is not None else (self._gateway_position(payload.guild_id), self._receipt_time())
        if payload.guild_id is None or translate.rating_name(payload.emoji) is None:
            return
        if payload.member is not None and payload.member.bot:
            self._bots.add(payload.user_id)
        user = self._client.get_user(payload.user_id)
        is_bot = payload.user_id in self._bots or (user is not None and user.bot)
        place = await self.place(payload.guild_id, payload.channel_id)
        event = translate.reaction_changed(payload, place, at, reactor_is_bot=is_bot, delivery=delivery)
        if event is not None:
            await self._handle(event)

    async def place(self, guild_id: int, channel_id: int) -> translate.Place:
        """Where an event happened, in the core's terms: a thread is placed in its parent channel."""
        parent = await self.threads.parent_of(self._client, channel_id)
        if parent is None:
            return translate.Place(guild_id, channel_id)
        return translate.Place(guild_id, parent, thread_id=channel_id)

    async def _interaction_place(self, interaction: discord.Interaction) -> translate.Place | None:
        if interaction.guild_id is None or interaction.channel_id is None:
            return None
        if interaction.channel is not None:
            self.threads.learn(interaction.channel)
        return await self.place(interaction.guild_id, interaction.channel_id)

    async def command(self, interaction: discord.Interaction, subcommand: str, *options: object | None) -> None:
        """Run `/prep <subcommand>` and answer the interaction privately."""
        place = await self._interaction_place(interaction)
        if place is None:
            await interaction.response.send_message("prepbot's commands work in a server's channels.", ephemeral=True)
            return
        permissions = interaction.permissions
        event = translate.command_invoked(
            interaction.id, place, interaction.user.id, interaction.user.display_name,
            translate.command_text(subcommand, options),
            is_admin=permissions.manage_guild or permissions.administrator)
        decorate: Callable[[Message], Message] = (
            (lambda m: translate.with_help_notes(m, message_content=self.message_content))
            if subcommand == "help" else (lambda m: m))
        await self._answer(interaction, self.prep.handle(event), defer=subcommand in SLOW_COMMANDS,
                           ephemeral=True, decorate=decorate)

    async def drill(self, interaction: discord.Interaction, topic: str | None) -> None:
        """`/drill [topic]`: in a prompt's thread, the member's next follow-up, shown in the thread."""
        place = await self._interaction_place(interaction)
        if place is None:
            await interaction.response.send_message("/drill works in a server's channels.", ephemeral=True)
            return
        event = translate.drill_requested(interaction.id, place, interaction.user.id, interaction.user.display_name, topic)
        await self._answer(interaction, self.prep.handle(event), defer=False, ephemeral=place.thread is None,
                           decorate=lambda m: m)

    async def _answer(
        self, interaction: discord.Interaction, work: Awaitable[Reply | None], *, defer: bool, ephemeral: bool,
        decorate: Callable[[Message], Message],
    ) -> None:
        """Reply within Discord's 3 s: directly when the core is quick, else defer and then edit the deferred response.

        Each response is made again after an unknown outcome: Discord refuses a second response to an
        interaction (so a refusal after a lost answer means the first one landed), and the edit that
        completes a deferred response is the same edit however often it is made; a follow-up message
        made again would be a second message.
        """
        task = asyncio.ensure_future(work)
        if not defer:
            await asyncio.wait({task}, timeout=ACK_SECONDS)
        deferred = not task.done()
        if deferred:
            await self._respond_once(interaction, lambda: interaction.response.defer(ephemeral=ephemeral, thinking=True))
        try:
            reply = await task
        except Exception:
            logger.exception("handling interaction %s failed", interaction.id)
            reply = Reply(Message.text(SOMETHING_WENT_WRONG))
        if reply is None:
            reply = Reply(Message.text("That request was already handled."))
        embed = translate.render(decorate(reply.message))
        if deferred:
            await again_after_unknown(lambda: interaction.edit_original_response(embed=embed), f"the reply to {interaction.id}",
                                      request_seconds=self._request_seconds, retry_seconds=self._retry_seconds)
        else:
            await self._respond_once(interaction, lambda: interaction.response.send_message(embed=embed, ephemeral=reply.private))

    async def _respond_once(self, interaction: discord.Interaction, respond: Callable[[], Awaitable[object]]) -> None:
        try:
            await again_after_unknown(respond, f"the response to {interaction.id}",
                                      request_seconds=self._request_seconds, retry_seconds=self._retry_seconds)
        except discord.HTTPException as error:
            # Only an attempt of ours can have responded first: its answer was lost, but it landed.
            if error.code != ALREADY_ACKNOWLEDGED:
                raise

    async def _handle(self, event: Event) -> None:
        try:
            await self.prep.handle(event)
        except Exception:
            logger.exception("could not apply %s", event.event_id)

    def _is_me(self, user_id: int) -> bool:
        return self.user is not None and user_id == self.user.id

    def _gateway_position(self, guild_id: int | None) -> str:
        """`session:sequence` of the gateway message being parsed: the same again when RESUME replays it."""
        ws = self._client._get_websocket(guild_id)  # noqa: SLF001 - the only place discord.py keeps the sequence
        if ws is not None and ws.session_id and ws.sequence is not None:
            return f"{ws.session_id}:{ws.sequence}"
        return f"t{self._receipt_time().timestamp():.6f}"

    def _receipt_time(self) -> datetime:
        # Strictly increasing, so reactions keep the order the gateway delivered them in.
        self._last_at = max(datetime.now(UTC), self._last_at + timedelta(microseconds=1))
        return self._last_at


class PrepClient(PrepClientMixin, discord.Client):
    """One gateway connection."""


class ShardedPrepClient(PrepClientMixin, discord.AutoShardedClient):
    """One process owning several shards (DISCORD_SHARD_COUNT)."""
