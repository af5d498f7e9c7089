"""The invite link for adding prepbot to a server, with exactly the permissions it needs."""

from __future__ import annotations

import discord

REQUIRED_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    read_message_history=True,
    add_reactions=True,
)
SCOPES = ("bot", "applications.commands")


def invite_url(application_id: int | str) -> str:
    """The OAuth2 URL a server admin opens to add prepbot (scopes bot and applications.commands)."""
    return discord.utils.oauth_url(
        int(application_id), permissions=REQUIRED_PERMISSIONS, scopes=SCOPES)
