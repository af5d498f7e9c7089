"""Index the inbox by when each event came, so that old delivery ids can be pruned oldest first.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:45:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index(op.f("ix_inbox_events_received_at"), "inbox_events", ["received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_inbox_events_received_at"), table_name="inbox_events")
