"""ICAG periods and steps; partnership items' presenter, outcome and follow-up; notifications
to a member and about an accompagnement global (issue 15)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "global_supports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=False),
        sa.Column("sheet_id", sa.Integer(), nullable=False),
        sa.Column("circonscription_id", sa.Integer(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("term_ends_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("exit_reason", sa.String(length=30), nullable=False),
        sa.Column("diagnostic_on", sa.Date(), nullable=False),
        sa.Column("diagnostic_structure_id", sa.Integer(), nullable=False),
        sa.Column("diagnostic_categories", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["beneficiary_id"], ["beneficiaries.id"],
                                name=op.f("fk_global_supports_beneficiary_id_beneficiaries")),
        sa.ForeignKeyConstraint(["sheet_id"], ["sheets.id"],
                                name=op.f("fk_global_supports_sheet_id_sheets")),
        sa.ForeignKeyConstraint(
            ["circonscription_id"], ["circonscriptions.id"],
            name=op.f("fk_global_supports_circonscription_id_circonscriptions")),
        sa.ForeignKeyConstraint(
            ["diagnostic_structure_id"], ["structures.id"],
            name=op.f("fk_global_supports_diagnostic_structure_id_structures")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_global_supports")),
        sa.UniqueConstraint("uuid", name=op.f("uq_global_supports_uuid")),
    )
    with op.batch_alter_table("global_supports") as batch:
        for column in ("beneficiary_id", "sheet_id", "circonscription_id", "term_ends_on"):
            batch.create_index(batch.f(f"ix_global_supports_{column}"), [column], unique=False)
    op.create_table(
        "global_support_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("support_id", sa.Integer(), nullable=False),
        sa.Column("agenda_item_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=15), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("term_ends_on", sa.Date(), nullable=False),
        sa.Column("exit_reason", sa.String(length=30), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["support_id"], ["global_supports.id"], ondelete="CASCADE",
                                name=op.f("fk_global_support_steps_support_id_global_supports")),
        sa.ForeignKeyConstraint(
            ["agenda_item_id"], ["agenda_items.id"],
            name=op.f("fk_global_support_steps_agenda_item_id_agenda_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_global_support_steps")),
        sa.UniqueConstraint("agenda_item_id", name=op.f("uq_global_support_steps_agenda_item_id")),
    )
    with op.batch_alter_table("global_support_steps") as batch:
        batch.create_index(batch.f("ix_global_support_steps_support_id"), ["support_id"],
                           unique=False)
    with op.batch_alter_table("agenda_items") as batch:
        for name in ("presenter_structure", "presenter_role"):
            batch.add_column(sa.Column(name, sa.String(length=160), nullable=False,
                                       server_default=""))
        for name in ("summary", "next_step"):
            batch.add_column(sa.Column(name, sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("follow_up_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("follow_up_done_on", sa.Date(), nullable=True))
        batch.create_index(batch.f("ix_agenda_items_follow_up_on"), ["follow_up_on"],
                           unique=False)
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("member_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("global_support_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(batch.f("fk_notifications_member_id_members"), "members",
                                 ["member_id"], ["id"], ondelete="CASCADE")
        batch.create_foreign_key(batch.f("fk_notifications_global_support_id_global_supports"),
                                 "global_supports", ["global_support_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_constraint(batch.f("fk_notifications_global_support_id_global_supports"),
                              type_="foreignkey")
        batch.drop_constraint(batch.f("fk_notifications_member_id_members"), type_="foreignkey")
        batch.drop_column("global_support_id")
        batch.drop_column("member_id")
    with op.batch_alter_table("agenda_items") as batch:
        batch.drop_index(batch.f("ix_agenda_items_follow_up_on"))
        for name in ("follow_up_done_on", "follow_up_on", "next_step", "summary",
                     "presenter_role", "presenter_structure"):
            batch.drop_column(name)
    op.drop_table("global_support_steps")
    op.drop_table("global_supports")
