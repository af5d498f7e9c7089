"""The Slack adapter: bolt's `AsyncApp` over HTTP or Socket Mode, recording each event before acknowledging it."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import urljoin

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.internals import extract_enterprise_id, extract_team_id, extract_user_id
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.logs import redact
from adapters.slack import translate
from adapters.slack.http import build_web_app
from adapters.slack.manifest import BOT_SCOPES, INSTALL_PATH, REDIRECT_PATH
from adapters.slack.oauth import SqlInstallationStore, SqlOAuthStateStore
from adapters.slack.port import Pacer, ReadRetryHandler, SlackChat, describe, outcome_unknown
from bot.actions import PostReply, Reply
from bot.app import StartupError
from bot.commands import ORGANIZER_COMMANDS
from bot.core import Clock, PrepBot, utc_now
from bot.events import DrillRequested, Event, ReactionAdded, ReactionRemoved
from bot.messages import Message
from bot.refs import ChannelRef, MessageRef, UserRef
from bot.settings import Settings

logger = logging.getLogger(__name__)

SLACK_API_URL = "https://slack.com/api/"
FAILED = Message.text("Sorry, prepbot could not do that just now. Please try again in a moment.")
UNKNOWN_COMMAND = "prepbot answers /prep and /drill only. Try /prep help."
ADMIN_LOOKUP_FAILED = Message.text(
    "Slack did not tell prepbot whether you are a workspace admin or owner just now, so organizer commands "
    "cannot run. Nothing was changed; please try again in a moment.")
USER_INFO_SECONDS = 60.0
AUTHORIZE_SECONDS = 60.0
MAX_CACHED = 10_000
SHUTDOWN_GRACE_SECONDS = 5.0
# Slack's Retry-After for chat.postMessage is usually a second or two; eight waits ride out a burst.
RATE_LIMIT_RETRIES = 8
# Slack answers a Web API call in well under a second; one taking longer is treated as lost (and, if a read, asked again).
REQUEST_SECONDS = 10.0
GC_YOUNG_THRESHOLD = 10_000
# Slack's tokens (bot, user, refresh, app-level) by their documented prefixes.
SLACK_TOKEN = re.compile(r"()\bx(?:ox[abpre]|app)-[0-9A-Za-z-]+")
# SQLAlchemy's statement log shows an installation's bot token among a statement's parameters and a row's values.
TOKEN_BEARING_LOGGERS = ("sqlalchemy.engine.Engine",)


class SlackAdapter:
    """Serves one Slack app (one workspace by bot token, or many by OAuth) until cancelled.

    Events are handed to the core *before* they are acknowledged, so an event is in the core's
    inbox (with its effects) before Slack stops redelivering it; a failure answers 500 and Slack's
    retry is the retry. Nothing before an acknowledgement calls Slack: the bot's identity comes
    from `auth.test` at start (or the stored installation), and every reply, lookup and private
    note runs after the acknowledgement.
    """

    platform = "slack"

    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], *,
        clock: Clock = utc_now, pace_seconds: float = 1.0, fast_path: bool = True,
        request_seconds: float = REQUEST_SECONDS, retry_seconds: float = 1.0,
    ) -> None:
        if not settings.slack_configured:
            raise StartupError("Slack needs SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN "
                               "(Socket Mode), or SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET (OAuth).")
        self._settings = settings
        self._socket_mode = bool(settings.slack_app_token)
        if not self._socket_mode and not settings.slack_signing_secret:
            raise StartupError("Slack HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for Socket Mode).")
        self._installations = SqlInstallationStore(sessions) if settings.slack_oauth_configured else None
        if self._installations is not None and not settings.slack_state_secret:
            raise StartupError("Slack OAuth installs need SLACK_STATE_SECRET (any long random string).")
        _quiet_token_logs()
        self._sessions = sessions
        self._clock = clock
        self._request_seconds = request_seconds
        # slack_sdk appends method names to the base URL as is, so it must end in a slash.
        self._api_url = (settings.slack_api_url or SLACK_API_URL).rstrip("/") + "/"
        # One HTTP session for every Web API call, opened in `run`; without it slack_sdk opens one per call.
        self._http: aiohttp.ClientSession | None = None
        self._clients: dict[str, AsyncWebClient] = {}
        self._client = self._new_client(None if self._installations is not None else settings.slack_bot_token)
        self._identity: AuthorizeResult | None = None
        self._authorized: dict[tuple[str, str], tuple[float, AuthorizeResult]] = {}
        self._refreshing: set[tuple[str, str]] = set()
        self._users: dict[tuple[str, str], tuple[float, Mapping[str, Any]]] = {}
        self._bots: dict[tuple[str, str], bool] = {}
        self._asking: set[tuple[str, str]] = set()
        self._verifier = SignatureVerifier(settings.slack_signing_secret) if settings.slack_signing_secret else None
        self._fast = fast_path
        self._tasks: set[asyncio.Task[None]] = set()
        self._chat = SlackChat(self._client_for, Pacer(pace_seconds), self._spawn, retry_seconds=retry_seconds)
        self._ready = asyncio.Event()
        self._core: PrepBot | None = None
        self.http_port: int | None = None

    @property
    def port(self) -> SlackChat:
        return self._chat

    @property
    def ready(self) -> asyncio.Event:
        """Set once the adapter serves requests (HTTP bound, and in Socket Mode the connection open)."""
        return self._ready

    async def run(self, core: PrepBot) -> None:
        """Check the credentials, serve HTTP (and Socket Mode when configured) until cancelled."""
        self._core = core
        # slack_sdk applies its own timeout only to sessions it opens itself; this one carries it.
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._request_seconds))
        self._client.session = self._http
        try:
            await self._serve()
        finally:
            # A tick still in flight at shutdown may post after this: it gets slack_sdk's own session per call.
            http, self._http, self._client.session = self._http, None, None
            self._clients.clear()
            await http.close()

    async def _serve(self) -> None:
        if self._installations is None:
            self._identity = await self._check_token()
        else:
            await self._remember_installations()
        app = self._build_app()
        web_app = build_web_app(app, self._ready, serve_events=not self._socket_mode, fast_path=self._fast_path if self._fast else None)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        socket: AsyncSocketModeHandler | None = None
        try:
            site = web.TCPSite(runner, self._settings.host, self._settings.port)
            await site.start()
            self.http_port = _bound_port(runner)
            if self._socket_mode:
                socket = await self._connect_socket(app)
            self._ready.set()
            _settle_heap()
            logger.info("Slack adapter ready in %s; HTTP on %s:%s", "Socket Mode" if self._socket_mode else "HTTP mode",
                        self._settings.host, self.http_port)
            await asyncio.Event().wait()
        finally:
            self._ready.clear()
            if socket is not None:
                await socket.close_async()  # type: ignore[no-untyped-call]
            await runner.cleanup()
            await self._finish_background(SHUTDOWN_GRACE_SECONDS)

    async def drain(self) -> None:
        """Wait for the work started after acknowledgements (replies, lookups, private notes) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _finish_background(self, grace: float) -> None:
        # A reply stuck on a slow Slack must not hold the process up at shutdown for ever.
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ---- bolt ------------------------------------------------------------------------------------

    def _build_app(self) -> AsyncApp:
        settings = self._settings
        oauth_settings = None
        if self._installations is not None:
            assert settings.slack_state_secret is not None
            oauth_settings = AsyncOAuthSettings(
                client_id=settings.slack_client_id, client_secret=settings.slack_client_secret, scopes=list(BOT_SCOPES),
                installation_store=self._installations, install_path=INSTALL_PATH, redirect_uri_path=REDIRECT_PATH,
                state_store=SqlOAuthStateStore(self._sessions, settings.slack_state_secret),
                authorization_url=urljoin(self._api_url, "/oauth/v2/authorize"),
            )
        app = AsyncApp(
            # Tokenless: each request's client gets its token from `_authorize`.
            client=self._new_client(None),
            signing_secret=settings.slack_signing_secret or "",
            # Our own authorize: bolt's would call auth.test before the first acknowledgement.
            authorize=_Authorize(self._authorize),  # type: ignore[arg-type]  # bolt takes an AsyncAuthorize as is
            # Listeners finish before the response goes back, so an event is in the core's inbox before its ack;
            # command listeners acknowledge at once and hand their work to a task.
            process_before_response=True,
            request_verification_enabled=not self._socket_mode,
            oauth_settings=oauth_settings,
            logger=_bolt_logger(),
        )
        # One listener for every message subtype: a second `message` listener would never see
        # edits or deletes, because the first match takes the request.
        for name in ("message", "reaction_added", "reaction_removed", "app_mention"):
            app.event(name)(self._on_event)
        if self._installations is not None:
            app.event("app_uninstalled")(self._on_uninstalled)
            app.event("tokens_revoked")(self._on_uninstalled)
        everything = re.compile(".*")
        app.event(everything)(self._ack_only)  # subscribed events prepbot does not act on are still acknowledged
        app.command("/prep")(self._on_command)
        app.command("/drill")(self._on_command)
        app.command(everything)(self._on_unknown_command)
        app.shortcut(translate.DRILL_CALLBACK_ID)(self._on_shortcut)
        app.shortcut(everything)(self._ack_only)
        app.action(everything)(self._ack_only)
        app.view(everything)(self._ack_only)
        return app

    async def _on_event(self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        event = translate.event_from_callback(body, context.bot_user_id)
        reply = await self._handle(event) if event is not None else None
        await ack()
        self._after_ack(event, reply)

    def _after_ack(self, event: Event | None, reply: Reply | None) -> None:
        if isinstance(event, ReactionAdded | ReactionRemoved):
            key = (event.reactor.workspace.id, event.reactor.id)
            if key not in self._bots and key not in self._asking:
                self._asking.add(key)  # one users.info per new reactor, however many reactions arrive meanwhile
                self._spawn(self._note_if_bot(event.reactor))
        elif isinstance(event, DrillRequested) and reply is not None:
            self._spawn(self._deliver(reply, event.channel, event.user, event.thread, None))

    # ---- the fast path ---------------------------------------------------------------------------

    async def _fast_path(self, body: bytes, headers: Mapping[str, str]) -> int | None:
        """Serve a message or reaction event without bolt's dispatch; None leaves any other request to bolt.

        These events arrive by the thousand, and bolt's middleware chain and argument injection
        cost a quarter to a third of the CPU per event. What bolt does for them is done here too:
        the request's signature and age are checked (slack_sdk's verifier), the workspace is
        authorized from what the adapter knows, the bot's own events are ignored, and the event is
        in the core's inbox before the 200 goes back.
        """
        if not body.startswith(b"{") or not headers.get("Content-Type", "").startswith("application/json"):
            return None  # slash commands and interactivity are forms
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        if not isinstance(payload, dict) or not translate.is_fast_event(payload):
            return None  # url_verification, app_mention, app_uninstalled, … stay on bolt
        if self._verifier is None or not _signed(self._verifier, body, headers):
            return 401
        try:
            await self._on_fast_event(payload)
        except Exception:
            logger.exception("handling a Slack %s event failed", payload["event"].get("type"))
            return 500  # Slack retries, and the inbox makes the retry safe
        return 200

    async def _on_fast_event(self, body: dict[str, Any]) -> None:
        identity = await self._authorize(extract_enterprise_id(body), extract_team_id(body))
        if identity is None:
            logger.error("an event for Slack workspace %s, where prepbot is not installed; ignored", extract_team_id(body))
            return
        if _is_own_event(body, identity):
            return
        event = translate.event_from_callback(body, identity.bot_user_id)
        reply = await self._handle(event) if event is not None else None
        self._after_ack(event, reply)

    async def _on_uninstalled(self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
        assert self._installations is not None
        if event.get("type") == "app_uninstalled" or (event.get("tokens") or {}).get("bot"):
            enterprise_id, team_id = body.get("enterprise_id"), body.get("team_id")
            await self._installations.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)
            self._authorized.pop((enterprise_id or "", team_id or ""), None)
            logger.info("prepbot was uninstalled from Slack workspace %s; its installation is removed", team_id)
        await ack()

    async def _ack_only(self, ack: AsyncAck) -> None:
        await ack()

    async def _on_command(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack()
        self._spawn(self._run_command(dict(command)))

    async def _on_unknown_command(self, ack: AsyncAck) -> None:
        await ack(text=UNKNOWN_COMMAND)

    async def _on_shortcut(self, ack: AsyncAck, shortcut: dict[str, Any]) -> None:
        await ack()
        self._spawn(self._run_shortcut(dict(shortcut)))

    async def _authorize(self, enterprise_id: str | None, team_id: str | None) -> AuthorizeResult | None:
        if self._installations is None:
            return self._identity
        key = (enterprise_id or "", team_id or "")
        cached = self._authorized.get(key)
        if cached is None:
            return await self._look_up_installation(key)
        if cached[0] <= time.monotonic() and key not in self._refreshing:
            # Served while it is looked up again: the day's posts to a workspace must not queue for the
            # database behind their own claims. An uninstall seen here forgets the workspace at once.
            self._refreshing.add(key)
            self._spawn(self._refresh_installation(key))
        return cached[1]

    async def _look_up_installation(self, key: tuple[str, str]) -> AuthorizeResult | None:
        assert self._installations is not None
        installation = await self._installations.async_find_installation(enterprise_id=key[0] or None, team_id=key[1] or None)
        if installation is None or installation.bot_token is None:
            self._authorized.pop(key, None)
            return None
        return self._remember(key, installation)

    async def _refresh_installation(self, key: tuple[str, str]) -> None:
        try:
            await self._look_up_installation(key)
        finally:
            self._refreshing.discard(key)

    def _remember(self, key: tuple[str, str], installation: Installation) -> AuthorizeResult:
        result = AuthorizeResult(
            enterprise_id=installation.enterprise_id, team_id=installation.team_id, bot_user_id=installation.bot_user_id,
            bot_id=installation.bot_id, bot_token=installation.bot_token, bot_scopes=installation.bot_scopes)
        if len(self._authorized) >= MAX_CACHED:
            self._authorized.clear()
        self._authorized[key] = (time.monotonic() + AUTHORIZE_SECONDS, result)
        return result

    async def _remember_installations(self) -> None:
        """Load the workspaces' installations at start, so the first posts and events need no lookup."""
        assert self._installations is not None
        for installation in await self._installations.async_workspace_installations(MAX_CACHED):
            if installation.bot_token is not None:
                self._remember((installation.enterprise_id or "", installation.team_id or ""), installation)

    # ---- after the ack ---------------------------------------------------------------------------

    async def _run_command(self, command: dict[str, Any]) -> None:
        at = self._clock()
        is_admin = False
        team_id, user_id = str(command.get("team_id") or ""), str(command.get("user_id") or "")
        if command.get("command") == "/prep" and team_id and user_id:
            user = await self._user_info(team_id, user_id)
            is_admin = bool(user and (user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")))
            if user is None and _names_organizer_command(str(command.get("text") or "")) and user_id not in self._settings.organizers:
                # Refusing as "not an organizer" would be wrong for an admin whose lookup merely failed.
                event = translate.command_event(command, at)
                if event is not None:
                    await self._deliver(Reply(ADMIN_LOOKUP_FAILED), event.channel, event.user, None, command.get("response_url"))
                return
        event = translate.command_event(command, at, user_is_admin=is_admin)
        if event is None:
            logger.warning("ignoring a slash command without team, channel, user or trigger id")
            return
        await self._answer(event, event.channel, event.user, None, command.get("response_url"))

    async def _run_shortcut(self, shortcut: dict[str, Any]) -> None:
        event = translate.shortcut_event(shortcut, self._clock())
        if event is None:
            logger.warning("ignoring a shortcut without team, channel, user or trigger id")
            return
        await self._answer(event, event.channel, event.user, event.thread, shortcut.get("response_url"))

    async def _answer(self, event: Event, channel: ChannelRef, user: UserRef, thread: MessageRef | None, response_url: str | None) -> None:
        try:
            reply = await self._handle(event)
        except Exception:
            logger.exception("handling %s failed", type(event).__name__)
            reply = Reply(FAILED)
        if reply is not None:
            await self._deliver(reply, channel, user, thread, response_url)

    async def _deliver(self, reply: Reply, channel: ChannelRef, user: UserRef, thread: MessageRef | None, response_url: str | None) -> None:
        """Public replies go into the thread; private ones through the response URL, else as an ephemeral message."""
        if not reply.private and thread is not None:
            await self._chat.perform(PostReply(thread, reply.message))
            return
        if response_url:
            # The response URL works even in channels the bot is not a member of; chat.postEphemeral does not.
            try:
                webhook = AsyncWebhookClient(response_url, timeout=_whole_seconds(self._request_seconds), retry_handlers=_retry_handlers())
                response = await webhook.send(
                    text=translate.fallback_text(reply.message), blocks=translate.blocks(reply.message),
                    response_type="ephemeral")
                if response.status_code == 200:
                    return
                logger.warning("the response URL answered %s; sending an ephemeral message instead", response.status_code)
            except Exception:
                logger.warning("the response URL failed; sending an ephemeral message instead", exc_info=True)
        await self._chat.reply_privately(channel, user, reply.message, thread)

    async def _note_if_bot(self, user: UserRef) -> None:
        # Reaction events do not say whether the reactor is a bot; ask once, after the ack, and tell the core.
        key = (user.workspace.id, user.id)
        try:
            info = await self._user_info(user.workspace.id, user.id)
        finally:
            self._asking.discard(key)
        if info is None:
            return
        is_bot = bool(info.get("is_bot")) or user.id == "USLACKBOT"
        if len(self._bots) >= MAX_CACHED:
            self._bots.clear()
        self._bots[key] = is_bot
        if is_bot:
            await self._require_core().note_member(user, is_bot=True)

    async def _user_info(self, team_id: str, user_id: str) -> Mapping[str, Any] | None:
        key, now = (team_id, user_id), time.monotonic()
        cached = self._users.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            client = await self._client_for(team_id)
            response = await client.users_info(user=user_id)
        except (SlackApiError, LookupError) as error:
            logger.warning("users.info for %s failed: %s", user_id, _reason(error))
            return None
        except Exception as error:
            if not outcome_unknown(error):
                raise
            logger.warning("users.info for %s failed: %s", user_id, describe(error))
            return None
        info: Mapping[str, Any] = response.get("user") or {}
        if len(self._users) >= MAX_CACHED:
            self._users = {k: v for k, v in self._users.items() if v[0] > now}
        self._users[key] = (now + USER_INFO_SECONDS, info)
        return info

    async def _handle(self, event: Event) -> Reply | None:
        return await self._require_core().handle(event)

    def _require_core(self) -> PrepBot:
        if self._core is None:
            raise RuntimeError("the Slack adapter is not running")
        return self._core

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("Slack work after an acknowledgement failed", exc_info=error)

    # ---- Web API clients -------------------------------------------------------------------------

    def _new_client(self, token: str | None) -> AsyncWebClient:
        return AsyncWebClient(token=token, base_url=self._api_url, timeout=_whole_seconds(self._request_seconds),
                              retry_handlers=_retry_handlers(), session=self._http)

    async def _client_for(self, team_id: str) -> AsyncWebClient:
        if self._installations is None:
            return self._client
        authorized = await self._authorize(None, team_id)
        if authorized is None or authorized.bot_token is None:
            raise LookupError(f"prepbot is not installed in Slack workspace {team_id}")
        client = self._clients.get(authorized.bot_token)
        if client is None:
            if len(self._clients) >= MAX_CACHED:
                self._clients.clear()
            client = self._clients[authorized.bot_token] = self._new_client(authorized.bot_token)
        return client

    async def _check_token(self) -> AuthorizeResult:
        try:
            identity = await self._client.auth_test()
        except SlackApiError as error:
            raise StartupError(f"Slack refused SLACK_BOT_TOKEN ({_reason(error)}); check the token.") from None
        logger.info("Slack bot %s in workspace %s", identity.get("user_id"), identity.get("team_id"))
        return AuthorizeResult(
            enterprise_id=identity.get("enterprise_id"), team_id=identity.get("team_id"), team=identity.get("team"),
            url=identity.get("url"), bot_user_id=identity.get("user_id"), bot_id=identity.get("bot_id"),
            bot_token=self._client.token)

    async def _connect_socket(self, app: AsyncApp) -> AsyncSocketModeHandler:
        handler = _AcknowledgingSocketModeHandler(app, self._settings.slack_app_token, web_client=self._client,
                                                  fast_event=self._on_fast_event if self._fast else None)
        try:
            # Asked for here, once, so a bad app token stops the start with a clear message
            # instead of the client's endless reconnect loop.
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
        except SlackApiError as error:
            raise StartupError(f"Slack refused SLACK_APP_TOKEN ({_reason(error)}); it needs the connections:write scope.") from None
        await handler.connect_async()  # type: ignore[no-untyped-call]
        return handler


class _Authorize(AsyncAuthorize):
    """Bolt's authorize step answered from what the adapter already knows, without a Web API call."""

    def __init__(self, lookup: Callable[[str | None, str | None], Awaitable[AuthorizeResult | None]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._lookup = lookup

    async def __call__(
        self, *, context: AsyncBoltContext, enterprise_id: str | None, team_id: str | None, user_id: str | None,
        **_: Any,
    ) -> AuthorizeResult | None:
        return await self._lookup(enterprise_id, team_id)


class _AcknowledgingSocketModeHandler(AsyncSocketModeHandler):
    """Acknowledges every envelope that bolt answered, whatever the status, unless a listener failed.

    Bolt sends no ack for a non-200 answer, and Slack then redelivers the envelope; only a failed
    listener (500) should get that retry.
    """

    def __init__(self, app: AsyncApp, app_token: str | None, *, web_client: AsyncWebClient,
                 fast_event: Callable[[dict[str, Any]], Awaitable[None]] | None) -> None:
        super().__init__(app, app_token, web_client=web_client)
        self._fast_event = fast_event

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        start = time.time()
        if self._fast_event is not None and req.type == "events_api" and translate.is_fast_event(req.payload):
            # The fast path, as over HTTP; the connection itself is authenticated, so there is no signature.
            try:
                await self._fast_event(req.payload)
            except Exception:
                logger.exception("handling a Slack %s event failed", req.payload["event"].get("type"))
                return  # no ack: Slack redelivers, and the inbox makes that safe
            await send_async_response(client, req, BoltResponse(status=200, body=""), start)
            return
        response: BoltResponse = await run_async_bolt_app(self.app, req)
        if response.status < 500 and response.status != 200:
            logger.debug("acknowledging a %s envelope that bolt answered with %s", req.type, response.status)
            response = BoltResponse(status=200, body="")
        await send_async_response(client, req, response, start)


def _settle_heap() -> None:
    # Everything built at start-up (bolt, SQLAlchemy's mappers, the bank) lives as long as the
    # process; frozen, the collector stops walking it on every full collection. Fewer, larger
    # young-generation collections suit a process that makes a burst of short-lived dicts per event.
    # Once per process: a second adapter (or a test run starting many) must not freeze later garbage.
    if gc.get_freeze_count():
        return
    gc.collect()
    gc.freeze()
    first, second, third = gc.get_threshold()
    gc.set_threshold(max(first, GC_YOUNG_THRESHOLD), second, third)


def _signed(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    try:
        return verifier.is_valid(body, headers.get("X-Slack-Request-Timestamp"), headers.get("X-Slack-Signature"))
    except ValueError:  # a timestamp that is not a number
        return False


def _is_own_event(body: Mapping[str, Any], identity: AuthorizeResult) -> bool:
    """The bot's own messages and reactions, which bolt's IgnoringSelfEvents would drop; the same test here."""
    user, bot_id = extract_user_id(dict(body)), (body.get("event") or {}).get("bot_id")
    return (user is not None and user == identity.bot_user_id) or (bot_id is not None and bot_id == identity.bot_id)


def _names_organizer_command(text: str) -> bool:
    words = text.split()
    return bool(words) and words[0].lower() in ORGANIZER_COMMANDS


def _retry_handlers() -> list[Any]:
    # Writes are retried blindly only after a 429: Slack did not act on it. A connection error, a
    # timeout or a 5xx after a chat.postMessage may have posted already, and a blind resend would
    # post twice; the poster reconciles a prompt by its marker, and `SlackChat` looks for a reply's
    # marker before sending it again. Reads are asked again after those too.
    return [AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES), ReadRetryHandler()]


def _whole_seconds(seconds: float) -> int:
    # slack_sdk takes whole seconds for the sessions it opens itself (a tick at shutdown, response URLs).
    return max(1, round(seconds))


def _reason(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or "unknown error")
    return str(error)


def _quiet_token_logs() -> None:
    # At DEBUG, slack_sdk logs response bodies (oauth.v2.access's holds the new bot token) and
    # aiosqlite logs statement parameters (an installation's token among them).
    for name in ("slack_sdk.web", "slack_sdk.oauth", "aiosqlite"):
        named = logging.getLogger(name)
        if named.getEffectiveLevel() < logging.INFO:
            named.setLevel(logging.INFO)
    redact(TOKEN_BEARING_LOGGERS, SLACK_TOKEN)


class _WithoutTokenNotice(logging.Filter):
    """Drops bolt's warning that SLACK_BOT_TOKEN is unused: bolt reads it from the environment, and our client holds it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("As you gave `client` as well")


def _bolt_logger() -> logging.Logger:
    bolt = logging.getLogger("adapters.slack.bolt")
    if not any(isinstance(f, _WithoutTokenNotice) for f in bolt.filters):
        bolt.addFilter(_WithoutTokenNotice())
    return bolt


def _bound_port(runner: web.AppRunner) -> int | None:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return None
