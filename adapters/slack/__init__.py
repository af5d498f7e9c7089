"""Slack: bolt's AsyncApp over HTTP or Socket Mode, translating Slack payloads to the core's events."""

from adapters.slack.adapter import SlackAdapter
from adapters.slack.manifest import build_manifest

__all__ = ["SlackAdapter", "build_manifest"]
