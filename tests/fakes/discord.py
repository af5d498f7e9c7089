"""A fake Discord on 127.0.0.1: the REST API and the gateway websocket that discord.py talks to.

Payloads follow the structure tables of Discord's API documentation, including the fields that
discord.py 2.7 reads unconditionally, and JSON is answered with `Content-Type: application/json`
exactly (discord.py parses nothing else). Use it as `async with FakeDiscord() as fake:` and point
`DISCORD_API_URL` / `DISCORD_GATEWAY_URL` at `fake.api_url` / `fake.gateway_url`.

- REST: `/users/@me`, `/oauth2/applications/@me`, `/gateway/bot`, command sync (global and per
  guild), channels, messages (with `nonce` + `enforce_nonce`: the same nonce within
  `nonce_window` returns the first message), threads started on a message, DMs, interaction
  callbacks and follow-up webhooks. Every request is recorded in `calls`.
- Gateway: HELLO, heartbeat ACKs, IDENTIFY (token, intents and shards checked), READY,
  GUILD_CREATE, dispatches (`post`, `edit`, `delete`, `react`, `unreact`, `invoke`, `dispatch`),
  RECONNECT (`reconnect`), dropped connections, RESUME with replay, and duplicate deliveries
  (`redeliver`, `replay_overlap`). Without the message-content intent, message content is blanked
  as Discord does.
- Limits and failures: `rate_limit` (429 with `retry_after` and the `X-RateLimit-*` headers),
  `lose_response`, `unavailable`, `refuse_logins`, `refuse_dms`, `allow_message_content`,
  `recommended_shards`, `close_after_ready`.
- Crash points: `holds` (see `tests.fakes.holds`) stops a request before it is carried out, keyed
  `"POST /channels/1/messages"`; a held request is then answered, carried out unanswered, or,
  when its client is gone, dropped (neither carried out nor recorded).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.faults import RATE_LIMITED, TIMEOUT, Fault, RandomFaults
from tests.fakes.holds import Holds, Verdict

DISCORD_EPOCH_MS = 1_420_070_400_000
API_PREFIX = "/api/v10"
MESSAGE_CONTENT_INTENT = 1 << 15
EPHEMERAL_FLAG = 1 << 6
LOADING_FLAG = 1 << 7
HEARTBEAT_INTERVAL_MS = 41_250
# The permissions an ordinary member holds: view, send, send in threads, read history, add reactions, use commands.
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 38) | (1 << 16) | (1 << 6) | (1 << 31)
MANAGE_GUILD = 1 << 5
Json = dict[str, Any]
# Requests made while logging in and syncing commands, which random faults leave alone.
START_UP_PATHS = re.compile(r"GET /(users/@me|oauth2/applications/@me|applications/@me|gateway|gateway/bot)|PUT /applications/.*")
BODY = web.RequestKey("body", object)


def snowflake_at(when: datetime, increment: int = 0) -> int:
    return ((int(when.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22) | (increment & 0xFFF)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class Call:
    """One REST request the client made (never its Authorization header)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    at: float = 0.0  # time.monotonic() when the request arrived
    fault: Fault | None = None  # the random fault the request was answered with


@dataclass(slots=True)
class FakeUser:
    id: int
    username: str
    bot: bool = False
    organizer: bool = False

    def json(self) -> Json:
        return {
            "id": str(self.id), "username": self.username, "discriminator": "0", "global_name": self.username.title(),
            "avatar": None, "bot": self.bot, "system": False, "public_flags": 0, "flags": 0,
            "banner": None, "accent_color": None, "avatar_decoration_data": None,
        }

    @property
    def permissions(self) -> int:
        return MEMBER_PERMISSIONS | (MANAGE_GUILD if self.organizer else 0)

    def member_json(self, joined: datetime) -> Json:
        return {
            "user": self.json(), "nick": None, "avatar": None, "banner": None, "roles": [], "joined_at": iso(joined),
            "premium_since": None, "deaf": False, "mute": False, "flags": 0, "pending": False,
            "communication_disabled_until": None, "avatar_decoration_data": None,
        }


@dataclass(slots=True)
class RateLimitRule:
    method: str
    pattern: re.Pattern[str]
    remaining: int
    retry_after: float
    scope: str


@dataclass(slots=True)
class FakeInteraction:
    """An INTERACTION_CREATE the fake sent, and everything the client answered to it."""

    id: int
    token: str
    channel_id: int
    user: FakeUser
    callbacks: list[Json] = field(default_factory=list)
    followups: list[Json] = field(default_factory=list)
    original: Json | None = None
    answered_at: float | None = None
    sent_at: float = 0.0

    @property
    def deferred(self) -> bool:
        return any(c["type"] == 5 for c in self.callbacks)

    @property
    def ephemeral(self) -> bool:
        return self.original is not None and bool(self.original["flags"] & EPHEMERAL_FLAG)

    def reply_text(self) -> str:
        """What the member finally sees: the response message, or the follow-up of a deferred one."""
        messages = [m for m in (self.original, *self.followups) if m is not None and not m["flags"] & LOADING_FLAG]
        return "\n".join(message_text(m) for m in messages)


