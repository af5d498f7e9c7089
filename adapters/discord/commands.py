"""The application commands: the `/prep` group with typed options, and `/drill`.

Every command keeps the name it has on every platform (`/prep setup`, `/prep leaderboard`, …).
Discord applies `default_member_permissions` to top-level commands only, never to a subcommand,
so the organizer subcommands cannot be hidden from members inside `/prep`; the Manage Server
right is checked on prepbot's side on every call instead (and server admins can still restrict
`/prep` as a whole under Server Settings → Integrations).
"""

from __future__ import annotations

import functools
import logging
import zoneinfo
from typing import TYPE_CHECKING

import discord
from discord import app_commands

if TYPE_CHECKING:
    from adapters.discord.client import PrepClientMixin

logger = logging.getLogger(__name__)

MAX_CHOICES = 25
PERIODS = ("week", "month", "all")
DAYS = ("mon-fri", "daily", "mon,wed,fri", "tue,thu", "sat,sun")


@functools.cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def timezone_choices(current: str) -> list[app_commands.Choice[str]]:
    """Up to 25 IANA zones matching what the member has typed so far, prefix matches first."""
    wanted = current.strip().lower().replace(" ", "_")
    zones = _zones()
    prefix = [z for z in zones if z.lower().startswith(wanted)]
    inside = [z for z in zones if wanted in z.lower() and not z.lower().startswith(wanted)]
    return [app_commands.Choice(name=z, value=z) for z in (prefix + inside)[:MAX_CHOICES]]


def days_choices(current: str) -> list[app_commands.Choice[str]]:
    wanted = current.strip().lower()
    return [app_commands.Choice(name=d, value=d) for d in DAYS if d.startswith(wanted)]


def build_tree(client: PrepClientMixin) -> app_commands.CommandTree[discord.Client]:
    """The command tree: `/prep …` and `/drill`, each handing the interaction to the client."""
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)  # type: ignore[arg-type]
    prep = app_commands.Group(name="prep", description="Daily interview practice in this channel", guild_only=True)

    @prep.command(name="help", description="What prepbot does and its commands")
    async def help_(interaction: discord.Interaction) -> None:
        await client.command(interaction, "help")

    @prep.command(name="stats", description="Your answers, ratings and streak in this channel")
    async def stats(interaction: discord.Interaction) -> None:
        await client.command(interaction, "stats")

    @prep.command(name="leaderboard", description="Who gives the strongest answers")
    @app_commands.describe(period="The period to rank (default: week)")
    @app_commands.choices(period=[app_commands.Choice(name=p, value=p) for p in PERIODS])
    async def leaderboard(interaction: discord.Interaction, period: app_commands.Choice[str] | None = None) -> None:
        await client.command(interaction, "leaderboard", period.value if period else None)

    @prep.command(name="rubric", description="What a strong answer to this thread's (or the latest) question covers")
    async def rubric(interaction: discord.Interaction) -> None:
        await client.command(interaction, "rubric")

    @prep.command(name="schedule", description="When the next question goes up")
    async def schedule(interaction: discord.Interaction) -> None:
        await client.command(interaction, "schedule")

    @prep.command(name="setup", description="Organizers: post a question here every scheduled day")
    @app_commands.describe(time="Local time, HH:MM (24 h), e.g. 09:30", timezone="IANA time zone, e.g. Europe/Berlin",
                           days="mon-fri (default), daily, or a list such as mon,wed,fri", track="Question track id")
    async def setup(interaction: discord.Interaction, time: str, timezone: str, days: str | None = None,
                    track: str | None = None) -> None:
        # The core's text form is positional: a track needs the days before it.
        await client.command(interaction, "setup", time, timezone, days or ("mon-fri" if track else None), track)

    @setup.autocomplete("timezone")
    async def setup_timezone(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return timezone_choices(current)

    @setup.autocomplete("days")
    async def setup_days(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return days_choices(current)

    @prep.command(name="pause", description="Organizers: stop posting questions until resumed")
    async def pause(interaction: discord.Interaction) -> None:
        await client.command(interaction, "pause")

    @prep.command(name="resume", description="Organizers: restart the schedule")
    async def resume(interaction: discord.Interaction) -> None:
        await client.command(interaction, "resume")

    @prep.command(name="skip", description="Organizers: skip the next scheduled question")
    async def skip(interaction: discord.Interaction) -> None:
        await client.command(interaction, "skip")

    @prep.command(name="now", description="Organizers: post today's question now")
    async def now(interaction: discord.Interaction) -> None:
        await client.command(interaction, "now")

    @prep.command(name="track", description="Organizers: switch this channel's question track")
    @app_commands.describe(name="The track's id")
    async def track_(interaction: discord.Interaction, name: str) -> None:
        await client.command(interaction, "track", name)

    @app_commands.command(name="drill", description="A follow-up probe: in a question's thread, your next drill-down")
    @app_commands.describe(topic="A category or question id (outside a question's thread)")
    @app_commands.guild_only()
    async def drill(interaction: discord.Interaction, topic: str | None = None) -> None:
        await client.drill(interaction, topic)

    @tree.error
    async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        # E.g. a command removed or changed by a newer deploy while Discord still shows the old one.
        logger.warning("interaction %s failed: %s", interaction.id, error, exc_info=error)
        if not interaction.response.is_done():
            await interaction.response.send_message(
                "prepbot could not run that command (it may have just been updated: try again in a minute). "
                "Nothing was changed.", ephemeral=True)

    tree.add_command(prep)
    tree.add_command(drill)
    return tree
