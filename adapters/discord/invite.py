"""The invite link for adding prepbot to a server, with exactly the permissions it needs."""

from __future__ import annotations

import aiohttp
import discord

# Each permission and why prepbot needs it; nothing else is asked for.
NEEDED: tuple[tuple[str, str], ...] = (
    ("view_channel", "see the practice channel and its threads"),
    ("send_messages", "post the daily question"),
    ("embed_links", "show questions, rubrics and stats as embeds"),
    ("create_public_threads", "open a thread on each daily question"),
    ("send_messages_in_threads", "reply in a question's thread (drills, notes)"),
    ("read_message_history", "find a question again after a crash instead of posting it twice"),
)
REQUIRED_PERMISSIONS = discord.Permissions(**{name: True for name, _ in NEEDED})
SCOPES = ("bot", "applications.commands")
DEFAULT_API_URL = "https://discord.com/api/v10"


class InviteError(Exception):
    """The application id could not be found; the message says what to pass instead."""


def invite_url(application_id: int | str) -> str:
    """The OAuth2 URL a server admin opens to add prepbot (scopes `bot` and `applications.commands`)."""
    return discord.utils.oauth_url(int(application_id), permissions=REQUIRED_PERMISSIONS, scopes=SCOPES)


def explain() -> str:
    """The permissions in the link, one per line, with the reason for each."""
    lines = [f"permissions={REQUIRED_PERMISSIONS.value}:"]
    lines += [f"  {name.replace('_', ' ')}: {why}" for name, why in NEEDED]
    return "\n".join(lines)


async def application_id(token: str, api_url: str | None = None) -> str:
    """Ask Discord (or `DISCORD_API_URL`) for the id of the application the bot token belongs to."""
    url = (api_url or DEFAULT_API_URL).rstrip("/") + "/oauth2/applications/@me"
    try:
        async with aiohttp.ClientSession() as session, session.get(url, headers={"Authorization": f"Bot {token}"}) as response:
            return await _application_id_from(response)
    except aiohttp.ClientError as error:
        raise InviteError(f"could not reach Discord at {url} ({error}); pass --application-id instead.") from error


async def _application_id_from(response: aiohttp.ClientResponse) -> str:
    if response.status == 401:
        raise InviteError("Discord refused DISCORD_TOKEN (401 Unauthorized); check the token, "
                          "or pass --application-id from the Developer Portal's General Information page.")
    if response.status != 200:
        raise InviteError(f"Discord answered {response.status} when asked for the application; pass --application-id instead.")
    data = await response.json(content_type=None)
    return str(data["id"])
