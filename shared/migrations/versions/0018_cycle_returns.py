"""formal_decisions and avis_revisions: the second-level decision and corrected avis

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "formal_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("author", sa.String(length=160), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"],
                                name=op.f("fk_formal_decisions_decision_id_decisions"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["recorded_by"], ["users.id"],
                                name=op.f("fk_formal_decisions_recorded_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_formal_decisions")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_formal_decisions_decision_id")),
        sa.UniqueConstraint("uuid", name=op.f("uq_formal_decisions_uuid")),
    )
    op.create_table(
        "avis_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("revised_at", sa.DateTime(), nullable=False),
        sa.Column("revised_by", sa.Integer(), nullable=True),
        sa.Column("avis", sa.String(length=40), nullable=False),
        sa.Column("formal_decision_by", sa.String(length=20), nullable=False),
        sa.Column("come_back_on", sa.Date(), nullable=True),
        sa.Column("previous", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"],
                                name=op.f("fk_avis_revisions_decision_id_decisions"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["revised_by"], ["users.id"],
                                name=op.f("fk_avis_revisions_revised_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_avis_revisions")),
        sa.UniqueConstraint("uuid", name=op.f("uq_avis_revisions_uuid")),
    )
    with op.batch_alter_table("avis_revisions") as batch:
        batch.create_index(batch.f("ix_avis_revisions_decision_id"), ["decision_id"],
                           unique=False)


def downgrade() -> None:
    with op.batch_alter_table("avis_revisions") as batch:
        batch.drop_index(batch.f("ix_avis_revisions_decision_id"))
    op.drop_table("avis_revisions")
    op.drop_table("formal_decisions")
