"""The worker's maintenance step deactivates accounts past their habilitation (issue 21)."""

from datetime import timedelta

from sqlalchemy import select

from generator import runtime
from generator.worker import expire_accounts
from shared.domain.users import paris_today
from shared.models import AuditEvent, User


def test_the_maintenance_step_deactivates_an_account_the_day_after_its_end(world, db_session,
                                                                           settings):
    director, dpo = world["users"]["director"], world["users"]["dpo"]
    director.habilitation_ends_on = paris_today() - timedelta(days=1)
    dpo.habilitation_ends_on = paris_today()
    db_session.commit()
    assert expire_accounts(runtime.init(settings)) == [director.id]
    db_session.expire_all()
    assert db_session.get(User, director.id).active is False
    assert db_session.get(User, dpo.id).active is True
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "user_expired"))
    assert event.actor_label == "worker" and event.object_ids == str(director.id)