def message_text(message: Json) -> str:
    """A message's content and embeds, flattened for assertions."""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
        parts.append((embed.get("footer") or {}).get("text") or "")
    return "\n".join(p for p in parts if p)


class GatewaySession:
    """A gateway session: its events by sequence number, replayed on RESUME."""

    def __init__(self, session_id: str, intents: int, shard: list[int]) -> None:
        self.id = session_id
        self.intents = intents
        self.shard = shard
        self.sequence = 0
        self.events: list[Json] = []
        self.socket: web.WebSocketResponse | None = None

    def next(self, event_type: str, data: Json) -> Json:
        self.sequence += 1
        payload = {"op": 0, "t": event_type, "s": self.sequence, "d": data}
        self.events.append(payload)
        return payload


class FakeDiscord:
    """Discord's REST API under `api_url` and its gateway at `gateway_url`, for one bot in one guild."""

    def __init__(self, *, token: str = "fake-bot-token", allow_message_content: bool = True,
                 nonce_window: timedelta = timedelta(minutes=5)) -> None:
        self.token = token
        self.allow_message_content = allow_message_content
        self.nonce_window = nonce_window
        self._ids = itertools.count(1)
        self.started = datetime.now(UTC) - timedelta(days=30)
        self.application_id = self.new_id()
        self.bot = FakeUser(self.application_id, "prepbot", bot=True)
        self.guild_id = self.new_id()
        self.channel_id = self.new_id()
        self.organizer = FakeUser(self.new_id(), "olivia", organizer=True)
        self.alice = FakeUser(self.new_id(), "alice")
        self.bob = FakeUser(self.new_id(), "bob")
        self.carol = FakeUser(self.new_id(), "carol")
        self.other_bot = FakeUser(self.new_id(), "helperbot", bot=True)
        self.users = {u.id: u for u in (self.bot, self.organizer, self.alice, self.bob, self.carol, self.other_bot)}
        self.channels: dict[int, Json] = {self.channel_id: self._text_channel(self.channel_id, "practice")}
        self.messages: dict[int, dict[int, Json]] = {self.channel_id: {}}
        self.nonces: dict[tuple[int, str], tuple[float, int]] = {}
        self.dm_channels: dict[int, int] = {}
        self.global_commands: list[Json] = []
        self.guild_commands: dict[int, list[Json]] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.calls: list[Call] = []
        self.identifies: list[Json] = []
        self.resumes: list[Json] = []
        self.heartbeats = 0
        self.close_codes: list[int] = []  # the gateway close codes the fake refused a connection with
        self.sessions: dict[str, GatewaySession] = {}
        self.live: GatewaySession | None = None
        self._rate_limits: list[RateLimitRule] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self.port = 0
        self.refuse_logins = False
        self.unavailable = False
        self.threads_in_guild_create = True
        self.replay_overlap = 0
        self.refuse_dms: set[int] = set()
        self.close_after_ready: tuple[float, int] | None = None  # (seconds, close code) for every new session
        self.recommended_shards = 1  # what GET /gateway/bot recommends; more than 1 makes sharding required
        self.on_thread_created: Callable[[int], Awaitable[None]] | None = None
        self._lost: list[RateLimitRule] = []
        self.holds = Holds()
        self.random_faults: RandomFaults | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)  # its URLs hold interaction tokens
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001 - aiohttp keeps the bound port here

    async def stop(self) -> None:
        self.holds.stop()
        if self.random_faults is not None:
            self.random_faults.stop()
        for task in self._closing:
            task.cancel()
        for socket in list(self._sockets):
            await socket.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def new_id(self) -> int:
        return snowflake_at(datetime.now(UTC), next(self._ids))

    def add_channels(self, count: int) -> list[int]:
        """`count` more text channels in the guild (`practice-0`, ...); their ids."""
        ids = []
        for n in range(count):
            channel = self.new_id()
            self.channels[channel] = self._text_channel(channel, f"practice-{n}")
            self.messages[channel] = {}
            ids.append(channel)
        return ids

    # -- what tests ask for ------------------------------------------------------------------

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 10.0, what: str = "a condition") -> Any:
        """Poll `condition` (re-checked whenever the fake changes) until it is truthy, at most `timeout` s."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not (result := condition()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=min(left, 0.05))
                except TimeoutError:
                    pass
            return result

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def rate_limit(self, method: str, path: str, *, times: int = 1, retry_after: float = 0.25, scope: str = "user") -> None:
        """Answer the next `times` requests matching `method` and the regex `path` with 429."""
        self._rate_limits.append(RateLimitRule(method, re.compile(path), times, retry_after, scope))

    def lose_response(self, method: str, path: str, *, times: int = 1, status: int = 502) -> None:
        """Carry out the next `times` matching requests but answer `status`, as when a response is lost."""
        self._lost.append(RateLimitRule(method, re.compile(path), times, 0.0, str(status)))

    def fail_randomly(self, rate: float, seed: int, *, late_seconds: float = 60.0) -> RandomFaults:
        """From now on answer a `rate` share of REST requests with a random fault (`tests.fakes.faults`).

        Start-up requests (the bot's identity, the gateway's address, command sync) are left alone.
        A fault is drawn for `"METHOD /path"`.
        """
        self.random_faults = RandomFaults(rate, seed, lambda name: not START_UP_PATHS.fullmatch(name), late_seconds)
        return self.random_faults

    def calls_to(self, method: str, path: str) -> list[Call]:
        pattern = re.compile(path)
        return [c for c in self.calls if c.method == method and pattern.fullmatch(c.path)]

    def channel_messages(self, channel_id: int) -> list[Json]:
        return sorted(self.messages.get(channel_id, {}).values(), key=lambda m: int(m["id"]))

    def bot_posts(self, channel_id: int | None = None) -> list[Json]:
        return [m for m in self.channel_messages(channel_id or self.channel_id) if int(m["author"]["id"]) == self.bot.id]

    def add_channel(self, name: str) -> int:
        """Another text channel in the guild (before the bot connects, so GUILD_CREATE lists it)."""
        channel_id = self.new_id()
        self.channels[channel_id] = self._text_channel(channel_id, name)
        self.messages[channel_id] = {}
        return channel_id

    def thread(self, thread_id: int) -> Json | None:
        channel = self.channels.get(thread_id)
        return channel if channel is not None and channel["type"] == 11 else None

    def dms_to(self, user: FakeUser) -> list[Json]:
        channel = self.dm_channels.get(user.id)
        return self.channel_messages(channel) if channel else []

    @property
    def content_intent(self) -> bool:
        return self.live is not None and bool(self.live.intents & MESSAGE_CONTENT_INTENT)

    async def post(self, author: FakeUser, channel_id: int, content: str, embeds: list[Json] | None = None) -> Json:
        """A member posts a message (e.g. an answer in a thread); the gateway dispatches MESSAGE_CREATE."""
        message = self._message(channel_id, author, content=content, embeds=embeds)
        self.messages.setdefault(channel_id, {})[int(message["id"])] = message
        await self.dispatch("MESSAGE_CREATE", self._as_event(message))
        return message

    async def edit(self, channel_id: int, message_id: int, content: str) -> Json:
        message = self.messages[channel_id][message_id]
        message["content"] = content
        message["edited_timestamp"] = iso(datetime.now(UTC))
        await self.dispatch("MESSAGE_UPDATE", self._as_event(message))
        return message

    async def delete(self, channel_id: int, message_id: int) -> None:
        self.messages[channel_id].pop(message_id, None)
        await self.dispatch("MESSAGE_DELETE", {"id": str(message_id), "channel_id": str(channel_id), "guild_id": str(self.guild_id)})

    async def react(self, user: FakeUser, channel_id: int, message_id: int, emoji: str) -> None:
        author = self.messages.get(channel_id, {}).get(message_id, {}).get("author", {}).get("id")
        await self.dispatch("MESSAGE_REACTION_ADD", {
            "user_id": str(user.id), "channel_id": str(channel_id), "message_id": str(message_id),
            "guild_id": str(self.guild_id), "member": user.member_json(self.started),
            "emoji": {"id": None, "name": emoji}, "message_author_id": author, "burst": False, "burst_colors": [],
            "type": 0,
        })

    async def unreact(self, user: FakeUser, channel_id: int, message_id: int, emoji: str) -> None:
        await self.dispatch("MESSAGE_REACTION_REMOVE", {
            "user_id": str(user.id), "channel_id": str(channel_id), "message_id": str(message_id),
            "guild_id": str(self.guild_id), "emoji": {"id": None, "name": emoji}, "burst": False, "type": 0,
        })

    async def invoke(self, user: FakeUser, command: str, *path: str, options: dict[str, Any] | None = None,
                     channel_id: int | None = None, autocomplete: str | None = None,
                     raw_options: list[Json] | None = None) -> FakeInteraction:
        """A member runs a slash command, e.g. `invoke(alice, "prep", "leaderboard", options={"period": "all"})`.

        With `autocomplete`, the named option is the focused one and the interaction is of type 4.
        `raw_options` are sent as given (e.g. of a type the command does not declare), in place of `options`.
        """
        channel_id = channel_id or self.channel_id
        leaf: list[Json] = raw_options if raw_options is not None else [
            {"name": name, "type": 3, "value": value, **({"focused": True} if name == autocomplete else {})}
            for name, value in (options or {}).items()
        ]
        for name in reversed(path):
            leaf = [{"name": name, "type": 1, "options": leaf}]
        command_id = next((c["id"] for c in self._all_commands() if c["name"] == command), str(self.new_id()))
        interaction = FakeInteraction(self.new_id(), f"itoken-{next(self._ids)}", channel_id, user, sent_at=time.monotonic())
        self.interactions[interaction.id] = interaction
        channel = self.channels[channel_id]
        await self.dispatch("INTERACTION_CREATE", {
            "id": str(interaction.id), "application_id": str(self.application_id), "type": 4 if autocomplete else 2,
            "data": {"id": command_id, "name": command, "type": 1, "options": leaf},
            "guild_id": str(self.guild_id), "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id), "channel": {**channel, "permissions": str(user.permissions)},
            "member": {**user.member_json(self.started), "permissions": str(user.permissions)},
            "token": interaction.token, "version": 1, "app_permissions": str(MEMBER_PERMISSIONS),
            "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)}, "context": 0,
            "attachment_size_limit": 10_485_760,
        })
        return interaction

    async def answered(self, interaction: FakeInteraction, timeout: float = 10.0) -> FakeInteraction:
        """Wait until the client has given the member its final reply to `interaction`."""
        def done() -> bool:
            if not interaction.callbacks:
                return False
            return not interaction.deferred or bool(interaction.followups) or (
                interaction.original is not None and not interaction.original["flags"] & LOADING_FLAG)
        await self.wait_for(done, timeout, f"the reply to interaction {interaction.id}")
        return interaction

    async def dispatch(self, event_type: str, data: Json) -> None:
        """Send a dispatch on the live gateway session (kept for replay when nobody is connected)."""
        session = self.live
        if session is None:
            raise AssertionError("no gateway session: the client never identified")
        payload = session.next(event_type, data)
        if session.socket is not None and not session.socket.closed:
            await session.socket.send_str(json.dumps(payload))
        await self._notify()

    def sent(self, event_type: str, **fields: Any) -> list[Json]:
        """Dispatches of `event_type` sent on the live session whose data has all of `fields`."""
        assert self.live is not None
        return [p for p in self.live.events if p["t"] == event_type and all(p["d"].get(k) == v for k, v in fields.items())]

    async def redeliver(self, *payloads: Json) -> None:
        """Send dispatches again exactly as before (same sequence numbers), as a duplicated delivery would."""
        assert self.live is not None and self.live.socket is not None
        for payload in payloads:
            await self.live.socket.send_str(json.dumps(payload))
        await self._notify()

    async def reconnect(self) -> None:
        """Ask the client to reconnect (op 7); it comes back with RESUME on the resume URL."""
        assert self.live is not None and self.live.socket is not None
        await self.live.socket.send_str(json.dumps({"op": 7, "d": None}))

    async def drop_connection(self) -> None:
        """Close the live socket as a network failure would; the client resumes."""
        assert self.live is not None and self.live.socket is not None
        await self.live.socket.close(code=4000)

    # -- the gateway -------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self._sockets.add(socket)
        session: GatewaySession | None = None
        try:
            await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}}))
            async for frame in socket:
                if frame.type != WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                op, data = message.get("op"), message.get("d")
                if op == 1:
                    self.heartbeats += 1
                    await socket.send_str(json.dumps({"op": 11}))
                elif op == 2:
                    session = await self._identify(socket, data)
                elif op == 6:
                    session = await self._resume(socket, data)
                await self._notify()
        finally:
            self._sockets.discard(socket)
            if session is not None and session.socket is socket:
                session.socket = None
            await self._notify()
        return socket

    async def _identify(self, socket: web.WebSocketResponse, data: Json) -> GatewaySession | None:
        self.identifies.append({k: v for k, v in data.items() if k != "token"})
        if data.get("token") != self.token:
            await self._refuse(socket, 4004, b"Authentication failed.")
            return None
        if self.recommended_shards > 1 and (data.get("shard") or [0, 1])[1] < self.recommended_shards:
            await self._refuse(socket, 4011, b"Sharding required.")
            return None
        intents = int(data.get("intents", 0))
        if intents & MESSAGE_CONTENT_INTENT and not self.allow_message_content:
            await self._refuse(socket, 4014, b"Disallowed intent(s).")
            return None
        session = GatewaySession(f"session-{next(self._ids)}", intents, data.get("shard") or [0, 1])
        session.socket = socket
        self.sessions[session.id] = session
        shard_id, shard_count = session.shard
        owns_guild = (self.guild_id >> 22) % shard_count == shard_id
        if owns_guild:
            self.live = session
        ready = session.next("READY", {
            "v": 10, "user": {**self.bot.json(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}] if owns_guild else [], "session_id": session.id,
            "resume_gateway_url": self.gateway_url, "shard": session.shard,
            "application": {"id": str(self.application_id), "flags": 0}, "private_channels": [],
            "relationships": [], "presences": [], "geo_ordered_rtc_regions": [], "user_settings": {}, "session_type": "normal",
        })
        await socket.send_str(json.dumps(ready))
        if owns_guild:
            await socket.send_str(json.dumps(session.next("GUILD_CREATE", self._guild())))
        if self.close_after_ready is not None:
            delay, code = self.close_after_ready
            self._closing.add(asyncio.create_task(self._close_later(socket, delay, code)))
        return session

    async def _close_later(self, socket: web.WebSocketResponse, delay: float, code: int) -> None:
        await asyncio.sleep(delay)
        await self._refuse(socket, code, b"Closed by the fake.")

    async def _refuse(self, socket: web.WebSocketResponse, code: int, reason: bytes) -> None:
        self.close_codes.append(code)
        await socket.close(code=code, message=reason)

    async def _resume(self, socket: web.WebSocketResponse, data: Json) -> GatewaySession | None:
        self.resumes.append({k: v for k, v in data.items() if k != "token"})
        session = self.sessions.get(data.get("session_id", ""))
        if session is None or data.get("token") != self.token:
            await socket.send_str(json.dumps({"op": 9, "d": False}))
            return None
        session.socket = socket
        if self.live is None or self.live.id == session.id:
            self.live = session
        since = int(data.get("seq") or 0) - self.replay_overlap
        for payload in session.events:
            if payload["s"] > since:
                await socket.send_str(json.dumps(payload))
        await socket.send_str(json.dumps(session.next("RESUMED", {})))
        return session

    def _guild(self) -> Json:
        everyone = {
            "id": str(self.guild_id), "name": "@everyone", "permissions": str(MEMBER_PERMISSIONS), "position": 0,
            "color": 0, "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False, "managed": False, "mentionable": False, "flags": 0, "icon": None, "unicode_emoji": None,
        }
        threads = [c for c in self.channels.values() if c["type"] == 11] if self.threads_in_guild_create else []
        return {
            "id": str(self.guild_id), "name": "Interview Prep", "icon": None, "splash": None, "discovery_splash": None,
            "owner_id": str(self.organizer.id), "afk_channel_id": None, "afk_timeout": 300, "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "roles": [everyone], "emojis": [],
            "features": [], "mfa_level": 0, "application_id": None, "system_channel_id": None, "system_channel_flags": 0,
            "rules_channel_id": None, "max_members": 500000, "vanity_url_code": None, "description": None,
            "banner": None, "premium_tier": 0, "premium_subscription_count": 0, "preferred_locale": "en-US",
            "public_updates_channel_id": None, "nsfw_level": 0, "stickers": [], "premium_progress_bar_enabled": False,
            "safety_alerts_channel_id": None, "joined_at": iso(self.started), "large": False, "unavailable": False,
            "member_count": len(self.users), "voice_states": [], "members": [], "presences": [],
            "channels": [c for c in self.channels.values() if c["type"] == 0], "threads": threads,
            "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
        }

    # -- REST ----------------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json" and raw:
                body = json.loads(raw)
            elif request.content_type.startswith("multipart/"):
                body = await _multipart_json(request)
        path = request.path[len(API_PREFIX):]
        arrived = time.monotonic()
        request[BODY] = body
        fault = self.random_faults.draw(f"{request.method} {path}") if self.random_faults is not None else None
        if fault is not None:
            response = await self._faulty(fault, request, handler)
            self.calls.append(Call(request.method, path, dict(request.query), body, response.status, arrived, fault))
            await self._notify()
            return response
        verdict = await self.holds.gate(f"{request.method} {path}", body,
                                        lambda: request.transport is None or request.transport.is_closing())
        if verdict is Verdict.DROP:
            return web.Response(status=503)  # never carried out; its caller is gone
        response = await self._limited(request.method, path) or await handler(request)
        for rule in self._lost:
            if rule.remaining > 0 and rule.method == request.method and rule.pattern.fullmatch(path):
                rule.remaining -= 1
                response = _json({"message": "Bad Gateway", "code": 0}, int(rule.scope))
                break
        self.calls.append(Call(request.method, path, dict(request.query), body, response.status, arrived))
        await self._notify()
        if verdict is Verdict.LAND_UNANSWERED:
            await self.holds.unanswered()
        return response

    async def _faulty(self, fault: Fault, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Answer a request the way `fault` says; the work is done first if the fault comes after it."""
        assert self.random_faults is not None
        if fault.kind == RATE_LIMITED:
            retry_after = 0.2
            return _json({"message": "You are being rate limited.", "retry_after": retry_after, "global": False}, 429, {
                "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}", "X-RateLimit-Bucket": "fake-random",
                "X-RateLimit-Scope": "user", "Retry-After": "1", "Via": "1.1 google"})
        done = await self.random_faults.carry_out(fault, lambda: handler(request))
        if fault.kind == TIMEOUT:  # the client waited it out after all
            return done or _json({"message": "Gateway Timeout", "code": 0}, 504)
        if fault.status == 500:
            return _json({"message": "500: Internal Server Error", "code": 0}, 500)
        return web.Response(status=fault.status, text="<html><body>upstream unavailable</body></html>", content_type="text/html")

    async def _limited(self, method: str, path: str) -> web.Response | None:
        for rule in self._rate_limits:
            if rule.remaining > 0 and rule.method == method and rule.pattern.fullmatch(path):
                rule.remaining -= 1
                headers = {
                    "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}", "X-RateLimit-Bucket": "fake-" + rule.pattern.pattern,
                    "X-RateLimit-Scope": rule.scope, "Retry-After": str(max(1, round(rule.retry_after))),
                    "Via": "1.1 google",  # discord.py treats a 429 without it as a Cloudflare ban
                }
                return _json({"message": "You are being rate limited.", "retry_after": rule.retry_after,
                              "global": rule.scope == "global"}, 429, headers)
        return None

    async def _rest(self, request: web.Request) -> web.Response:
        if self.unavailable:
            return _json({"message": "503: Service Unavailable", "code": 0}, 503)
        if request.headers.get("Authorization") != f"Bot {self.token}" and "/interactions/" not in request.path and "/webhooks/" not in request.path:
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        method, path, body = request.method, request.path[len(API_PREFIX):], request[BODY]
        for route_method, pattern, handler in self._routes():
            if route_method == method and (match := re.fullmatch(pattern, path)):
                return await handler(request, body, *match.groups())
        return _json({"message": f"404: Not Found ({method} {path})", "code": 0}, 404)

    def _routes(self) -> Iterable[tuple[str, str, Callable[..., Awaitable[web.Response]]]]:
        return (
            ("GET", r"/users/@me", self._me),
            ("GET", r"/oauth2/applications/@me", self._application),
            ("GET", r"/applications/@me", self._application),
            ("GET", r"/gateway", self._gateway_url),
            ("GET", r"/gateway/bot", self._gateway_bot),
            ("PUT", r"/applications/(\d+)/commands", self._sync_global),
            ("PUT", r"/applications/(\d+)/guilds/(\d+)/commands", self._sync_guild),
            ("GET", r"/channels/(\d+)", self._get_channel),
            ("GET", r"/channels/(\d+)/messages", self._history),
            ("POST", r"/channels/(\d+)/messages", self._create_message),
            ("POST", r"/channels/(\d+)/messages/(\d+)/threads", self._start_thread),
            ("POST", r"/users/@me/channels", self._open_dm),
            ("POST", r"/interactions/(\d+)/([^/]+)/callback", self._callback),
            ("POST", r"/webhooks/(\d+)/([^/]+)", self._followup),
            ("PATCH", r"/webhooks/(\d+)/([^/]+)/messages/@original", self._edit_original),
            ("GET", r"/webhooks/(\d+)/([^/]+)/messages/@original", self._get_original),
        )

    async def _me(self, request: web.Request, body: Any) -> web.Response:
        if self.refuse_logins:
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        return _json({**self.bot.json(), "verified": True, "mfa_enabled": False, "locale": "en-US"})

    async def _application(self, request: web.Request, body: Any) -> web.Response:
        return _json({
            "id": str(self.application_id), "name": "prepbot", "icon": None, "description": "Interview practice",
            "rpc_origins": [], "bot_public": True, "bot_require_code_grant": False, "bot": self.bot.json(),
            "terms_of_service_url": None, "privacy_policy_url": None, "owner": self.organizer.json(),
            "verify_key": "0" * 64, "team": None, "guild_id": None, "primary_sku_id": None, "slug": None,
            "cover_image": None, "flags": 1 << 19, "approximate_guild_count": 1, "approximate_user_install_count": 0,
            "redirect_uris": [], "interactions_endpoint_url": None, "role_connections_verification_url": None,
            "tags": [], "install_params": None, "integration_types_config": {}, "custom_install_url": None,
            "event_webhooks_url": None, "event_webhooks_status": 1, "event_webhooks_types": [],
        })

    async def _gateway_url(self, request: web.Request, body: Any) -> web.Response:
        return _json({"url": self.gateway_url})

    async def _gateway_bot(self, request: web.Request, body: Any) -> web.Response:
        return _json({"url": self.gateway_url, "shards": self.recommended_shards, "session_start_limit": {
            "total": 1000, "remaining": 1000 - len(self.identifies), "reset_after": 86_400_000, "max_concurrency": 1}})

    def _all_commands(self) -> list[Json]:
        return [*self.global_commands, *itertools.chain.from_iterable(self.guild_commands.values())]

    def _registered(self, commands: list[Json], guild_id: str | None) -> list[Json]:
        return [{
            "id": str(self.new_id()), "application_id": str(self.application_id), "version": str(self.new_id()),
            "type": 1, "default_member_permissions": None, "dm_permission": True, "nsfw": False,
            "integration_types": [0], "contexts": None, "options": [], "description": "",
            **command, **({"guild_id": guild_id} if guild_id else {}),
        } for command in commands]

    async def _sync_global(self, request: web.Request, body: Any, app_id: str) -> web.Response:
        self.global_commands = self._registered(body, None)
        return _json(self.global_commands)

    async def _sync_guild(self, request: web.Request, body: Any, app_id: str, guild_id: str) -> web.Response:
        self.guild_commands[int(guild_id)] = self._registered(body, guild_id)
        return _json(self.guild_commands[int(guild_id)])

    async def _get_channel(self, request: web.Request, body: Any, channel_id: str) -> web.Response:
        channel = self.channels.get(int(channel_id))
        if channel is None:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        return _json(channel)

    async def _history(self, request: web.Request, body: Any, channel_id: str) -> web.Response:
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "50"))
        found = [m for m in self.channel_messages(int(channel_id)) if int(m["id"]) > after][:limit]
        # REST never returns the nonce: it is only echoed on MESSAGE_CREATE.
        return _json([{k: v for k, v in m.items() if k != "nonce"} for m in reversed(found)])

    async def _create_message(self, request: web.Request, body: Json, channel_id: str) -> web.Response:
        channel = int(channel_id)
        if channel not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        recipients = self.channels[channel].get("recipients") or []
        if recipients and int(recipients[0]["id"]) in self.refuse_dms:
            return _json({"message": "Cannot send messages to this user", "code": 50007}, 403)
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            seen = self.nonces.get((channel, str(nonce)))
            if seen is not None and time.monotonic() - seen[0] < self.nonce_window.total_seconds():
                existing = self.messages[channel].get(seen[1])
                if existing is not None:
                    return _json(existing)
        message = self._message(channel, self.bot, content=body.get("content") or "", embeds=body.get("embeds") or [],
                                nonce=nonce, flags=body.get("flags", 0))
        self.messages.setdefault(channel, {})[int(message["id"])] = message
        if nonce is not None:
            self.nonces[(channel, str(nonce))] = (time.monotonic(), int(message["id"]))
        if self.live is not None:
            await self.dispatch("MESSAGE_CREATE", self._as_event(message))
        return _json(message)

    async def _start_thread(self, request: web.Request, body: Json, channel_id: str, message_id: str) -> web.Response:
        thread_id = int(message_id)
        if thread_id in self.channels:
            return _json({"message": "A thread has already been created for this message", "code": 160004}, 400)
        message = self.messages.get(int(channel_id), {}).get(thread_id)
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        thread = {
            "id": message_id, "guild_id": str(self.guild_id), "parent_id": channel_id, "owner_id": str(self.bot.id),
            "name": body["name"], "type": 11, "last_message_id": None, "message_count": 0, "member_count": 1,
            "rate_limit_per_user": 0, "flags": 0, "total_message_sent": 0, "applied_tags": [],
            "thread_metadata": {"archived": False, "auto_archive_duration": body.get("auto_archive_duration", 1440),
                                "archive_timestamp": iso(datetime.now(UTC)), "locked": False, "create_timestamp": iso(datetime.now(UTC))},
        }
        self.channels[thread_id] = thread
        self.messages[thread_id] = {}
        message["thread"] = thread
        if self.live is not None:
            await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        if self.on_thread_created is not None:
            await self.on_thread_created(thread_id)
        return _json(thread, 201)

    async def _open_dm(self, request: web.Request, body: Json) -> web.Response:
        user_id = int(body["recipient_id"])
        if user_id not in self.users:
            return _json({"message": "Unknown User", "code": 10013}, 404)
        channel = self.dm_channels.get(user_id)
        if channel is None:
            channel = self.dm_channels[user_id] = self.new_id()
            self.channels[channel] = {"id": str(channel), "type": 1, "last_message_id": None, "flags": 0,
                                      "recipients": [self.users[user_id].json()]}
            self.messages[channel] = {}
        return _json(self.channels[channel])

    def _interaction(self, interaction_id: str, token: str) -> FakeInteraction | None:
        interaction = self.interactions.get(int(interaction_id))
        return interaction if interaction is not None and interaction.token == token else None

    async def _callback(self, request: web.Request, body: Json, interaction_id: str, token: str) -> web.Response:
        interaction = self._interaction(interaction_id, token)
        if interaction is None:
            return _json({"message": "Unknown interaction", "code": 10062}, 404)
        if interaction.callbacks:
            return _json({"message": "Interaction has already been acknowledged.", "code": 40060}, 400)
        interaction.callbacks.append(body)
        interaction.answered_at = time.monotonic()
        kind, data = body["type"], body.get("data") or {}
        resource: Json | None = None
        if kind in (4, 5):
            flags = int(data.get("flags", 0)) | (LOADING_FLAG if kind == 5 else 0)
            message = self._message(interaction.channel_id, self.bot, content=data.get("content") or "",
                                    embeds=data.get("embeds") or [], flags=flags)
            message["interaction_metadata"] = {"id": interaction_id, "type": 2, "user": interaction.user.json(),
                                               "authorizing_integration_owners": {"0": str(self.guild_id)}}
            interaction.original = message
            if not flags & EPHEMERAL_FLAG:
                self.messages.setdefault(interaction.channel_id, {})[int(message["id"])] = message
            resource = {"type": kind, "message": message}
        await self._notify()
        if request.query.get("with_response") in ("1", "true", "True"):
            return _json({"interaction": {
                "id": interaction_id, "type": 2, "activity_instance_id": None,
                "response_message_id": resource["message"]["id"] if resource else None,
                "response_message_loading": kind == 5, "response_message_ephemeral": bool(
                    int(data.get("flags", 0)) & EPHEMERAL_FLAG)}, **({"resource": resource} if resource else {})})
        return web.Response(status=204)

    async def _followup(self, request: web.Request, body: Json, app_id: str, token: str) -> web.Response:
        interaction = next((i for i in self.interactions.values() if i.token == token), None)
        if interaction is None or app_id != str(self.application_id):
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        flags = int(body.get("flags", 0))
        if interaction.original is not None and interaction.original["flags"] & LOADING_FLAG:
            # The first follow-up to a deferred response replaces the "thinking" message and keeps its visibility.
            flags = interaction.original["flags"] & EPHEMERAL_FLAG
        message = self._message(interaction.channel_id, self.bot, content=body.get("content") or "",
                                embeds=body.get("embeds") or [], flags=flags, webhook_id=app_id)
        interaction.followups.append(message)
        if not flags & EPHEMERAL_FLAG:
            self.messages.setdefault(interaction.channel_id, {})[int(message["id"])] = message
        return _json(message)

    async def _edit_original(self, request: web.Request, body: Json, app_id: str, token: str) -> web.Response:
        interaction = next((i for i in self.interactions.values() if i.token == token), None)
        if interaction is None or interaction.original is None:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        original = interaction.original
        original.update({k: v for k, v in body.items() if k in ("content", "embeds")})
        original["flags"] &= ~LOADING_FLAG
        original["edited_timestamp"] = iso(datetime.now(UTC))
        await self._notify()
        return _json(original)

    async def _get_original(self, request: web.Request, body: Any, app_id: str, token: str) -> web.Response:
        interaction = next((i for i in self.interactions.values() if i.token == token), None)
        if interaction is None or interaction.original is None:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        return _json(interaction.original)

    # -- payload builders ----------------------------------------------------------------------

    def _text_channel(self, channel_id: int, name: str) -> Json:
        return {
            "id": str(channel_id), "type": 0, "guild_id": str(self.guild_id), "name": name, "position": 0,
            "permission_overwrites": [], "topic": None, "nsfw": False, "last_message_id": None,
            "rate_limit_per_user": 0, "parent_id": None, "default_auto_archive_duration": 1440, "flags": 0,
            "default_thread_rate_limit_per_user": 0,
        }

    def _message(self, channel_id: int, author: FakeUser, *, content: str = "", embeds: list[Json] | None = None,
                 nonce: Any = None, flags: int = 0, webhook_id: str | None = None) -> Json:
        message_id = self.new_id()
        thread = self.thread(channel_id)
        message: Json = {
            "id": str(message_id), "channel_id": str(channel_id), "author": author.json(), "content": content,
            "timestamp": iso(datetime.now(UTC)), "edited_timestamp": None, "tts": False, "mention_everyone": False,
            "mentions": [], "mention_roles": [], "attachments": [], "embeds": embeds or [], "pinned": False,
            "type": 0, "flags": flags, "components": [], "sticker_items": [],
        }
        if nonce is not None:
            message["nonce"] = nonce
        if webhook_id is not None:
            message["webhook_id"] = webhook_id
        if thread is not None:
            thread["message_count"] += 1
            thread["total_message_sent"] += 1
            thread["last_message_id"] = str(message_id)
        return message

    def _as_event(self, message: Json) -> Json:
        """A message as a gateway dispatch: with guild and member, and without content lacking the intent."""
        event = {**message, "guild_id": str(self.guild_id)}
        author = self.users.get(int(message["author"]["id"]))
        if author is not None:
            event["member"] = {k: v for k, v in author.member_json(self.started).items() if k != "user"}
        mentioned = any(int(m["id"]) == self.bot.id for m in message.get("mentions", []))
        if not self.content_intent and author is not self.bot and not mentioned:
            event.update(content="", embeds=[], attachments=[], components=[])
        return event


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly `application/json` (no charset).
    base = {"Content-Type": "application/json", "X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset-After": "1.000"}
    if status == 429:
        base = {"Content-Type": "application/json"}
    return web.Response(body=json.dumps(payload).encode(), status=status, headers={**base, **(headers or {})})


async def _multipart_json(request: web.Request) -> Any:
    reader = await request.multipart()
    async for part in reader:
        if getattr(part, "name", None) == "payload_json":
            return json.loads(await part.read(decode=True))  # type: ignore[union-attr]
    return None
