"""record_keys clustered by primary key on SQLite (WITHOUT ROWID)

Rows sit in the file in (record_uuid, chain, dek_version) order, the order the rotation walks
and the order a person's keys are read in: a batch of 1,000 rewraps dirties a few dozen pages
instead of one page per row (random uuids scattered over insertion order). PostgreSQL: nothing.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 15:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("record_keys", recreate="always",
                              table_kwargs={"sqlite_with_rowid": with_rowid}):
        pass


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)
