"""audit retention anchor, dpo role, purged beneficiaries, maintenance runs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLES_BEFORE = "role IN ('referent', 'facilitator', 'director', 'admin')"
_ROLES_AFTER = "role IN ('referent', 'facilitator', 'director', 'admin', 'dpo')"


def upgrade() -> None:
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(sa.Column("anchor_seq", sa.Integer(), server_default="0",
                                   nullable=False))
        batch.add_column(sa.Column("anchor_mac", sa.String(length=64), server_default="",
                                   nullable=False))
        batch.add_column(sa.Column("anchor_sig", sa.String(length=64), server_default="",
                                   nullable=False))
    with op.batch_alter_table("beneficiaries") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("role_assignments") as batch:
        batch.drop_constraint(op.f("ck_role_assignments_known_role"), type_="check")
        batch.create_check_constraint("known_role", _ROLES_AFTER)
    op.create_table(
        "maintenance_runs",
        sa.Column("task", sa.String(length=40), nullable=False),
        sa.Column("last_run_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("task", name=op.f("pk_maintenance_runs")),
    )


def downgrade() -> None:
    op.drop_table("maintenance_runs")
    with op.batch_alter_table("role_assignments") as batch:
        batch.drop_constraint(op.f("ck_role_assignments_known_role"), type_="check")
        batch.create_check_constraint("known_role", _ROLES_BEFORE)
    with op.batch_alter_table("beneficiaries") as batch:
        batch.drop_column("purged_at")
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("anchor_sig")
        batch.drop_column("anchor_mac")
        batch.drop_column("anchor_seq")
