"""key rotation: process heartbeats, rotation checkpoints

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "process_heartbeats",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("host", sa.String(length=64), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("held", sa.String(length=400), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_process_heartbeats_seen_at", "process_heartbeats", ["seen_at"])
    op.create_table(
        "key_rotations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain", sa.String(length=10), nullable=False),
        sa.Column("target_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("position", sa.String(length=60), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_key_rotations_chain", "key_rotations", ["chain"])
    with op.batch_alter_table("record_keys") as batch:
        batch.drop_index("ix_record_keys_kek_version")
        batch.create_index("ix_record_keys_rotation",
                           ["chain", "kek_version", "record_uuid", "dek_version"])


def downgrade() -> None:
    with op.batch_alter_table("record_keys") as batch:
        batch.drop_index("ix_record_keys_rotation")
        batch.create_index("ix_record_keys_kek_version", ["kek_version"])
    op.drop_index("ix_key_rotations_chain", table_name="key_rotations")
    op.drop_table("key_rotations")
    op.drop_index("ix_process_heartbeats_seen_at", table_name="process_heartbeats")
    op.drop_table("process_heartbeats")
