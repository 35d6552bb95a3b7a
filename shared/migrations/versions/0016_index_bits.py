"""identity_records.index_bits: the width of each record's blind indexes

The width now depends on the expected population (ICLI_EXPECTED_POPULATION); indexes written
before kept 14 bits, and `icli keys rotate --chain index` brings them to the new width.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identity_records") as batch:
        batch.add_column(sa.Column("index_bits", sa.Integer(), nullable=False,
                                   server_default="14"))


def downgrade() -> None:
    with op.batch_alter_table("identity_records") as batch:
        batch.drop_column("index_bits")
