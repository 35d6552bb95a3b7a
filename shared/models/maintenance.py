"""When each periodic task last ran, shared by every worker (one run a day, not one each)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base


class MaintenanceRun(Base):
    __tablename__ = "maintenance_runs"

    task: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(DateTime)
