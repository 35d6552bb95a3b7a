"""The minutes' workflow (issue 20): the secrétaire de séance; a version number per document
kind; the directors' readings of the minutes (a visa needs one) and their correction requests

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        batch.add_column(sa.Column("secretary_member_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("secretary_user_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(batch.f("fk_meetings_secretary_member_id_members"), "members",
                                 ["secretary_member_id"], ["id"])
        batch.create_foreign_key(batch.f("fk_meetings_secretary_user_id_users"), "users",
                                 ["secretary_user_id"], ["id"])
    with op.batch_alter_table("generated_documents") as batch:
        batch.add_column(sa.Column("number", sa.Integer(), nullable=False, server_default="1"))
    # Earlier documents are numbered in the order they were built, per session, kind and sheet.
    op.execute(sa.text(
        "UPDATE generated_documents SET number = (SELECT count(*) FROM generated_documents AS g "
        "WHERE g.kind = generated_documents.kind "
        "AND coalesce(g.meeting_id, 0) = coalesce(generated_documents.meeting_id, 0) "
        "AND coalesce(g.sheet_id, 0) = coalesce(generated_documents.sheet_id, 0) "
        "AND g.id <= generated_documents.id)"))
    op.create_table(
        "minutes_readings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["generated_documents.id"],
                                name=op.f("fk_minutes_readings_document_id_generated_documents")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_minutes_readings_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_minutes_readings")),
        sa.UniqueConstraint("document_id", "user_id",
                            name=op.f("uq_minutes_readings_document_id")),
    )
    op.create_index(op.f("ix_minutes_readings_document_id"), "minutes_readings",
                    ["document_id"], unique=False)
    op.create_table(
        "minutes_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("institution", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"],
                                name=op.f("fk_minutes_corrections_meeting_id_meetings")),
        sa.ForeignKeyConstraint(["document_id"], ["generated_documents.id"],
                                name=op.f("fk_minutes_corrections_document_id_generated_documents")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_minutes_corrections_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_minutes_corrections")),
    )
    op.create_index(op.f("ix_minutes_corrections_meeting_id"), "minutes_corrections",
                    ["meeting_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_minutes_corrections_meeting_id"), table_name="minutes_corrections")
    op.drop_table("minutes_corrections")
    op.drop_index(op.f("ix_minutes_readings_document_id"), table_name="minutes_readings")
    op.drop_table("minutes_readings")
    with op.batch_alter_table("generated_documents") as batch:
        batch.drop_column("number")
    with op.batch_alter_table("meetings") as batch:
        batch.drop_constraint(batch.f("fk_meetings_secretary_user_id_users"), type_="foreignkey")
        batch.drop_constraint(batch.f("fk_meetings_secretary_member_id_members"),
                              type_="foreignkey")
        batch.drop_column("secretary_user_id")
        batch.drop_column("secretary_member_id")
