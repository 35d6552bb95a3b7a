"""sessions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:46:53.053136
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meeting_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("circonscription_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("week_of_month", sa.Integer(), nullable=False),
        sa.Column("time", sa.String(length=5), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("video_link", sa.String(length=300), nullable=False, server_default=""),
        sa.Column("cutoff_days", sa.Integer(), nullable=False, server_default="10"),
        sa.Column("dossier_days", sa.Integer(), nullable=False, server_default="5"),
        sa.ForeignKeyConstraint(
            ["circonscription_id"],
            ["circonscriptions.id"],
            name=op.f("fk_meeting_schedules_circonscription_id_circonscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_schedules")),
        sa.UniqueConstraint(
            "circonscription_id", name=op.f("uq_meeting_schedules_circonscription_id")
        ),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("circonscription_id", sa.Integer(), nullable=False),
        sa.Column("structure_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=160), nullable=False),
        sa.Column("function", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("acco_glo", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["circonscription_id"],
            ["circonscriptions.id"],
            name=op.f("fk_members_circonscription_id_circonscriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["structure_id"], ["structures.id"], name=op.f("fk_members_structure_id_structures")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_members_circonscription_id"), ["circonscription_id"], unique=False
        )

    op.create_table(
        "meeting_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("answer", sa.String(length=15), nullable=False),
        sa.Column("attendance", sa.String(length=10), nullable=False),
        sa.Column("replacement", sa.String(length=160), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_meeting_members_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_meeting_members_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_members")),
        sa.UniqueConstraint("meeting_id", "member_id", name=op.f("uq_meeting_members_meeting_id")),
    )
    with op.batch_alter_table("meeting_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_members_meeting_id"), ["meeting_id"], unique=False
        )

    op.create_table(
        "decision_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("owner_structure_id", sa.Integer(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("done_on", sa.Date(), nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_decision_actions_decision_id_decisions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_structure_id"],
            ["structures.id"],
            name=op.f("fk_decision_actions_owner_structure_id_structures"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_actions")),
        sa.UniqueConstraint("uuid", name=op.f("uq_decision_actions_uuid")),
    )
    with op.batch_alter_table("decision_actions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_decision_actions_decision_id"), ["decision_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_decision_actions_due_on"), ["due_on"], unique=False)

    with op.batch_alter_table("agenda_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("icag_kind", sa.String(length=15), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("outcome", sa.String(length=10), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("adjourn_reason", sa.Text(), nullable=False, server_default="")
        )

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("formal_decision_by", sa.String(length=20), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("come_back_on", sa.Date(), nullable=True))
        batch_op.drop_column("needs_formal_decision")

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("video_link", sa.String(length=300), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("cutoff_days", sa.Integer(), nullable=False, server_default="10")
        )
        batch_op.add_column(
            sa.Column("dossier_days", sa.Integer(), nullable=False, server_default="5")
        )
        batch_op.add_column(
            sa.Column("state_reason", sa.String(length=500), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("postponed_to_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("frozen_version", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_meetings_postponed_to_id_meetings"),
            "meetings",
            ["postponed_to_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_meetings_postponed_to_id_meetings"), type_="foreignkey"
        )
        batch_op.drop_column("frozen_version")
        batch_op.drop_column("postponed_to_id")
        batch_op.drop_column("state_reason")
        batch_op.drop_column("dossier_days")
        batch_op.drop_column("cutoff_days")
        batch_op.drop_column("video_link")

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "needs_formal_decision", sa.BOOLEAN(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.drop_column("come_back_on")
        batch_op.drop_column("formal_decision_by")

    with op.batch_alter_table("agenda_items", schema=None) as batch_op:
        batch_op.drop_column("adjourn_reason")
        batch_op.drop_column("outcome")
        batch_op.drop_column("late")
        batch_op.drop_column("icag_kind")

    with op.batch_alter_table("decision_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decision_actions_due_on"))
        batch_op.drop_index(batch_op.f("ix_decision_actions_decision_id"))

    op.drop_table("decision_actions")
    with op.batch_alter_table("meeting_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_members_meeting_id"))

    op.drop_table("meeting_members")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_members_circonscription_id"))

    op.drop_table("members")
    op.drop_table("meeting_schedules")
