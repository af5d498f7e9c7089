"""Alembic migrations, the only source of the schema."""

# The newest revision, so that a start at head need not load Alembic to know it is there
# (tests/core/test_migrations.py checks that it is Alembic's own head).
HEAD = "0005"
