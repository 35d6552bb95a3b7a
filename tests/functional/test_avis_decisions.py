"""Avis corrections (before signature; erratum after) and formal decisions at the second
level, through the facilitator's and the directors' pages."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from generator.contexts import feedback_context
from shared.domain import avis, decisions, meetings
from shared.errors import InvalidInputError, InvalidTransitionError
from shared.models import (
    AuditEvent,
    AvisRevision,
    Decision,
    DocumentJob,
    GeneratedDocument,
    Notification,
)
from tests.helpers import DGA, csrf_token, give_avis, logged_in


def audit_count(db_session, action):
    return db_session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == action))


def correction_form(client, url, **changes):
    data = {"csrf_token": csrf_token(client, url), "avis": "reorientation_socio_pro",
            "motivation": "Réorientation vers l'ALI, après échange.",
            "action_0_label": "Premier rendez-vous à l'ALI", "come_back_on": "",
            "formal_decision_by": "departement", "reason": "Erreur de saisie en séance."}
    return client.post(url, data=data | changes, follow_redirects=True)


def test_an_avis_is_corrected_before_signature_and_its_previous_version_kept(
        app, examined, db_session, vault):
    meeting, sheet, decision, item_url = examined
    facilitator = logged_in(app, "facilitator@test.invalid")
    page = facilitator.get(f"{item_url}/corriger").get_data(as_text=True)
    assert "Poursuivre l&#39;accompagnement." in page and 'value="Atelier CV"' in page

    # No reason: refused in French, nothing changes
    response = correction_form(facilitator, f"{item_url}/corriger", reason="")
    assert "Indiquez le motif de la correction." in response.get_data(as_text=True)
    db_session.expire_all()
    assert decision.avis == "maintien" and decision.revisions == []

    response = correction_form(facilitator, f"{item_url}/corriger")
    assert f"Avis corrigé pour {sheet.reference}." in response.get_data(as_text=True)
    db_session.expire_all()
    assert decision.avis == "reorientation_socio_pro"
    assert vault.open(decision, "motivation").reveal() == \
        "Réorientation vers l'ALI, après échange."
    assert [vault.open(a, "label").reveal() for a in decision.actions] == [
        "Premier rendez-vous à l'ALI"]
    [(revision, previous)] = avis.previous_versions(vault, decision)
    assert (revision.kind, revision.avis) == ("correction", "maintien")
    assert previous["motivation"] == "Poursuivre l'accompagnement."
    assert [a["label"] for a in previous["actions"]] == ["Atelier CV"]
    assert previous["reason"] == "Erreur de saisie en séance."
    assert audit_count(db_session, "avis_correction") == 1
    db_session.commit()
    assert "corrigé" in facilitator.get(f"/seances/{meeting.id}").get_data(as_text=True)

    # Once the PV is sent for signature: no correction, no erratum before the visas
    meeting.state = "pv_en_signature"
    db_session.commit()
    response = facilitator.get(f"{item_url}/corriger", follow_redirects=True)
    assert "ne peut pas être corrigé maintenant" in response.get_data(as_text=True)
    with pytest.raises(InvalidTransitionError, match="publiez un erratum"):
        avis.correct(db_session, vault, decision, avis="maintien", avis_codes={"maintien"},
                     motivation="", actions=[], come_back_on=None,
                     formal_decision_by="departement", reason="Trop tard.")
    db_session.rollback()
    assert db_session.scalar(select(func.count()).select_from(AvisRevision)) == 1


def test_after_signature_an_erratum_makes_a_new_pv_version_for_visa(
        app, world, examined, db_session, vault):
    meeting, _sheet, decision, item_url = examined
    meeting.state = "pv_signe"
    db_session.commit()
    version = meeting.content_version
    facilitator = logged_in(app, "facilitator@test.invalid")
    assert "Publier un erratum" in facilitator.get(f"/seances/{meeting.id}").get_data(
        as_text=True)
    response = correction_form(facilitator, f"{item_url}/corriger",
                               reason="Erratum : structure de réorientation inexacte.")
    assert "le nouveau procès-verbal attend les visas" in response.get_data(as_text=True)
    db_session.expire_all()
    assert meeting.state == "pv_en_signature"
    assert meeting.content_version == version + 1
    assert db_session.scalar(select(DocumentJob.id).where(
        DocumentJob.meeting_id == meeting.id, DocumentJob.kind == "minutes",
        DocumentJob.content_version == version + 1)) is not None
    assert [r.kind for r in decision.revisions] == ["erratum"]
    assert audit_count(db_session, "avis_erratum") == 1
    directors = {world["users"]["director"].id, world["users"]["other_director"].id}
    assert set(db_session.scalars(select(Notification.user_id).where(
        Notification.kind == "visa_pending", Notification.meeting_id == meeting.id))) == directors


def test_a_formal_decision_is_awaited_listed_then_recorded_on_the_fiche_retour(
        app, world, examined, db_session, vault):
    meeting, sheet, decision, item_url = examined
    give_avis(db_session, vault, meeting, world["sheets"][1], "Avis définitif.")
    meetings.transition(db_session, vault, meeting, "finish_avis")
    db_session.commit()
    facilitator = logged_in(app, "facilitator@test.invalid")
    page = facilitator.get("/suivi/decisions-en-attente").get_data(as_text=True)
    assert f"{sheet.reference} – {sheet.beneficiary.pseudonym}" in page
    director_page = logged_in(app, "director@test.invalid").get(
        "/suivi/decisions-en-attente").get_data(as_text=True)
    assert sheet.reference in director_page
    assert sheet.beneficiary.pseudonym not in director_page  # the reference, as in the PV
    assert sheet.reference not in logged_in(app, "other.director@test.invalid").get(
        "/suivi/decisions-en-attente").get_data(as_text=True)  # France Travail's list
    assert sheet.reference not in logged_in(app, "other.facilitator@test.invalid").get(
        "/suivi/decisions-en-attente").get_data(as_text=True)
    context = feedback_context(db_session, vault, meeting, 1, date.today(), sheet)
    assert context["formal_decision"] == "Oui, par le Département – en attente"

    url = f"{item_url}/decision-formelle"
    before = (meeting.day - timedelta(days=1)).isoformat()
    response = facilitator.post(url, follow_redirects=True, data={
        "csrf_token": csrf_token(facilitator, url), "outcome": "conforme",
        "decided_on": before, "author": DGA, "detail": ""})
    assert "la date de la décision suit la séance" in response.get_data(as_text=True)
    response = facilitator.post(url, follow_redirects=True, data={
        "csrf_token": csrf_token(facilitator, url), "outcome": "modifiee",
        "decided_on": date.today().isoformat(), "author": DGA, "detail": ""})
    assert "précisez en quoi la décision diffère" in response.get_data(as_text=True)
    db_session.expire_all()
    assert decision.formal is None

    filled = {"outcome": "modifiee", "decided_on": date.today().isoformat(), "author": DGA,
              "detail": "Réorientation acceptée, avec un délai de trois mois."}
    response = facilitator.post(url, follow_redirects=True,
                                data={"csrf_token": csrf_token(facilitator, url), **filled})
    # The service's name is caught as an organisation: the facilitator dismisses it, with a
    # reason, on the same page (issue 15: findings are dismissed one by one).
    keys = re.findall(r'name="dismiss_([^"]+)"', response.get_data(as_text=True))
    assert keys and decision.formal is None
    response = facilitator.post(url, follow_redirects=True, data={
        "csrf_token": csrf_token(facilitator, url), **filled,
        **{f"dismiss_{html.unescape(key)}": "partenaire" for key in keys}})
    assert "la fiche retour est mise à jour" in response.get_data(as_text=True)
    db_session.expire_all()
    assert decision.formal_state == "prise"
    assert (decision.formal.outcome, decision.formal.author) == ("modifiee", DGA)
    assert audit_count(db_session, "formal_decision_recorded") == 1
    assert decisions.pending(db_session, circonscription_ids={meeting.circonscription_id}) == []
    assert db_session.scalar(select(DocumentJob.status).where(
        DocumentJob.kind == "feedback", DocumentJob.sheet_id == sheet.id)) == "queued"
    context = feedback_context(db_session, vault, meeting, 2, date.today(), sheet)
    assert context["formal_decision"] == (
        f"Oui, par le Département – décision prise le {date.today():%d/%m/%Y} par {DGA} : "
        "Décision différente de l'avis. Réorientation acceptée, avec un délai de trois mois.")
    assert any("Lui notifier la décision formelle du Département" in line
               for line in context["information"])
    db_session.commit()
    assert "Aucune décision en attente." in facilitator.get(
        "/suivi/decisions-en-attente").get_data(as_text=True)
    # Recorded once; an avis that needs none has nothing to record
    with pytest.raises(InvalidTransitionError, match="déjà enregistrée"):
        decisions.record(db_session, vault, decision, outcome="conforme",
                         decided_on=date.today(), author=DGA, detail="", actor_id=None)
    final = Decision(meeting_id=meeting.id, sheet=sheet, avis="maintien")
    with pytest.raises(InvalidTransitionError, match="définitif"):
        decisions.record(db_session, vault, final, outcome="conforme",
                         decided_on=date.today(), author=DGA, detail="", actor_id=None)
    db_session.rollback()


def test_a_formal_decision_naming_the_person_is_refused(world, examined, db_session, vault):
    _meeting, _sheet, decision, _url = examined
    identity = world["identities"][0]
    with pytest.raises(InvalidInputError, match="Reformulez"):
        decisions.record(db_session, vault, decision, outcome="modifiee",
                         decided_on=date.today(), author=DGA,
                         detail=f"Accord pour {identity.prenom} {identity.nom}.",
                         actor_id=None)
    db_session.rollback()
    assert decision.formal is None


def test_a_correction_after_the_pv_was_drafted_builds_its_new_version(
        examined, db_session, vault):
    meeting, _sheet, decision, _url = examined
    meeting.state = "pv_redige"
    drafted = GeneratedDocument(meeting_id=meeting.id, kind="minutes",
                                content_version=meeting.content_version, filename="pv.docx",
                                media_type="application/octet-stream", size=2, body=b"")
    db_session.add(drafted)
    db_session.flush()
    vault.seal_blob(drafted, "body", b"pv")
    avis.correct(db_session, vault, decision, avis="maintien", avis_codes={"maintien"},
                 motivation="Poursuivre, avec un point d'étape.", actions=[],
                 come_back_on=None, formal_decision_by="departement",
                 reason="Précision ajoutée à la relecture du PV.")
    assert meeting.state == "pv_redige"
    assert db_session.scalar(select(DocumentJob.status).where(
        DocumentJob.meeting_id == meeting.id, DocumentJob.kind == "minutes",
        DocumentJob.content_version == meeting.content_version)) == "queued"
    assert [r.kind for r in decision.revisions] == ["correction"]
    db_session.rollback()
