"""Monthly statistics on the demo data (issue 15, bug 6)."""

from datetime import date

from sqlalchemy import select

from shared.demo import seed_demo
from shared.domain.statistics import monthly_statistics
from shared.models import Circonscription, Decision, Sheet


def test_the_demo_never_gives_a_negative_delay(db_session, vault):
    seed_demo(db_session, vault, password="demo-password-2026", sheets=12, seed=3)
    saint_denis = db_session.scalar(select(Circonscription).where(
        Circonscription.name == "Saint-Denis"))
    today = date.today()
    stats = monthly_statistics(db_session, saint_denis.id, today.year, today.month)
    assert stats.delay.count >= 1
    assert stats.delay.mean_days >= 0 and stats.delay.median_days >= 0
    for decision in db_session.scalars(select(Decision)):
        # Submitted before the session that examined it
        assert decision.sheet.submitted_at.date() < decision.meeting.starts_at.date()
    assert all(s.submitted_at.date() <= today for s in db_session.scalars(
        select(Sheet).where(Sheet.submitted_at.is_not(None))))
