"""stash owner

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 09:57:16.629130
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Stashes without an owner cannot be restored safely: they are dropped.
    op.execute("DELETE FROM form_stashes")
    with op.batch_alter_table("form_stashes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=False))
        batch_op.create_foreign_key(
            batch_op.f("fk_form_stashes_user_id_users"),
            "users",
            ["user_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("form_stashes", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_form_stashes_user_id_users"), type_="foreignkey")
        batch_op.drop_column("user_id")
