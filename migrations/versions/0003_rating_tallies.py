"""Rating tallies: whether each rating counts, each answer's count and sum, and covering indexes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

STANDING = "withdrawn_at IS NULL AND prompt_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.add_column(sa.Column("rating_count", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("rating_sum", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("ratings") as batch:
        batch.add_column(sa.Column("counted", sa.Boolean(), server_default=sa.false(), nullable=False))

    # Existing ratings: the same rule as bot.tallies, in one pass.
    op.execute(
        "UPDATE ratings SET counted = ("
        " EXISTS (SELECT 1 FROM answers a WHERE a.channel_id = ratings.channel_id AND a.message_id = ratings.message_id"
        "         AND a.prompt_id IS NOT NULL AND a.withdrawn_at IS NULL AND a.member_id <> ratings.rater_id)"
        " AND NOT EXISTS (SELECT 1 FROM members m WHERE m.id = ratings.rater_id AND m.is_bot))"
    )
    op.execute(
        "UPDATE answers SET"
        " rating_count = (SELECT count(*) FROM ratings r WHERE r.channel_id = answers.channel_id"
        "                 AND r.message_id = answers.message_id AND r.counted),"
        " rating_sum = (SELECT coalesce(sum(r.score), 0) FROM ratings r WHERE r.channel_id = answers.channel_id"
        "               AND r.message_id = answers.message_id AND r.counted)"
    )

    op.drop_index("ix_ratings_rater_id", table_name="ratings")
    op.drop_index("ix_answers_member_id_posted_at", table_name="answers")
    op.create_index("ix_ratings_rater_id_channel_id_counted", "ratings", ["rater_id", "channel_id", "counted"])
    op.create_index(
        "ix_answers_standing_by_time", "answers", ["channel_id", "posted_at", "member_id", "rating_count", "rating_sum"],
        sqlite_where=sa.text(STANDING), postgresql_where=sa.text(STANDING),
    )
    op.create_index(
        "ix_answers_standing_by_member", "answers", ["channel_id", "member_id", "prompt_id", "rating_count", "rating_sum"],
        sqlite_where=sa.text(STANDING), postgresql_where=sa.text(STANDING),
    )


def downgrade() -> None:
    op.drop_index("ix_answers_standing_by_member", table_name="answers")
    op.drop_index("ix_answers_standing_by_time", table_name="answers")
    op.drop_index("ix_ratings_rater_id_channel_id_counted", table_name="ratings")
    op.create_index("ix_ratings_rater_id", "ratings", ["rater_id"])
    op.create_index("ix_answers_member_id_posted_at", "answers", ["member_id", "posted_at"])
    with op.batch_alter_table("ratings") as batch:
        batch.drop_column("counted")
    with op.batch_alter_table("answers") as batch:
        batch.drop_column("rating_sum")
        batch.drop_column("rating_count")
