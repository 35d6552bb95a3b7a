"""Each role's home page is its work queue (issue 22): counts that link to the work, the
next sessions with their deadlines, and nothing decrypted to show them."""

from __future__ import annotations

import html
from datetime import date, datetime

from sqlalchemy import func, select

from shared.domain.meetings import inscribe_sheet
from shared.domain.retention import Policy
from shared.domain.sheet_workflow import reveal_identity
from shared.domain.work_queue import work_queue
from shared.models import AuditEvent
from tests.factories import canary_identity, make_sheet
from tests.helpers import client_as

BEFORE_THE_SESSION = datetime(2026, 12, 1, 9, 0)  # UTC; the world's session is on 15/12 14:00


def test_each_role_gets_the_counts_of_what_waits_on_it(db_session, vault, world):
    users, structures = world["users"], world["structures"]
    mine = {"author_id": users["referent"].id}  # a referent's queue: their own sheets
    make_sheet(db_session, vault, structures["ssd"], canary_identity(10), **mine)
    make_sheet(db_session, vault, structures["ssd"], canary_identity(11), status="a_completer",
               **mine)
    submitted = make_sheet(db_session, vault, structures["ssd"], canary_identity(12),
                           status="soumise", **mine)
    inscribed = make_sheet(db_session, vault, structures["ssd"], canary_identity(13),
                           status="recevable", **mine)
    inscribe_sheet(db_session, vault, world["meeting"], inscribed, "15:10")
    make_sheet(db_session, vault, structures["ssd"], canary_identity(14), status="recevable",
               **mine)  # waiting for a session of its circonscription
    reveal_identity(db_session, vault, submitted, actor_id=users["facilitator"].id,
                    reason="Vérifier un doublon signalé.")
    db_session.commit()

    def queue(name):
        return work_queue(db_session, users[name], retention_policy=Policy(),
                          now=BEFORE_THE_SESSION)

    referent = queue("referent")
    assert referent.referent == {"drafts": 1, "to_complete": 1, "to_update": 0,
                                 "inscribed": 1, "feedback_ready": 0}
    assert [(i.reference, i.starts_at, i.time_slot) for i in referent.inscriptions] == [
        (inscribed.reference, datetime(2026, 12, 15, 14, 0), "15:10")]
    assert queue("other_referent").referent["drafts"] == 0  # another structure's sheets
    assert not referent.facilitator and not referent.dpo

    facilitator = queue("facilitator")
    assert facilitator.facilitator["to_screen"] == 1
    [coming] = facilitator.coming
    assert coming.meeting.id == world["meeting"].id
    assert (coming.cutoff_on, coming.dossier_on) == (date(2026, 12, 5), date(2026, 12, 10))
    assert coming.situations == 3 and not coming.dossier_ready and coming.candidates == 1
    other = queue("other_facilitator")
    assert other.facilitator["to_screen"] == 0 and other.coming == []
    # After the session, it is no longer "coming"
    assert work_queue(db_session, users["facilitator"], retention_policy=Policy(),
                      now=datetime(2026, 12, 16)).coming == []

    assert queue("director").director == {"minutes_to_sign": 0, "formal_decisions": 0}
    assert queue("admin").admin == {"failed_jobs": 0, "stuck_jobs": 0, "failed_mails": 0}
    assert queue("dpo").dpo["reveals"] == 1


QUEUES = {  # role: its section's heading, and one of its links
    "referent": ("Mes fiches de saisine", "/fiches/?etat=brouillon"),
    "facilitator": ("Mes instances", "/fiches/?vue=instance&amp;etat=soumise"),
    "director": ("À viser et à décider", "/visas/"),
    "admin": ("Exploitation", "/admin/travaux"),
    "dpo": ("Protection des données", "/dpo/conservation"),
}


def test_the_home_page_shows_the_roles_queue_only_and_decrypts_nothing(app, world, db_session):
    def decryptions():
        db_session.expire_all()
        return db_session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "decrypt"))

    before = decryptions()
    for role, (heading, link) in QUEUES.items():
        page = client_as(app, role).get("/")
        assert page.status_code == 200
        body = html.unescape(page.get_data(as_text=True))
        assert f">{heading}</h2>" in body and f'href="{html.unescape(link)}' in body, role
        assert not [other for other, _ in QUEUES.values()
                    if other != heading and f">{other}</h2>" in body], role
    assert decryptions() == before


def test_the_accessibility_statement_is_public_and_linked_from_every_page(app, world):
    anonymous = client_as(app, "anonymous")
    statement = html.unescape(anonymous.get("/accessibilite").get_data(as_text=True))
    assert "partiellement conforme" in statement and "Défenseur des droits" in statement
    login = anonymous.get("/connexion").get_data(as_text=True)
    assert 'href="/accessibilite"' in login
