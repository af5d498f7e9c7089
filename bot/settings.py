"""Settings read once from the environment (and a `.env` file) at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import question_bank

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///prepbot.db"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """A setting has a value prepbot cannot use; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)  # may carry the database password
    question_bank_dir: Path = field(default_factory=lambda: Path(question_bank.__file__).parent)
    organizers: frozenset[str] = frozenset()
    lateness: timedelta = timedelta(hours=3)
    tick_seconds: float = 15.0
    default_track: str = "ops-manager-trust-safety"
    host: str = "0.0.0.0"
    port: int = 3000
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str | None = None
    slack_client_id: str | None = None
    slack_client_secret: str | None = field(default=None, repr=False)
    slack_state_secret: str | None = field(default=None, repr=False)
    discord_token: str | None = field(default=None, repr=False)
    discord_api_url: str | None = None
    discord_gateway_url: str | None = None
    discord_shard_count: int | None = None
    discord_dev_guild: str | None = None
    discord_message_content: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: float, minimum: float) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a number, got {raw!r}") from None
            if value < minimum:
                raise SettingsError(f"{name} must be at least {minimum:g}, got {raw!r}")
            return value

        def flag(name: str) -> bool:
            raw = text(name)
            if raw is None or raw.lower() in FALSE_WORDS:
                return False
            if raw.lower() in TRUE_WORDS:
                return True
            raise SettingsError(f"{name} must be true or false, got {raw!r}")

        dev_guild = text("DISCORD_DEV_GUILD")
        if dev_guild is not None and not dev_guild.isdigit():
            raise SettingsError(f"DISCORD_DEV_GUILD must be a server id (a number), got {dev_guild!r}")
        bank_dir = text("QUESTION_BANK_DIR")
        defaults = cls()
        return cls(
            database_url=text("DATABASE_URL") or DEFAULT_DATABASE_URL,
            question_bank_dir=Path(bank_dir) if bank_dir else defaults.question_bank_dir,
            organizers=frozenset(u.strip() for u in env.get("PREP_ORGANIZERS", "").split(",") if u.strip()),
            lateness=timedelta(minutes=number("PREP_LATENESS_MINUTES", 180, 0)),
            tick_seconds=number("PREP_TICK_SECONDS", 15, 0.05),
            default_track=text("PREP_DEFAULT_TRACK") or defaults.default_track,
            host=text("HOST") or defaults.host,
            port=int(number("PORT", defaults.port, 0)),
            slack_bot_token=text("SLACK_BOT_TOKEN"),
            slack_signing_secret=text("SLACK_SIGNING_SECRET"),
            slack_app_token=text("SLACK_APP_TOKEN"),
            slack_api_url=text("SLACK_API_URL"),
            slack_client_id=text("SLACK_CLIENT_ID"),
            slack_client_secret=text("SLACK_CLIENT_SECRET"),
            slack_state_secret=text("SLACK_STATE_SECRET"),
            discord_token=text("DISCORD_TOKEN"),
            discord_api_url=text("DISCORD_API_URL"),
            discord_gateway_url=text("DISCORD_GATEWAY_URL"),
            discord_shard_count=int(number("DISCORD_SHARD_COUNT", 0, 0)) or None,
            discord_dev_guild=dev_guild,
            discord_message_content=flag("DISCORD_MESSAGE_CONTENT"),
        )

    @property
    def slack_oauth_configured(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret and self.slack_signing_secret)

    @property
    def slack_configured(self) -> bool:
        single = self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token)
        return bool(single or self.slack_oauth_configured)

    @property
    def discord_configured(self) -> bool:
        return bool(self.discord_token)
