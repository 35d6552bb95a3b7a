"""Accounts (issue 21): habilitation dates, members' suppléants, API clients

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("habilitation_starts_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("habilitation_ends_on", sa.Date(), nullable=True))
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("substitute_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_members_substitute_id_members", "members",
                                 ["substitute_id"], ["id"])
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(60), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"],
                                name=op.f("fk_api_clients_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_clients_token_hash")),
        sa.UniqueConstraint("uuid", name=op.f("uq_api_clients_uuid")),
    )


def downgrade() -> None:
    op.drop_table("api_clients")
    with op.batch_alter_table("members") as batch:
        batch.drop_constraint("fk_members_substitute_id_members", type_="foreignkey")
        batch.drop_column("substitute_id")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("habilitation_ends_on")
        batch.drop_column("habilitation_starts_on")
