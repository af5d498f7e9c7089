"""The Discord adapter: discord.py gateway events and interactions to core events, actions to REST."""

from adapters.discord.adapter import DiscordAdapter

__all__ = ["DiscordAdapter"]
