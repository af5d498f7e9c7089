"""Fixtures for the reliability tests that run `prepbot run` as OS processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack
from tests.reliability.platforms import DiscordPlatform, Platform, SlackPlatform


@pytest.fixture(params=["slack", "discord"])
async def platform(request: pytest.FixtureRequest) -> AsyncIterator[Platform]:
    """A fake Slack, then a fake Discord: every process test runs on both."""
    if request.param == "slack":
        async with FakeSlack() as slack:
            yield SlackPlatform(slack)
    else:
        async with FakeDiscord() as discord:
            yield DiscordPlatform(discord)
