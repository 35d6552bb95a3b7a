"""documents

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 10:06:28.684472
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "template_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["users.id"], name=op.f("fk_template_versions_uploaded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_versions")),
        sa.UniqueConstraint("kind", "version", name=op.f("uq_template_versions_kind")),
    )
    with op.batch_alter_table("template_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_template_versions_kind"), ["kind"], unique=False)

    op.create_table(
        "minutes_visas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("institution", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("signed_at", sa.DateTime(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["generated_documents.id"],
            name=op.f("fk_minutes_visas_document_id_generated_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_minutes_visas_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_minutes_visas_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_minutes_visas")),
        sa.UniqueConstraint(
            "document_id", "institution", name=op.f("uq_minutes_visas_document_id")
        ),
    )
    with op.batch_alter_table("minutes_visas", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_minutes_visas_meeting_id"), ["meeting_id"], unique=False
        )

    with op.batch_alter_table("document_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("subject", sa.String(length=20), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("sheet_id", sa.Integer(), nullable=True))
        batch_op.drop_constraint(batch_op.f("uq_document_jobs_meeting_id"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_document_jobs_meeting_id"),
            ["meeting_id", "kind", "content_version", "subject"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_document_jobs_sheet_id_sheets"), "sheets", ["sheet_id"], ["id"]
        )

    with op.batch_alter_table("generated_documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sheet_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("template_version_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("pdf_body", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("pdf_size", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_generated_documents_sheet_id"), ["sheet_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_generated_documents_template_version_id_template_versions"),
            "template_versions",
            ["template_version_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_generated_documents_sheet_id_sheets"), "sheets", ["sheet_id"], ["id"]
        )

    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("institution", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.drop_column("institution")

    with op.batch_alter_table("generated_documents", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_generated_documents_sheet_id_sheets"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_generated_documents_template_version_id_template_versions"),
            type_="foreignkey",
        )
        batch_op.drop_index(batch_op.f("ix_generated_documents_sheet_id"))
        batch_op.drop_column("pdf_size")
        batch_op.drop_column("pdf_body")
        batch_op.drop_column("template_version_id")
        batch_op.drop_column("sheet_id")

    with op.batch_alter_table("document_jobs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_document_jobs_sheet_id_sheets"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_document_jobs_meeting_id"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_document_jobs_meeting_id"), ["meeting_id", "kind", "content_version"]
        )
        batch_op.drop_column("sheet_id")
        batch_op.drop_column("subject")

    with op.batch_alter_table("minutes_visas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_minutes_visas_meeting_id"))

    op.drop_table("minutes_visas")
    with op.batch_alter_table("template_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_template_versions_kind"))

    op.drop_table("template_versions")
