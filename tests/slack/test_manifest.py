"""`prepbot slack manifest`: one paste at api.slack.com/apps creates an app with everything prepbot listens to."""

from __future__ import annotations

import json

import pytest

from adapters.slack.manifest import BOT_EVENTS, BOT_SCOPES
from adapters.slack.translate import DRILL_CALLBACK_ID
from bot.cli import main


def manifest(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["slack", "manifest", *args]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_the_http_manifest_points_every_request_url_at_slack_events(capsys: pytest.CaptureFixture[str]) -> None:
    app = manifest(capsys, "--url", "https://prep.example.org/")
    settings, features = app["settings"], app["features"]
    assert settings["socket_mode_enabled"] is False  # type: ignore[index]
    assert settings["event_subscriptions"]["request_url"] == "https://prep.example.org/slack/events"  # type: ignore[index]
    assert settings["interactivity"] == {"is_enabled": True, "request_url": "https://prep.example.org/slack/events"}  # type: ignore[index]
    assert {c["command"]: c["url"] for c in features["slash_commands"]} == {  # type: ignore[index]
        "/prep": "https://prep.example.org/slack/events", "/drill": "https://prep.example.org/slack/events"}
    assert app["oauth_config"]["redirect_urls"] == ["https://prep.example.org/slack/oauth_redirect"]  # type: ignore[index]


def test_the_socket_mode_manifest_needs_no_url(capsys: pytest.CaptureFixture[str]) -> None:
    app = manifest(capsys, "--socket-mode", "--name", "Interview Prep")
    assert app["settings"]["socket_mode_enabled"] is True  # type: ignore[index]
    assert "request_url" not in app["settings"]["event_subscriptions"]  # type: ignore[index]
    assert all("url" not in c for c in app["features"]["slash_commands"])  # type: ignore[index]
    assert app["display_information"]["name"] == app["features"]["bot_user"]["display_name"] == "Interview Prep"  # type: ignore[index]


def test_the_manifest_asks_for_what_the_adapter_uses(capsys: pytest.CaptureFixture[str]) -> None:
    app = manifest(capsys, "--socket-mode")
    assert set(app["oauth_config"]["scopes"]["bot"]) == set(BOT_SCOPES) >= {  # type: ignore[index]
        "chat:write", "commands", "reactions:read", "channels:history", "groups:history", "app_mentions:read", "users:read"}
    assert set(app["settings"]["event_subscriptions"]["bot_events"]) == set(BOT_EVENTS) == {  # type: ignore[index]
        "message.channels", "message.groups", "reaction_added", "reaction_removed", "app_mention",
        "app_uninstalled", "tokens_revoked"}
    [shortcut] = app["features"]["shortcuts"]  # type: ignore[index]
    assert shortcut == {"name": "Drill me on this", "type": "message", "callback_id": DRILL_CALLBACK_ID,
                        "description": shortcut["description"]}


def test_the_manifest_follows_slack_app_token_when_no_mode_is_given(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-A-1-abc")
    assert manifest(capsys)["settings"]["socket_mode_enabled"] is True  # type: ignore[index]


def test_without_a_mode_or_a_url_the_manifest_command_says_what_to_pass(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    assert main(["slack", "manifest"]) == 2
    error = capsys.readouterr().err
    assert "--url https://your.host" in error and "--socket-mode" in error


@pytest.mark.parametrize("url", ["prep.example.org", "http://prep.example.org"])
def test_a_url_that_is_not_https_is_refused(capsys: pytest.CaptureFixture[str], url: str) -> None:
    assert main(["slack", "manifest", "--url", url]) == 2
    assert "must be a full https:// URL such as https://prep.example.org" in capsys.readouterr().err
