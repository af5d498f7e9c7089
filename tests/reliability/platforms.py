"""The fake Slack and the fake Discord behind one small interface, for the tests that run `prepbot run` as OS processes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from adapters.slack.translate import prompt_marker
from tests.fakes.discord import FakeDiscord
from tests.fakes.holds import Held, Holds
from tests.fakes.slack import FakeSlack
from tests.reliability.support import process_environment
from tests.slack.payloads import SIGNING_SECRET


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt as the platform holds it: its message id, the marker it carries, whether members can answer in its thread."""

    message_id: str
    marker: str | None
    thread_open: bool = True  # a Slack thread needs no opening; on Discord prepbot starts one on the message


class Platform(Protocol):
    name: str
    holds: Holds
    post_key: str  # the `Holds` key of a post to a channel

    @property
    def workspace(self) -> str: ...

    def new_channels(self, count: int) -> list[str]: ...

    def environment(self, database_url: str) -> dict[str, str]: ...

    def channel_of(self, held: Held) -> str: ...

    def prompts(self, channel: str) -> list[Prompt]:
        """The bot's top-level posts in `channel`."""

    def sends(self, channel: str) -> int:
        """Posts to `channel` the platform has received (Slack) or served (Discord)."""

    ready_line: str  # what the process logs once it serves the platform


class SlackPlatform:
    name = "slack"
    post_key = "chat.postMessage"
    ready_line = "Slack adapter ready"

    def __init__(self, fake: FakeSlack) -> None:
        self.fake, self.holds = fake, fake.holds
        self._channels = 0

    @property
    def workspace(self) -> str:
        return self.fake.team_id

    def new_channels(self, count: int) -> list[str]:
        self._channels += count
        return [f"C{n:05d}" for n in range(self._channels - count, self._channels)]

    def environment(self, database_url: str) -> dict[str, str]:
        return process_environment(database_url, SLACK_BOT_TOKEN=self.fake.bot_token, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                                   SLACK_API_URL=self.fake.api_url, HOST="127.0.0.1")

    def channel_of(self, held: Held) -> str:
        return str(held.args["channel"])

    def prompts(self, channel: str) -> list[Prompt]:
        return [Prompt(m["ts"], prompt_marker(m)) for m in self.fake.posts(channel, top_level=True)]

    def sends(self, channel: str) -> int:
        return sum(1 for call in self.fake.calls_to("chat.postMessage") if call.args.get("channel") == channel)



class DiscordPlatform:
    name = "discord"
    post_key = r"POST /channels/\d+/messages"
    ready_line = "connected to Discord as"

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake, self.holds = fake, fake.holds

    @property
    def workspace(self) -> str:
        return str(self.fake.guild_id)

    def new_channels(self, count: int) -> list[str]:
        return [str(channel) for channel in self.fake.add_channels(count)]

    def environment(self, database_url: str) -> dict[str, str]:
        return process_environment(database_url, DISCORD_TOKEN=self.fake.token, DISCORD_API_URL=self.fake.api_url,
                                   DISCORD_GATEWAY_URL=self.fake.gateway_url)

    def channel_of(self, held: Held) -> str:
        return held.key.split("/")[2]

    def prompts(self, channel: str) -> list[Prompt]:
        # The fake keeps the nonce on the message; prepbot's nonce is the marker itself.
        return [Prompt(m["id"], m.get("nonce"), "thread" in m) for m in self.fake.bot_posts(int(channel))]

    def sends(self, channel: str) -> int:
        return len(self.fake.calls_to("POST", rf"/channels/{channel}/messages"))
