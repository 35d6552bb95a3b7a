"""Accounts' lifecycle (issue 21): editing, habilitation dates, a departing referent's
sheets, suppléants."""

import html
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from shared.domain import account_lifecycle, users
from shared.domain.audit import WORKER
from shared.domain.meetings import record_answers
from shared.domain.meetings.members import save_member, set_substitute
from shared.errors import InvalidInputError
from shared.models import AuditEvent, MeetingMember, Member, Notification, Sheet, User
from tests.factories import PASSWORD, canary_identity, make_sheet
from tests.helpers import client_as, csrf_token, flash_text, post, reload


def _actions(db_session) -> list[str]:
    return db_session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()


def test_admin_moves_a_referent_to_another_structure_as_its_manager(app, world, db_session):
    admin, before = client_as(app, "admin"), client_as(app, "referent")
    referent, other = world["users"]["referent"], world["structures"]["other"]
    page = post(admin, f"/admin/utilisateurs/{referent.id}", {
        "full_name": "Test referent", "role": "referent", "structure_id": str(other.id),
        "manager": "y", "institution": ""})
    assert "Compte modifié." in flash_text(page)
    moved = reload(db_session, User, referent.id)
    assert moved.structure_ids == {other.id} and moved.managed_structure_ids == {other.id}
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "user_updated"))
    assert event.object_ids == str(referent.id) and event.fields == "role"
    # Rights changed: the session opened with the old ones ends.
    assert before.get("/").headers["Location"].startswith("/connexion")


def test_admin_turns_a_referent_into_a_facilitator_of_two_circonscriptions(app, world,
                                                                             db_session):
    admin = client_as(app, "admin")
    referent = world["users"]["referent"]
    circs = [str(world["north"].id), str(world["south"].id)]
    post(admin, f"/admin/utilisateurs/{referent.id}", {
        "full_name": "Test referent", "role": "facilitator", "structure_id": "0",
        "circonscription_ids": circs, "institution": ""})
    moved = reload(db_session, User, referent.id)
    assert moved.circonscription_ids == {world["north"].id, world["south"].id}
    assert not moved.has_role("referent")


def test_an_unchanged_form_writes_nothing(app, world, db_session):
    admin = client_as(app, "admin")
    director = world["users"]["director"]
    page = post(admin, f"/admin/utilisateurs/{director.id}", {
        "full_name": "Test director", "role": "director", "structure_id": "0",
        "institution": "departement"})
    assert "Aucune modification." in flash_text(page)
    assert "user_updated" not in _actions(db_session)


def test_an_administrator_cannot_remove_their_own_administration_role(app, world, db_session):
    admin = client_as(app, "admin")
    me = world["users"]["admin"]
    page = post(admin, f"/admin/utilisateurs/{me.id}", {
        "full_name": "Test admin", "role": "dpo", "structure_id": "0", "institution": ""})
    assert "retirer votre propre rôle" in page.get_data(as_text=True)
    assert reload(db_session, User, me.id).has_role("admin")
    # Nor end their own habilitation: they would be locked out at their next request
    page = post(admin, f"/admin/utilisateurs/{me.id}", {
        "full_name": "Test admin", "role": "admin", "structure_id": "0", "institution": "",
        "habilitation_ends_on": "2020-01-01"})
    assert "doivent inclure aujourd'hui" in html.unescape(page.get_data(as_text=True))
    assert reload(db_session, User, me.id).habilitation_ends_on is None


def test_an_end_before_the_start_is_refused_in_french(app, world, db_session):
    admin = client_as(app, "admin")
    director = world["users"]["director"]
    page = post(admin, f"/admin/utilisateurs/{director.id}", {
        "full_name": "Test director", "role": "director", "structure_id": "0",
        "institution": "departement", "habilitation_starts_on": "2026-03-01",
        "habilitation_ends_on": "2026-02-01"})
    assert "précède son début" in page.get_data(as_text=True)
    assert reload(db_session, User, director.id).habilitation_ends_on is None


def _login(app, email):
    client = app.test_client()
    token = csrf_token(client, "/connexion")
    return client, client.post("/connexion", data={"csrf_token": token, "email": email,
                                                   "password": PASSWORD})


def test_habilitation_dates_are_enforced_at_login(app, world, db_session):
    today = users.paris_today()
    director = world["users"]["director"]
    director.habilitation_starts_on = today + timedelta(days=1)
    db_session.commit()
    _, response = _login(app, "director@test.invalid")
    assert response.status_code == 401
    assert "pas habilité à cette date" in response.get_data(as_text=True)
    director.habilitation_starts_on, director.habilitation_ends_on = today, today
    db_session.commit()
    _, response = _login(app, "director@test.invalid")
    assert response.status_code == 302  # both bounds are included


def test_a_session_stops_opening_pages_once_the_habilitation_has_ended(app, world, db_session):
    director = world["users"]["director"]
    client, _ = _login(app, "director@test.invalid")
    assert client.get("/").status_code == 200
    director.habilitation_ends_on = users.paris_today() - timedelta(days=1)
    db_session.commit()
    response = client.get("/")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]


def test_accounts_past_their_end_are_deactivated_and_audited(world, db_session, keyring):
    today = date(2026, 12, 8)
    director, dpo = world["users"]["director"], world["users"]["dpo"]
    director.habilitation_ends_on = today - timedelta(days=1)
    dpo.habilitation_ends_on = today  # its last day: still active
    db_session.flush()
    assert users.deactivate_expired(db_session, keyring, WORKER, today) == [director.id]
    assert not director.active and dpo.active and director.session_version == 1
    assert users.deactivate_expired(db_session, keyring, WORKER, today) == []
    assert _actions(db_session).count("user_expired") == 1


