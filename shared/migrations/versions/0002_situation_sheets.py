"""situation sheets

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:30:29.338313
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reference_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_items")),
        sa.UniqueConstraint("kind", "code", name=op.f("uq_reference_items_kind")),
    )
    with op.batch_alter_table("reference_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reference_items_kind"), ["kind"], unique=False)

    op.create_table(
        "form_stashes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("sheet_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sheet_id"],
            ["sheets.id"],
            name=op.f("fk_form_stashes_sheet_id_sheets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_stashes")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_form_stashes_token_hash")),
        sa.UniqueConstraint("uuid", name=op.f("uq_form_stashes_uuid")),
    )
    with op.batch_alter_table("form_stashes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_form_stashes_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "sheet_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("sheet_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=False),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_sheet_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["sheet_id"],
            ["sheets.id"],
            name=op.f("fk_sheet_events_sheet_id_sheets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sheet_events")),
        sa.UniqueConstraint("uuid", name=op.f("uq_sheet_events_uuid")),
    )
    with op.batch_alter_table("sheet_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sheet_events_sheet_id"), ["sheet_id"], unique=False)

    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_manager", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    with op.batch_alter_table("sheets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("situation_data", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("sensitive_data", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("referent_data", sa.Text(), nullable=True))
        # The three draft text columns of 0001 held demo data only (no release had them).
        batch_op.drop_column("situation")
        batch_op.drop_column("question")
        batch_op.drop_column("proposition")


def downgrade() -> None:
    with op.batch_alter_table("sheets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proposition", sa.TEXT(), nullable=True))
        batch_op.add_column(sa.Column("question", sa.TEXT(), nullable=True))
        batch_op.add_column(sa.Column("situation", sa.TEXT(), nullable=True))
        batch_op.drop_column("referent_data")
        batch_op.drop_column("sensitive_data")
        batch_op.drop_column("situation_data")

    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.drop_column("is_manager")

    with op.batch_alter_table("sheet_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sheet_events_sheet_id"))

    op.drop_table("sheet_events")
    with op.batch_alter_table("form_stashes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_form_stashes_created_at"))

    op.drop_table("form_stashes")
    with op.batch_alter_table("reference_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reference_items_kind"))

    op.drop_table("reference_items")
