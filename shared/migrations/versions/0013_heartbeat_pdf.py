"""process_heartbeats.converts_pdf: whether a live worker converts to PDF

The web app and the worker may run on different machines (Compose: different containers):
whether documents come in PDF too is the worker's to say, not the web host's.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("process_heartbeats") as batch:
        batch.add_column(sa.Column("converts_pdf", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("process_heartbeats") as batch:
        batch.drop_column("converts_pdf")
