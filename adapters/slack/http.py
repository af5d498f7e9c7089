"""The aiohttp server in front of bolt: `POST /slack/events`, `GET /healthz`, and the OAuth install pages."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from adapters.slack.manifest import EVENTS_PATH

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # Slack's payloads are far smaller; anything bigger is not from Slack

FastPath = Callable[[bytes, Mapping[str, str]], Awaitable[int | None]]
"""Serves a request body itself and returns the HTTP status, or returns None to leave it to bolt."""


def build_web_app(app: AsyncApp, ready: asyncio.Event, *, serve_events: bool, fast_path: FastPath | None = None) -> web.Application:
    """Routes for bolt's `app`; `/healthz` answers 200 once `ready` is set, 503 before.

    Events requests are offered to `fast_path` first (see `SlackAdapter._fast_path`); what it declines goes to bolt.
    """
    web_app = web.Application(client_max_size=MAX_BODY_BYTES)

    async def events(request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=request.content_length)
        body = await request.read()  # a longer body raises 413 here; aiohttp keeps it for bolt's read
        if fast_path is not None:
            status = await fast_path(body, request.headers)
            if status is not None:
                return web.Response(status=status)
        if not _bolt_can_read(body, request.headers.get("Content-Type")):
            # bolt parses the body before it checks the signature, and fails with a 500 on one it cannot read.
            return web.Response(status=400, text="not a Slack request body")
        bolt_response = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(request: web.Request) -> web.StreamResponse:
        if ready.is_set():
            return web.json_response({"ok": True})
        return web.json_response({"ok": False, "status": "starting"}, status=503)

    web_app.router.add_get("/healthz", healthz)
    if serve_events:
        web_app.router.add_post(EVENTS_PATH, events)
    oauth_flow = app.oauth_flow
    if oauth_flow is not None:

        async def install(request: web.Request) -> web.StreamResponse:
            return await to_aiohttp_response(await oauth_flow.handle_installation(await to_bolt_request(request)))

        async def redirect(request: web.Request) -> web.StreamResponse:
            return await to_aiohttp_response(await oauth_flow.handle_callback(await to_bolt_request(request)))

        web_app.router.add_get(oauth_flow.install_path, install)
        web_app.router.add_get(oauth_flow.redirect_uri_path, redirect)
    return web_app


def _bolt_can_read(body: bytes, content_type: str | None) -> bool:
    """Whether bolt's body parsing (JSON, or a form with an optional JSON `payload`) yields the object it expects."""
    try:
        text = body.decode()
        if content_type == "application/json" or text.startswith("{"):
            parsed = json.loads(text)
        elif "payload" in text:
            payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
            parsed = json.loads(payload) if payload is not None else {}
        else:
            return True
    except ValueError:  # not UTF-8, not JSON
        return False
    if not isinstance(parsed, dict):
        return False
    # bolt reads an event callback's `event` as an object before any listener runs.
    return parsed.get("type") != "event_callback" or isinstance(parsed.get("event"), dict)
