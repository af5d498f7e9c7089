"""Multi-workspace installs: bolt's installation and OAuth state stores, kept in prepbot's own database."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import models
from bot.store import insert_ignoring_conflicts

logger = logging.getLogger(__name__)

PLATFORM = "slack"
STATE_LIFETIME = timedelta(minutes=10)
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SqlInstallationStore(AsyncInstallationStore):
    """One row per (enterprise, workspace): the latest install's bot token wins."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock = _utc_now) -> None:
        self._sessions = sessions
        self._clock = clock

    @property
    def logger(self) -> logging.Logger:
        return logger

    async def async_save(self, installation: Installation) -> None:
        if not installation.bot_token:
            raise ValueError("prepbot installs need a bot token; the app must request bot scopes")
        key = _key(installation.enterprise_id, installation.team_id, installation.is_enterprise_install)
        values = {
            "is_enterprise_install": bool(installation.is_enterprise_install),
            "app_id": installation.app_id,
            "bot_token": installation.bot_token,
            "bot_id": installation.bot_id,
            "bot_user_id": installation.bot_user_id,
            "installer_user_id": installation.user_id,
            "scopes": list(installation.bot_scopes or []),
            "installed_at": self._clock(),
        }
        async with self._sessions() as session, session.begin():
            await session.execute(insert_ignoring_conflicts(
                session, models.Installation, platform=PLATFORM, enterprise_id=key[0], workspace_external_id=key[1], **values))
            row = await _find(session, *key)
            assert row is not None
            for name, value in values.items():
                setattr(row, name, value)
        logger.info("saved the Slack install for workspace %s (enterprise %s)", key[1], key[0] or "none")

    async def async_save_bot(self, bot: Bot) -> None:
        raise NotImplementedError("prepbot saves whole installations")

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        installation = await self.async_find_installation(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install)
        return installation.to_bot() if installation is not None else None

    async def async_find_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        async with self._sessions() as session:
            row = await _find(session, *_key(enterprise_id, team_id, is_enterprise_install))
            if row is None and enterprise_id and not is_enterprise_install:
                row = await _find(session, enterprise_id, enterprise_id)  # an org-wide install covers its workspaces
        return _installation(row) if row is not None else None

    async def async_workspace_installations(self, limit: int) -> list[Installation]:
        """Up to `limit` installations into single workspaces (not org-wide ones), newest first."""
        async with self._sessions() as session:
            rows = (await session.scalars(select(models.Installation).where(
                models.Installation.platform == PLATFORM, models.Installation.is_enterprise_install.is_(False),
            ).order_by(models.Installation.installed_at.desc()).limit(limit))).all()
        return [_installation(row) for row in rows]

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None) -> None:
        enterprise, workspace = _key(enterprise_id, team_id, False)
        async with self._sessions() as session, session.begin():
            await session.execute(delete(models.Installation).where(
                models.Installation.platform == PLATFORM, models.Installation.enterprise_id == enterprise,
                models.Installation.workspace_external_id == workspace))

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)


def _installation(row: models.Installation) -> Installation:
    return Installation(
        app_id=row.app_id, enterprise_id=row.enterprise_id or None,
        team_id=None if row.is_enterprise_install else row.workspace_external_id,
        bot_token=row.bot_token, bot_id=row.bot_id, bot_user_id=row.bot_user_id, bot_scopes=row.scopes,
        user_id=row.installer_user_id, is_enterprise_install=row.is_enterprise_install,
        installed_at=row.installed_at.timestamp(),
    )


def _key(enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None) -> tuple[str, str]:
    enterprise = enterprise_id or ""
    workspace = enterprise if is_enterprise_install and enterprise else (team_id or "")
    return enterprise, workspace


async def _find(session: AsyncSession, enterprise: str, workspace: str) -> models.Installation | None:
    return await session.scalar(select(models.Installation).where(
        models.Installation.platform == PLATFORM, models.Installation.enterprise_id == enterprise,
        models.Installation.workspace_external_id == workspace))


class SqlOAuthStateStore(AsyncOAuthStateStore):
    """Single-use OAuth states: the database keeps only an HMAC of each, keyed with SLACK_STATE_SECRET."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], secret: str, *,
        lifetime: timedelta = STATE_LIFETIME, clock: Clock = _utc_now,
    ) -> None:
        self._sessions = sessions
        self._secret = secret.encode()
        self._lifetime = lifetime
        self._clock = clock

    @property
    def logger(self) -> logging.Logger:
        return logger

    async def async_issue(self, *args: object, **kwargs: object) -> str:
        state = secrets.token_urlsafe(24)
        now = self._clock()
        async with self._sessions() as session, session.begin():
            await session.execute(delete(models.OAuthState).where(models.OAuthState.expires_at < now))
            session.add(models.OAuthState(digest=self._digest(state), expires_at=now + self._lifetime))
        return state

    async def async_consume(self, state: str) -> bool:
        async with self._sessions() as session, session.begin():
            consumed = await session.execute(delete(models.OAuthState).where(
                models.OAuthState.digest == self._digest(state), models.OAuthState.expires_at >= self._clock()))
        return bool(consumed.rowcount == 1)  # type: ignore[attr-defined]

    def _digest(self, state: str) -> str:
        return hmac.new(self._secret, state.encode(), hashlib.sha256).hexdigest()
