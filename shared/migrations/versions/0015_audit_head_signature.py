"""audit_head.sig and audit_reanchors: a signed chain head, and signed re-anchors

The head's (seq, mac) gets a MAC under the audit secret (rows deleted at the tail are
detected); an administrator's re-anchor states which rows were MACed under a wrong key.
A head written before this revision has no signature until the next audit row signs it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(sa.Column("sig", sa.String(64), nullable=False, server_default=""))
    op.create_table(
        "audit_reanchors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_seq", sa.Integer(), nullable=False),
        sa.Column("to_seq", sa.Integer(), nullable=False),
        sa.Column("last_mac", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("sig", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_reanchors")),
        sa.UniqueConstraint("from_seq", name=op.f("uq_audit_reanchors_from_seq")),
    )


def downgrade() -> None:
    op.drop_table("audit_reanchors")
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("sig")
