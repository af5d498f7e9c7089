"""The Slack app manifest: paste it at api.slack.com/apps ("From an app manifest") to create prepbot's app."""

from __future__ import annotations

from typing import Any

from adapters.slack.translate import DRILL_CALLBACK_ID

EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"

# chat:write posts; *:history brings thread replies and lets a lost post be found again; users:read
# tells organizers (is_admin / is_owner) and bots apart; reactions:read brings the ratings.
BOT_SCOPES = (
    "app_mentions:read", "channels:history", "chat:write", "commands", "groups:history",
    "reactions:read", "users:read",
)
BOT_EVENTS = (
    "message.channels", "message.groups", "reaction_added", "reaction_removed", "app_mention",
    "app_uninstalled", "tokens_revoked",  # so an OAuth host forgets a workspace that removed the app
)


def events_url(url: str) -> str:
    """`https://prep.example.org` or `…/slack/events` -> the events endpoint."""
    url = url.rstrip("/")
    return url if url.endswith(EVENTS_PATH) else url + EVENTS_PATH


def build_manifest(socket_mode: bool, request_url: str | None = None, *, name: str = "prepbot") -> dict[str, Any]:
    """The app manifest for Socket Mode, or for HTTP mode with the public URL of prepbot's `/slack/events`."""
    if not socket_mode and not request_url:
        raise ValueError("HTTP mode needs the public URL Slack sends requests to (e.g. https://prep.example.org)")
    endpoint = None if socket_mode or request_url is None else events_url(request_url)

    def with_url(entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, "url": endpoint} if endpoint else entry

    oauth_config: dict[str, Any] = {"scopes": {"bot": list(BOT_SCOPES)}}
    if endpoint:
        oauth_config["redirect_urls"] = [endpoint.removesuffix(EVENTS_PATH) + REDIRECT_PATH]
    event_subscriptions: dict[str, Any] = {"bot_events": list(BOT_EVENTS)}
    interactivity: dict[str, Any] = {"is_enabled": True}
    if endpoint:
        event_subscriptions["request_url"] = endpoint
        interactivity["request_url"] = endpoint
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": "Daily interview practice: a question a day, answers in the thread, ratings and drills.",
            "background_color": "#2c2d30",
        },
        "features": {
            "bot_user": {"display_name": name, "always_online": True},
            "slash_commands": [
                with_url({
                    "command": "/prep",
                    "description": "Practice schedule, stats and leaderboards",
                    "usage_hint": "help | stats | leaderboard [week|month|all] | setup <HH:MM> <Area/City> [days] [track]",
                    "should_escape": False,
                }),
                with_url({
                    "command": "/drill",
                    "description": "A follow-up probe on the latest question, or a practice question",
                    "usage_hint": "[category or question id]",
                    "should_escape": False,
                }),
            ],
            "shortcuts": [{
                "name": "Drill me on this",
                "type": "message",
                "callback_id": DRILL_CALLBACK_ID,
                "description": "The next drill-down question on this thread's question",
            }],
        },
        "oauth_config": oauth_config,
        "settings": {
            "event_subscriptions": event_subscriptions,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }
