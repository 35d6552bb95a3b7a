"""notifications (e-mail outbox, preferences, convocation answers, information note)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 11:44:27.595484
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_preferences",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=20), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_preferences_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "topic", name=op.f("pk_notification_preferences")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("dedup_key", sa.String(length=120), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("meeting_member_id", sa.Integer(), nullable=True),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("sheet_id", sa.Integer(), nullable=True),
        sa.Column("document_job_id", sa.Integer(), nullable=True),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("error_message", sa.String(length=400), nullable=True),
        sa.ForeignKeyConstraint(
            ["digest_id"],
            ["notifications.id"],
            name=op.f("fk_notifications_digest_id_notifications"),
        ),
        sa.ForeignKeyConstraint(
            ["document_job_id"],
            ["document_jobs.id"],
            name=op.f("fk_notifications_document_job_id_document_jobs"),
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_notifications_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_member_id"],
            ["meeting_members.id"],
            name=op.f("fk_notifications_meeting_member_id_meeting_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sheet_id"], ["sheets.id"], name=op.f("fk_notifications_sheet_id_sheets")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_notifications_dedup_key")),
        sa.UniqueConstraint("uuid", name=op.f("uq_notifications_uuid")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("document_jobs", schema=None) as batch_op:
        batch_op.alter_column("meeting_id", existing_type=sa.INTEGER(), nullable=True)

    with op.batch_alter_table("generated_documents", schema=None) as batch_op:
        batch_op.alter_column("meeting_id", existing_type=sa.INTEGER(), nullable=True)

    with op.batch_alter_table("meeting_members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answer_nonce", sa.String(length=32), nullable=True))

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email", sa.String(length=254), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("email")

    with op.batch_alter_table("meeting_members", schema=None) as batch_op:
        batch_op.drop_column("answer_nonce")

    with op.batch_alter_table("generated_documents", schema=None) as batch_op:
        batch_op.alter_column("meeting_id", existing_type=sa.INTEGER(), nullable=False)

    with op.batch_alter_table("document_jobs", schema=None) as batch_op:
        batch_op.alter_column("meeting_id", existing_type=sa.INTEGER(), nullable=False)

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_user_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_status"))

    op.drop_table("notifications")
    op.drop_table("notification_preferences")
