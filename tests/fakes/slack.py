"""A fake Slack on 127.0.0.1: the Web API methods prepbot calls, response URLs, OAuth and a Socket Mode websocket.

It answers the way Slack does (`{"ok": false, "error": ...}` with HTTP 200 for API errors, 429
with `Retry-After` when rate limited), records every call, and keeps the messages it was sent
so `conversations.history` can be asked about them later, metadata included. `holds` (see
`tests.fakes.holds`) stops a call, keyed by its method, before it is carried out.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.faults import RATE_LIMITED, TIMEOUT, Fault, RandomFaults
from tests.fakes.holds import Holds, Verdict


@dataclass(frozen=True, slots=True)
class Call:
    """One Web API call as the fake received it."""

    method: str
    args: dict[str, Any]
    token: str | None
    at: float = field(compare=False)
    fault: Fault | None = field(default=None, compare=False)  # the random fault this call was answered with


@dataclass(slots=True)
class Workspace:
    team_id: str
    bot_token: str
    bot_user_id: str
    bot_id: str
    enterprise_id: str | None = None


@dataclass(slots=True)
class _Fault:
    kind: str  # "ratelimit" | "drop" | "hang" | "error"
    remaining: int
    retry_after: int = 1
    error: str = ""


async def wait_until(condition: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `condition` until it is truthy; fail after `timeout` seconds instead of hanging."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


RESPONSE_URL = "response_url"  # the method name calls to response URLs are recorded and faulted under
START_UP_METHODS = frozenset({"auth.test", "apps.connections.open", "oauth.v2.access"})


def sign(secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 request signature for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


class FakeSlack:
    """A fake of Slack's Web API and Socket Mode for one or more workspaces.

    `start()` binds 127.0.0.1 on a free port; `api_url` is what `SLACK_API_URL` should be.
    """

    def __init__(
        self, *, team_id: str = "T0001", bot_token: str = "xoxb-fake-token", bot_user_id: str = "UPREPBOT",
        bot_id: str = "BPREPBOT", app_token: str = "xapp-fake-token", app_id: str = "APREPBOT",
    ) -> None:
        self.workspaces: dict[str, Workspace] = {bot_token: Workspace(team_id, bot_token, bot_user_id, bot_id)}
        self.app_token = app_token
        self.app_id = app_id
        self.users: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.response_calls: list[Call] = []  # every call to a response URL, answered or not
        self.acks: dict[str, dict[str, Any]] = {}
        self.oauth_codes: dict[str, Workspace] = {}
        self.client_id = "1111.2222"
        self.client_secret = "fake-client-secret"
        self.sockets: list[web.WebSocketResponse] = []
        self.connections = 0
        self._faults: dict[str, list[_Fault]] = {}
        self.holds = Holds()  # `holds.hold("chat.postMessage")`: stop a call before it is carried out
        self.random_faults: RandomFaults | None = None
        self._ts = itertools.count(1)
        self._envelopes = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_get("/link", self._socket)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        self.holds.stop()
        self._release.set()
        if self.random_faults is not None:
            self.random_faults.stop()
        for socket in list(self.sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, key: str = "r") -> str:
        return f"{self.base_url}/respond/{key}"

    # ---- set-up ----------------------------------------------------------------------------------

    @property
    def team_id(self) -> str:
        return next(iter(self.workspaces.values())).team_id

    @property
    def bot_token(self) -> str:
        return next(iter(self.workspaces.values())).bot_token

    @property
    def bot_user_id(self) -> str:
        return next(iter(self.workspaces.values())).bot_user_id

    def add_user(self, user_id: str, *, is_admin: bool = False, is_owner: bool = False, is_bot: bool = False,
                 name: str | None = None) -> None:
        self.users[user_id] = {
            "id": user_id, "team_id": self.team_id, "name": name or user_id.lower(), "deleted": False,
            "real_name": name or user_id, "is_admin": is_admin, "is_owner": is_owner, "is_primary_owner": False,
            "is_bot": is_bot, "is_app_user": False, "tz": "Europe/Berlin",
        }

    def add_install_code(self, code: str, team_id: str) -> Workspace:
        """An OAuth `code` that `oauth.v2.access` exchanges for a new workspace's bot token."""
        workspace = Workspace(team_id, f"xoxb-{team_id}-token", f"UBOT{team_id}", f"BBOT{team_id}")
        self.oauth_codes[code] = workspace
        return workspace

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 and `Retry-After`, doing nothing."""
        self._faults.setdefault(method, []).append(_Fault("ratelimit", times, retry_after))

    def drop_connection(self, method: str, times: int = 1) -> None:
        """Carry out the next calls of `method`, then close the connection without answering."""
        self._faults.setdefault(method, []).append(_Fault("drop", times))

    def hang(self, method: str, times: int = 1) -> None:
        """Carry out the next calls of `method`, then never answer (until `stop`)."""
        self._faults.setdefault(method, []).append(_Fault("hang", times))

    def release(self) -> None:
        """Let every hung call answer now; calls after this do not hang."""
        self._release.set()

    def fail_randomly(self, rate: float, seed: int, methods: frozenset[str] | None = None, *, late_seconds: float = 60.0) -> RandomFaults:
        """From now on answer a `rate` share of calls with a random fault (`tests.fakes.faults`).

        The calls are those of `methods` (`RESPONSE_URL` names response URLs), or else every call but start-up's.
        """
        self.random_faults = RandomFaults(
            rate, seed, (lambda name: name in methods) if methods is not None else (lambda name: name not in START_UP_METHODS),
            late_seconds)
        return self.random_faults

    def fail(self, method: str, error: str, times: int = 1) -> None:
        """Answer the next calls of `method` with `{"ok": false, "error": error}`."""
        self._faults.setdefault(method, []).append(_Fault("error", times, error=error))

    # ---- what happened ---------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def posts(self, channel: str | None = None, *, thread: str | None = None, top_level: bool | None = None) -> list[dict[str, Any]]:
        """Messages the bot posted (chat.postMessage), oldest first."""
        found = [m for ch, messages in self.messages.items() if channel in (None, ch) for m in messages if m.get("bot_id")]
        if thread is not None:
            found = [m for m in found if m.get("thread_ts") == thread]
        if top_level is not None:
            found = [m for m in found if ("thread_ts" not in m) == top_level]
        return found

    # ---- Web API ---------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args = await _arguments(request)
        token = _bearer(request) or args.pop("token", None)
        random_fault = self.random_faults.draw(method) if self.random_faults is not None else None
        self.calls.append(Call(method, args, token, time.monotonic(), random_fault))
        if random_fault is not None:
            return await self._faulty(random_fault, lambda: self._answer(method, args, token))
        verdict = await self.holds.gate(method, args, lambda: request.transport is None or request.transport.is_closing())
        if verdict is Verdict.DROP:
            return web.Response(status=503)  # never carried out; its caller is gone
        fault = self._take_fault(method)
        if fault is not None and fault.kind == "ratelimit":
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(fault.retry_after)})
        if fault is not None and fault.kind == "error":
            return web.json_response({"ok": False, "error": fault.error})
        answer = self._answer(method, args, token)
        if verdict is Verdict.LAND_UNANSWERED:
            await self.holds.unanswered()
        if fault is not None and fault.kind == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if fault is not None and fault.kind == "hang":
            await self._release.wait()
        return web.json_response(answer)

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method) or []
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.pop(0)
        return fault

    def _answer(self, method: str, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        if method == "oauth.v2.access":
            return self._oauth_access(args)
        if method == "apps.connections.open":
            if token != self.app_token:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link?ticket=t{next(self._envelopes)}"}
        workspace = self.workspaces.get(token or "")
        if workspace is None:
            return {"ok": False, "error": "not_authed" if not token else "invalid_auth"}
        handler = {
            "auth.test": self._auth_test, "chat.postMessage": self._post_message, "chat.postEphemeral": self._post_ephemeral,
            "users.info": self._users_info, "conversations.history": self._history, "conversations.replies": self._replies,
        }.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        return handler(workspace, args)

    def _auth_test(self, workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://fake.slack.test/", "team": "Fake Team", "user": "prepbot",
                "team_id": workspace.team_id, "user_id": workspace.bot_user_id, "bot_id": workspace.bot_id,
                "is_enterprise_install": False}

    def _post_message(self, workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        message: dict[str, Any] = {
            "type": "message", "ts": ts, "user": workspace.bot_user_id, "bot_id": workspace.bot_id,
            "team": workspace.team_id, "text": args.get("text", ""), "blocks": _json(args.get("blocks")) or [],
        }
        if args.get("thread_ts"):
            message["thread_ts"] = str(args["thread_ts"])
        metadata = _json(args.get("metadata"))
        if metadata:
            message["metadata"] = metadata
        self.messages.setdefault(str(channel), []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": {k: v for k, v in message.items() if k != "metadata"}}

    def _post_ephemeral(self, workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "channel_not_found" if not args.get("channel") else "user_not_in_channel"}
        self.ephemerals.append(dict(args))
        return {"ok": True, "message_ts": self._next_ts()}

    def _users_info(self, workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _history(self, workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or "inf")
        inclusive = _truthy(args.get("inclusive"))

        def within(ts: float) -> bool:
            return (oldest <= ts <= latest) if inclusive else (oldest < ts < latest)

        # Only top-level messages (and broadcasts) are in a channel's history; replies are in threads.
        top = [m for m in reversed(self.messages.get(channel, []))
               if within(float(m["ts"])) and ("thread_ts" not in m or m.get("subtype") == "thread_broadcast")]
        return _page(top, args)

    def _replies(self, workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
        channel, thread = str(args.get("channel") or ""), str(args.get("ts") or "")
        messages = self.messages.get(channel, [])
        if not channel or not any(m["ts"] == thread for m in messages):
            return {"ok": False, "error": "thread_not_found"}
        oldest = float(args.get("oldest") or 0)
        # The parent first, then its replies oldest first.
        return _page([m for m in messages if m["ts"] == thread or (m.get("thread_ts") == thread and float(m["ts"]) >= oldest)], args)

    def _oauth_access(self, args: dict[str, Any]) -> dict[str, Any]:
        workspace = self.oauth_codes.pop(str(args.get("code")), None)
        if workspace is None:
            return {"ok": False, "error": "invalid_code"}
        self.workspaces[workspace.bot_token] = workspace
        return {
            "ok": True, "app_id": self.app_id, "authed_user": {"id": "UINSTALLER"}, "scope": "chat:write,commands",
            "token_type": "bot", "access_token": workspace.bot_token, "bot_user_id": workspace.bot_user_id,
            "team": {"id": workspace.team_id, "name": f"Team {workspace.team_id}"}, "enterprise": None,
            "is_enterprise_install": False,
        }

    def add_message(self, channel: str, message: dict[str, Any]) -> None:
        """A member's message, as if posted in Slack, so history and threads have it."""
        self.messages.setdefault(channel, []).append(message)

    def _next_ts(self) -> str:
        # Real time, like Slack's own ts, plus a counter so two posts in one microsecond stay distinct.
        return f"{time.time():.0f}.{next(self._ts):06d}"

    # ---- response URLs ---------------------------------------------------------------------------

    async def _respond(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        key = request.match_info["key"]
        random_fault = self.random_faults.draw(RESPONSE_URL) if self.random_faults is not None else None
        self.response_calls.append(Call(RESPONSE_URL, {"key": key, **body}, None, time.monotonic(), random_fault))
        if random_fault is not None:
            return await self._faulty(random_fault, lambda: self._responded(key, body))
        return web.Response(text=self._responded(key, body))

    def _responded(self, key: str, body: dict[str, Any]) -> str:
        self.responses.append({"key": key, **body})
        return "ok"

    async def _faulty(self, fault: Fault, work: Callable[[], dict[str, Any] | str]) -> web.StreamResponse:
        """Answer a call the way `fault` says; the work is done first if the fault comes after it."""
        assert self.random_faults is not None
        if fault.kind == RATE_LIMITED:
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"})

        async def do() -> dict[str, Any] | str:
            return work()

        done = await self.random_faults.carry_out(fault, do)
        if fault.kind == TIMEOUT:  # the client waited it out after all
            return web.json_response(done) if isinstance(done, dict) else web.Response(text=done or "")
        if fault.status == 500:
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        return web.Response(status=fault.status, text="<html><body>Service Unavailable</body></html>", content_type="text/html")

    # ---- Socket Mode -----------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self.sockets.append(socket)
        self.connections += 1
        await socket.send_json({"type": "hello", "num_connections": 1, "debug_info": {"host": "fake-slack"},
                                "connection_info": {"app_id": self.app_id}})
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    data = json.loads(message.data)
                    if "envelope_id" in data:
                        self.acks[str(data["envelope_id"])] = data
        finally:
            if socket in self.sockets:
                self.sockets.remove(socket)
        return socket

    async def send_envelope(self, kind: str, payload: Mapping[str, Any], *, retry_attempt: int = 0,
                            retry_reason: str = "", accepts_response_payload: bool = False) -> str:
        """Send an envelope (`events_api`, `slash_commands`, `interactive`) on the newest connection."""
        await wait_until(lambda: self.sockets, what="a Socket Mode connection")
        envelope_id = f"env-{next(self._envelopes)}"
        await self.sockets[-1].send_json({
            "envelope_id": envelope_id, "type": kind, "payload": dict(payload),
            "accepts_response_payload": accepts_response_payload, "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        })
        return envelope_id

    async def ack_for(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        await wait_until(lambda: envelope_id in self.acks, timeout, f"the ack of {envelope_id}")
        return self.acks[envelope_id]

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the client to reconnect, as Slack does every few hours."""
        await self.sockets[-1].send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}})


async def _arguments(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            args.update(await request.json())
        else:
            args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    return args


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() or None if header.startswith("Bearer ") else None


def _json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        return json.loads(value)
    return value


def _page(found: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
    """One page of `found` by the call's `cursor` and `limit`, without metadata unless `include_all_metadata`."""
    limit, start = int(args.get("limit") or 100), int(args.get("cursor") or 0)
    page = found[start:start + limit]
    if not _truthy(args.get("include_all_metadata")):
        page = [{k: v for k, v in m.items() if k != "metadata"} for m in page]
    more = start + limit < len(found)
    return {"ok": True, "messages": page, "has_more": more, "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")

