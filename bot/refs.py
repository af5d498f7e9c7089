"""Plain references to platform things: workspaces, channels, users and messages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WorkspaceRef:
    """A Slack team, a Discord guild, or the console: `platform` plus the platform's id."""

    platform: str
    id: str


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """A channel inside a workspace."""

    workspace: WorkspaceRef
    id: str


@dataclass(frozen=True, slots=True)
class UserRef:
    """A member of a workspace; `name` is a display hint and takes no part in equality."""

    workspace: WorkspaceRef
    id: str
    name: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A message in a channel: a Slack `ts` or a Discord message id."""

    channel: ChannelRef
    id: str
