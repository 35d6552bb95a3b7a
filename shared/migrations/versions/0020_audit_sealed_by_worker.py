"""audit_events.row_mac; seq and mac nullable: writers no longer wait on the chain head

Each new row carries its own MAC (``row_mac``) and is written without ``seq`` or ``mac``;
the worker's sealer chains the committed rows later (issue 18). Rows written before this
revision keep their seq and chain MAC (format v1) and verify as before.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("row_mac", sa.String(64), nullable=True))
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("mac", existing_type=sa.String(64), nullable=True)


def downgrade() -> None:
    # Unsealed rows have no place in a v1 chain: the downgrade refuses while any exists.
    unsealed = op.get_bind().scalar(sa.text("SELECT count(*) FROM audit_events "
                                            "WHERE seq IS NULL"))
    if unsealed:
        raise RuntimeError(f"{unsealed} audit row(s) not sealed yet: run the worker first")
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("mac", existing_type=sa.String(64), nullable=False)
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("row_mac")