def test_an_account_past_its_end_is_not_reactivated_before_its_end_moves(app, world,
                                                                         db_session):
    director = world["users"]["director"]
    director.active, director.habilitation_ends_on = False, date(2020, 1, 31)
    db_session.commit()
    page = post(client_as(app, "admin"), f"/admin/utilisateurs/{director.id}/activer",
                form_url="/admin/utilisateurs")
    assert "modifiez d&#39;abord sa date de fin" in flash_text(page)
    assert reload(db_session, User, director.id).active is False


def _colleague(db_session, world):
    return users.create_user(db_session, email="colleague@test.invalid", full_name="Collègue",
                             password=PASSWORD, role=users.RoleSpec(
                                 "referent", structure_id=world["structures"]["ssd"].id))


def test_a_departing_referents_open_sheets_go_to_a_colleague_who_is_told(app, world,
                                                                          db_session, vault):
    referent = world["users"]["referent"]
    colleague = _colleague(db_session, world)
    ssd = world["structures"]["ssd"]
    draft = make_sheet(db_session, vault, ssd, canary_identity(5), author_id=referent.id)
    submitted = make_sheet(db_session, vault, ssd, canary_identity(6), author_id=referent.id,
                           status="soumise")
    closed = make_sheet(db_session, vault, ssd, canary_identity(7), author_id=referent.id)
    closed.status = "close"
    db_session.commit()
    admin = client_as(app, "admin")
    page = admin.get(f"/admin/utilisateurs/{referent.id}/fiches").get_data(as_text=True)
    assert "Collègue" in page and "Test other_referent" not in page  # same structure only
    page = post(admin, f"/admin/utilisateurs/{referent.id}/fiches",
                {"colleague_id": str(colleague.id)})
    assert "2 fiche(s) confiée(s) à Collègue" in flash_text(page)
    db_session.expire_all()
    authors = dict(db_session.execute(select(Sheet.id, Sheet.author_id)).all())
    assert authors[draft.id] == authors[submitted.id] == colleague.id
    assert authors[closed.id] == referent.id
    told = db_session.scalars(select(Notification).where(
        Notification.kind == "sheet_reassigned")).all()
    assert {(n.user_id, n.sheet_id) for n in told} == {(colleague.id, draft.id),
                                                       (colleague.id, submitted.id)}
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "sheets_reassigned"))
    assert set(event.object_ids.split(",")) == {str(draft.id), str(submitted.id)}
    assert event.purpose == f"users:{referent.id}->{colleague.id}"


def test_an_account_already_moved_elsewhere_still_hands_over_its_sheets(world, db_session,
                                                                       vault):
    referent, ssd = world["users"]["referent"], world["structures"]["ssd"]
    sheet = make_sheet(db_session, vault, ssd, canary_identity(5), author_id=referent.id)
    colleague = _colleague(db_session, world)
    users.update_account(db_session, vault, referent, full_name=referent.full_name,
                         role=users.RoleSpec("referent",
                                             structure_id=world["structures"]["other"].id),
                         habilitation=(None, None))
    assert account_lifecycle.colleagues(db_session, referent) == [colleague]
    assert account_lifecycle.reassign_open_sheets(db_session, vault, referent,
                                                  colleague) == [sheet.id]


def test_sheets_never_go_to_another_structure(world, db_session, vault):
    referent = world["users"]["referent"]
    make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(5),
               author_id=referent.id)
    stranger = world["users"]["other_referent"]
    with pytest.raises(InvalidInputError, match="structure des fiches en cours"):
        account_lifecycle.reassign_open_sheets(db_session, vault, referent, stranger)


def _members(db_session, circonscription):
    return [save_member(db_session, None, circonscription_id=circonscription.id,
                        structure_id=None, name=name, function="Conseillère", kind=kind,
                        acco_glo=False, active=True)
            for name, kind in (("Titulaire CAF", "permanent"), ("Suppléante CAF", "invite"))]


def test_a_facilitator_names_a_members_suppleant_of_the_same_instance(app, world, db_session):
    titular, substitute = _members(db_session, world["north"])
    stranger, _ = _members(db_session, world["south"])
    db_session.commit()
    facilitator = client_as(app, "facilitator")
    url = f"/seances/membres/{world['north'].id}/{titular.id}/suppleant"
    page = post(facilitator, url, {"substitute_id": str(stranger.id)},
                form_url=f"/seances/membres/{world['north'].id}")
    assert "même instance" in page.get_data(as_text=True)
    page = post(facilitator, url, {"substitute_id": str(substitute.id)},
                form_url=f"/seances/membres/{world['north'].id}")
    assert "Suppléance enregistrée." in flash_text(page)
    assert reload(db_session, Member, titular.id).substitute_id == substitute.id
    # What is not an id (a Unicode digit, a number past any id) means « none », never a 500
    for typed in ("²", "9" * 30):
        page = post(facilitator, url, {"substitute_id": typed},
                    form_url=f"/seances/membres/{world['north'].id}")
        assert page.status_code == 200
    assert reload(db_session, Member, titular.id).substitute_id is None


def test_a_declining_member_brings_in_their_suppleant(world, db_session, vault):
    meeting = world["meeting"]
    titular, substitute = _members(db_session, world["north"])
    set_substitute(db_session, vault, titular, substitute)
    row = MeetingMember(meeting=meeting, member_id=titular.id)
    db_session.add(row)
    db_session.flush()
    record_answers(db_session, vault, meeting, {row.id: ("decline", "")})
    invited = {m.member_id for m in meeting.members}
    assert substitute.id in invited
    record_answers(db_session, vault, meeting, {row.id: ("decline", "")})
    assert [m.member_id for m in meeting.members].count(substitute.id) == 1
    assert "member_saved" in _actions(db_session)
