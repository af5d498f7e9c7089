"""The application commands: `/prep` for members, `/prep-admin` for organizers, and `/drill`.

Discord applies `default_member_permissions` to a top-level command only, never to one
subcommand, so organizer subcommands live in their own group that defaults to Manage Server.
The core checks the right again on every call (server admins can change who sees a command).
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from adapters.discord.translate import ORGANIZER_GROUP

if TYPE_CHECKING:
    from adapters.discord.client import PrepClientMixin

MAX_CHOICES = 25
PERIODS = ("week", "month", "all")
DAYS = ("mon-fri", "daily", "mon,wed,fri", "sat,sun")


@functools.cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def timezone_choices(current: str) -> list[app_commands.Choice[str]]:
    """Up to 25 IANA zones matching what the member has typed so far, prefix matches first."""
    wanted = current.strip().lower().replace(" ", "_")
    zones = _zones()
    prefix = [z for z in zones if z.lower().startswith(wanted)]
    inside = [z for z in zones if wanted in z.lower() and z not in prefix]
    return [app_commands.Choice(name=z, value=z) for z in (prefix + inside)[:MAX_CHOICES]]


def build_tree(client: PrepClientMixin) -> app_commands.CommandTree[discord.Client]:
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)  # type: ignore[arg-type]
    prep = app_commands.Group(name="prep", description="Daily interview practice in this channel", guild_only=True)
    admin = app_commands.Group(
        name=ORGANIZER_GROUP, description="Organizer commands for prepbot's practice schedule", guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True))

    @prep.command(name="help", description="What prepbot does and its commands")
    async def help_(interaction: discord.Interaction) -> None:
        await client.command(interaction, "help")

    @prep.command(name="stats", description="Your answers, ratings and streak")
    async def stats(interaction: discord.Interaction) -> None:
        await client.command(interaction, "stats")

    @prep.command(name="leaderboard", description="Who gives the strongest answers")
    @app_commands.describe(period="The period to rank (default: week)")
    @app_commands.choices(period=[app_commands.Choice(name=p, value=p) for p in PERIODS])
    async def leaderboard(interaction: discord.Interaction, period: app_commands.Choice[str] | None = None) -> None:
        await client.command(interaction, "leaderboard", period.value if period else None)

    @prep.command(name="rubric", description="What a strong answer to the latest question covers")
    async def rubric(interaction: discord.Interaction) -> None:
        await client.command(interaction, "rubric")

    @prep.command(name="schedule", description="When the next question goes up")
    async def schedule(interaction: discord.Interaction) -> None:
        await client.command(interaction, "schedule")

    @admin.command(name="setup", description="Post a question here every scheduled day")
    @app_commands.describe(time="Local time, HH:MM (24 h)", timezone="IANA time zone, e.g. Europe/Berlin",
                           days="mon-fri (default), daily, or a list such as mon,wed,fri", track="Question track")
    async def setup(interaction: discord.Interaction, time: str, timezone: str, days: str | None = None,
                    track: str | None = None) -> None:
        await client.command(interaction, "setup", time, timezone, days or ("mon-fri" if track else None), track)

    @setup.autocomplete("timezone")
    async def setup_timezone(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return timezone_choices(current)

    @setup.autocomplete("days")
    async def setup_days(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=d, value=d) for d in DAYS if d.startswith(current.strip().lower())]

    @admin.command(name="pause", description="Stop posting questions until resumed")
    async def pause(interaction: discord.Interaction) -> None:
        await client.command(interaction, "pause")

    @admin.command(name="resume", description="Restart the schedule")
    async def resume(interaction: discord.Interaction) -> None:
        await client.command(interaction, "resume")

    @admin.command(name="skip", description="Skip the next scheduled question")
    async def skip(interaction: discord.Interaction) -> None:
        await client.command(interaction, "skip")

    @admin.command(name="now", description="Post today's question now")
    async def now(interaction: discord.Interaction) -> None:
        await client.command(interaction, "now")

    @admin.command(name="track", description="Switch this channel's question track")
    @app_commands.describe(name="The track's id")
    async def track_(interaction: discord.Interaction, name: str) -> None:
        await client.command(interaction, "track", name)

    @app_commands.command(name="drill", description="A follow-up probe: in a question's thread, your next drill-down")
    @app_commands.describe(topic="A category or question id (outside a question's thread)")
    @app_commands.guild_only()
    async def drill(interaction: discord.Interaction, topic: str | None = None) -> None:
        await client.drill(interaction, topic)

    tree.add_command(prep)
    tree.add_command(admin)
    tree.add_command(drill)
    return tree
