"""sheet_events.from_status: repair the state each transition left (issue 15)

Until this revision a transition recorded the state it reached in both columns ("Soumise →
Soumise"). A sheet starts as a draft and each transition leaves the state the previous event
reached, so the history is rebuilt exactly; notes (no state change) are right already.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The sheet transitions of this revision (shared.domain.sheet_workflow.TRANSITIONS).
TRANSITION_ACTIONS = {"submit", "withdraw", "return", "accept", "reject", "inscribe",
                      "examine", "record_avis", "adjourn", "follow", "close"}
FIRST_STATE = "brouillon"


def upgrade() -> None:
    events = sa.table("sheet_events", sa.column("id", sa.Integer),
                      sa.column("sheet_id", sa.Integer), sa.column("action", sa.String),
                      sa.column("from_status", sa.String), sa.column("to_status", sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(events.c.id, events.c.sheet_id, events.c.action,
                                        events.c.from_status, events.c.to_status)
                              .order_by(events.c.sheet_id, events.c.id)).all()
    reached: dict[int, str] = {}
    for row in rows:
        source = reached.get(row.sheet_id, FIRST_STATE)
        if row.action in TRANSITION_ACTIONS and row.from_status != source:
            connection.execute(events.update().where(events.c.id == row.id)
                               .values(from_status=source))
        reached[row.sheet_id] = row.to_status


def downgrade() -> None:
    """The repaired history is kept: it is the true one."""
