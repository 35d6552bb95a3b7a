"""Each context builder on a real database, with a worker's vault (no identity chain):
render, open with python-docx, check the pseudonymised content and that no identity leaks."""

import re
from datetime import date, datetime

import pytest
from sqlalchemy import select

from generator.contexts import BUILDERS, information_context, sample_context
from generator.render import render, template_path
from shared.crypto import KeyRing
from shared.db import make_session_factory
from shared.demo import demo_values
from shared.domain import audit
from shared.domain.meetings import (
    ActionInput,
    adjourn,
    create_meeting,
    invite_members,
    member_label,
    record_avis,
    save_member,
    set_secretary,
)
from shared.domain.reference import reference_labels
from shared.domain.sheets import write_values
from shared.encrypted import Vault
from shared.models import (
    AgendaItem,
    AuditEvent,
    Decision,
    DecisionAction,
    GeneratedDocument,
    Meeting,
    MeetingMember,
    Member,
    MinutesVisa,
    Sheet,
)
from tests.factories import PLANNED_ON, canary_identity, canary_values, make_sheet
from tests.helpers import document_text, docx_xml

TODAY = date(2026, 12, 16)
WORKER_CHAINS = ("content", "audit", "jobs")
SHARED_DETAIL = "Suivi psychologique engagé, détail partagé"
UNSHARED_DETAIL = "Mesure de curatelle, détail non partagé"
REFERENT_CONTACT = ("Fonction-du-referent-canari", "0912345678")
EARLIER_ACTION = "Bilan de compétences à organiser"
AVIS_ACTION = "Aide au permis de conduire"
MOTIVATION = "Le parcours progresse ; appui nécessaire sur la mobilité."


def shape_matches(real, sample, path="") -> None:
    """The builder's output has the structure of sample_context (what uploads are tested on)."""
    if isinstance(sample, dict):
        assert isinstance(real, dict) and set(real) == set(sample), path
        for key in sample:
            shape_matches(real[key], sample[key], f"{path}.{key}")
    elif isinstance(sample, list):
        assert isinstance(real, list), path
        for item in real:
            shape_matches(item, sample[0], f"{path}[]")
    else:
        assert type(real) is type(sample), path


@pytest.fixture
def scene(world, db_session, vault):
    """The world's session with members, an earlier session (a passage of the first person,
    an open préconisation about a third one), and sheet contents with sensitive details shared
    for the first person only."""
    meeting, sheets, structures = world["meeting"], world["sheets"], world["structures"]
    labels = reference_labels(db_session)
    first = demo_values(0) | {"partager_sensible": "oui", "sante_detail": SHARED_DETAIL,
                              "motifs_secondaires": ["situation_complexe"],
                              "referent_fonction": REFERENT_CONTACT[0],
                              "referent_telephone": REFERENT_CONTACT[1]}
    second = demo_values(1) | {"partager_sensible": "non", "justice_detail": UNSHARED_DETAIL,
                               "referent_fonction": REFERENT_CONTACT[0],
                               "referent_telephone": REFERENT_CONTACT[1]}
    write_values(vault, sheets[0], first)
    write_values(vault, sheets[1], second)
    assert set(first["motifs_secondaires"]) <= set(labels["motif"])

    save_member(db_session, None, circonscription_id=world["north"].id,
                structure_id=structures["ssd"].id, name="Dominique Permanent",
                function="Responsable de circonscription", kind="permanent", acco_glo=False,
                active=True)
    save_member(db_session, None, circonscription_id=world["north"].id,
                structure_id=structures["ali"].id, name="Alex Invité",
                function="Conseiller·ère", kind="invite", acco_glo=False, active=True)
    invite_members(db_session, meeting)
    for row in meeting.members:  # the invited one is not automatic: add them here
        row.answer = "confirme"
    guest = db_session.scalar(select(Member).where(Member.name == "Alex Invité"))
    db_session.add(MeetingMember(meeting=meeting, member_id=guest.id, answer="remplace",
                                 replacement="Sam Suppléant"))

    earlier = create_meeting(db_session, world["north"], datetime(2026, 11, 10, 14, 0),
                             "Salle 1", today=PLANNED_ON)
    earlier.state = "cloturee"
    db_session.add(AgendaItem(meeting=earlier, part="situation", sheet=sheets[0],
                              time_slot="14:30", outcome="ajourne",
                              adjourn_reason="Complément d'information demandé."))
    # Another person, examined earlier, whose préconisation is still open.
    identity = canary_identity(5)
    world["identities"].append(identity)
    other = make_sheet(db_session, vault, structures["ali"], identity, status="recevable")
    world["other_sheet"] = other
    db_session.add(AgendaItem(meeting=earlier, part="situation", sheet=other,
                              time_slot="15:00", outcome="examine"))
    decision = Decision(meeting_id=earlier.id, sheet=other, avis="maintien")
    db_session.add(decision)
    db_session.flush()
    vault.seal(decision, "motivation", "Motivation de la séance précédente.")
    action = DecisionAction(decision=decision, owner_structure_id=structures["ali"].id,
                            due_on=date(2027, 1, 10))
    db_session.add(action)
    db_session.flush()
    vault.seal(action, "label", EARLIER_ACTION)
    db_session.commit()
    return world


def hold_and_decide(world, db_session, vault) -> None:
    """Session held: present members, an avis for the first sheet, the second adjourned."""
    meeting, sheets = world["meeting"], world["sheets"]
    meeting.state = "tenue"
    for row in meeting.members:
        row.attendance = "present" if row.member.kind == "permanent" else "remplace"
    items = {i.sheet_id: i for i in meeting.items if i.sheet_id}
    record_avis(db_session, vault, meeting, items[sheets[0].id].id, avis="maintien",
                avis_codes=set(reference_labels(db_session)["avis"]), motivation=MOTIVATION,
                actions=[ActionInput(AVIS_ACTION, world["structures"]["ali"].id,
                                     date(2027, 3, 15))],
                come_back_on=date(2027, 4, 1), formal_decision_by="departement")
    adjourn(db_session, vault, meeting, items[sheets[1].id].id, "Référent·e absent·e.")
    db_session.commit()


@pytest.fixture
def build(engine, settings):
    """Build and render a kind as the worker does: fresh session, content chain only."""
    keyring = KeyRing.load(settings.keyring_path, WORKER_CHAINS)

    def run(kind: str, meeting_id: int, sheet_id: int | None = None):
        with make_session_factory(engine)() as session:
            vault = Vault(session, keyring, audit.WORKER)
            meeting = session.get(Meeting, meeting_id)
            sheet = session.get(Sheet, sheet_id) if sheet_id else None
            builder, keys = BUILDERS[kind]
            context = builder(session, vault, meeting, 4, TODAY, sheet=sheet)
            session.commit()
        assert set(context) == keys
        shape_matches(context, sample_context(kind))
        data = render(template_path(settings.templates_dir, kind), context)
        return context, data, document_text(data), docx_xml(data)

    return run


def assert_no_identity(world, xml: str) -> None:
    for identity in world["identities"]:
        for value in canary_values(identity):
            assert value not in xml
    for value in REFERENT_CONTACT:
        assert value not in xml


def test_agenda_on_a_real_session(scene, build):
    context, _data, text, xml = build("agenda", scene["meeting"].id)
    for sheet in scene["sheets"]:
        assert f"{sheet.reference} – {sheet.beneficiary.pseudonym}" in text
    assert "Présentation de l'ALI" in text
    assert "14\u00a0h\u00a030" in text and "14\u00a0h\u00a050" in text
    # Every item has a presenter and a time (its slot, else the end of the item before).
    items = context["partnership"] + context["situations"] + context["icag"]
    assert all(i["time_slot"] for i in items)
    assert all(i.get("presenter") or i.get("structure") for i in items)
    assert context["followups_time"] and "Vers " + context["followups_time"] in text
    assert "Retour (passage du 10/11/2026)" in text and "Nouvelle situation" in text
    assert "Service social départemental de Saint-Denis" in text
    assert "Demande de réorientation de parcours" in text
    assert 'Salle 2 & "annexe" <rdc>' in text
    assert "mardi 15 décembre 2026 à 14\u00a0h\u00a000" in text
    # Part 4: the earlier préconisation by reference only (no label, no pseudonym).
    assert [f["reference"] for f in context["followups"]] == [scene["other_sheet"].reference]
    assert scene["other_sheet"].beneficiary.pseudonym not in xml
    assert EARLIER_ACTION not in xml
    assert "Dominique Permanent" in text and "Membre permanent" in text
    assert "Test facilitator" in text
    assert_no_identity(scene, xml)


def test_dossier_on_a_real_session(scene, build, db_session):
    context, _data, text, xml = build("dossier", scene["meeting"].id)
    first, second = scene["sheets"]
    for sheet in scene["sheets"]:
        assert f"{sheet.reference} – {sheet.beneficiary.pseudonym}" in text
    assert [c["number"] for c in context["copies"]] == ["1", "2"]
    assert "Exemplaire n° ______ sur 2" in text and "À détruire après la séance" in text
    # Situational fields with their labels, freins as categories with intensity.
    assert "Ancienneté au RSA" in text and "Personne isolée" in text
    assert "Santé (physique, psychique, addictions)" in text and "Bloquant" in text
    assert "Mobilité (permis, transport, périmètre)" in text and "Important" in text
    assert "Situation complexe / cumul de freins" in text  # secondary motif label
    # Sensitive details: only where the referent chose to share them.
    assert SHARED_DETAIL in text and UNSHARED_DETAIL not in xml
    fiches = {f["reference"]: f for f in context["sheets"]}
    assert fiches[first.reference]["sensitive_shared"] is True
    assert fiches[second.reference]["sensitive"] == []
    assert "Précisions sensibles non partagées" in text
    # Previous passages and the annex of open préconisations.
    assert fiches[first.reference]["passages"][0]["avis"] == "Ajournée"
    assert fiches[second.reference]["passages"] == [] and "Premier passage en instance." in text
    assert EARLIER_ACTION in text and "10/01/2027" in text
    assert "Une réorientation vers l'ALI est-elle pertinente" in text
    assert_no_identity(scene, xml)
    # The worker opened the sensitive column for this purpose, never the referent's one.
    events = db_session.scalars(select(AuditEvent).where(AuditEvent.actor_label == "worker")).all()
    assert any("sensitive_data" in e.fields and e.purpose == "dossier de séance" for e in events)
    assert not any("referent_data" in e.fields for e in events)


def test_attendance_sheet_names_no_beneficiary(scene, build, db_session, vault):
    context, _data, text, xml = build("attendance", scene["meeting"].id)
    # Before the session: the presence columns are blank, to be ticked at the door.
    assert {(m["present"], m["excused"], m["absent"]) for m in context["members"]} == {
        ("", "", "")}
    assert "Dominique Permanent" in text and "Alex Invité" in text and "Invité" in text
    assert "Engagement de confidentialité" in text and "Confirmé" in text
    assert "Remplacé par Sam Suppléant" in text
    assert "Référent·e présentant les situations n° 1 et 2" in text
    assert "14\u00a0h\u00a030, 14\u00a0h\u00a050" in text
    assert "Service social départemental de Saint-Denis" in text
    for sheet in scene["sheets"]:
        assert sheet.reference not in xml and sheet.beneficiary.pseudonym not in xml
    assert_no_identity(scene, xml)

    # Produced after the session: filled from the attendance recorded.
    hold_and_decide(scene, db_session, vault)
    context, _data, _text, _xml = build("attendance", scene["meeting"].id)
    marks = {m["name"]: (m["present"], m["excused"], m["absent"]) for m in context["members"]}
    assert marks == {"Dominique Permanent": ("X", "", ""),
                     "Alex Invité": ("", "Remplacé·e", "")}


def test_minutes_by_reference_only_with_signature_blocks(scene, build, db_session, vault):
    hold_and_decide(scene, db_session, vault)
    first, second = scene["sheets"]
    context, _data, text, xml = build("minutes", scene["meeting"].id)
    assert first.reference in text and second.reference in text
    for sheet in scene["sheets"]:
        assert sheet.beneficiary.pseudonym not in xml  # the PV is archived: reference only
    assert "Maintien du parcours et du référent, avec préconisations" in text
    assert MOTIVATION in text and AVIS_ACTION in text and "15/03/2027" in text
    assert "01/04/2027" in text and "Oui, par le Département" in text
    assert "Motif de l'ajournement\u00a0: Référent·e absent·e." in text
    assert "Situations examinées\u00a0: 1 – ajournées\u00a0: 1." in text
    assert context["attendance_totals"] == {"present": "1", "excuse": "0", "absent": "0",
                                            "remplace": "1"}
    assert "Remplacé·e par Sam Suppléant" in text
    assert "Pour le Département\u00a0: le DGA ou son ou sa délégataire" in text
    assert ("Pour France Travail\u00a0: la Directrice territoriale ou son ou sa délégataire"
            in text)
    assert [v["sha256"] for v in context["visas"]] == ["", ""]
    assert "Nom et qualité" in text and "Version approuvée" not in text
    assert "Fait à Saint-Denis, le mercredi 16 décembre 2026." in text
    # Follow-ups of earlier sessions, with the préconisation's text.
    assert [f["preconisation"] for f in context["followups"]] == [EARLIER_ACTION]
    assert EARLIER_ACTION in text
    assert SHARED_DETAIL not in xml and UNSHARED_DETAIL not in xml
    assert_no_identity(scene, xml)


def test_minutes_name_the_secretary_and_the_version_both_directors_signed(
        scene, build, db_session, vault):
    hold_and_decide(scene, db_session, vault)
    meeting = scene["meeting"]
    present = next(row.member for row in meeting.members if row.attendance == "present")
    set_secretary(db_session, meeting, f"member:{present.id}")
    # A visa on a version awaiting the other one is not printed once the minutes are sent
    # back for correction: only the version both signed stands.
    signed = GeneratedDocument(meeting_id=meeting.id, kind="minutes", content_version=1,
                               number=2, filename="proces-verbal-2026-12-15-v2.docx",
                               media_type="x", size=0, body=b"")
    db_session.add(signed)
    db_session.flush()
    digest = "ab" * 32
    for institution, hour in (("france_travail", 9), ("departement", 16)):
        db_session.add(MinutesVisa(meeting_id=meeting.id, document_id=signed.id,
                                   institution=institution,
                                   user_id=scene["users"]["director"].id, sha256=digest,
                                   signed_at=datetime(2026, 12, 20, hour, 5)))
    meeting.state = "pv_redige"
    db_session.commit()
    context, _data, text, _xml = build("minutes", meeting.id)
    assert member_label(present) in text
    assert [v["sha256"] for v in context["visas"]] == ["", ""]
    assert context["approved"]["sha256"] == "" and digest not in text

    meeting.state = "pv_signe"
    db_session.commit()
    context, _data, text, _xml = build("minutes", meeting.id)
    departement, france_travail = context["visas"]
    assert departement["date"] == "20/12/2026 à 17\u00a0h\u00a005"  # Paris time
    assert france_travail["name"] == "Test director"
    assert "Visa apposé par Test director le 20/12/2026 à 10\u00a0h\u00a005." in text
    assert context["approved"] == {"number": "2", "sha256": digest,
                                   "filename": "proces-verbal-2026-12-15-v2.docx"}
    assert "proces-verbal-2026-12-15-v2.docx (version 2)" in text and digest in text
    assert "Fait à Saint-Denis, le dimanche 20 décembre 2026." in text


def test_feedback_for_one_situation(scene, build, db_session, vault):
    hold_and_decide(scene, db_session, vault)
    first = scene["sheets"][0]
    context, _data, text, xml = build("feedback", scene["meeting"].id, first.id)
    assert first.reference in text and first.beneficiary.pseudonym in text
    assert scene["sheets"][1].reference not in xml
    assert "Maintien du parcours et du référent, avec préconisations" in text
    assert MOTIVATION in text and AVIS_ACTION in text and "ALI de Saint-Denis" in text
    assert "15/03/2027" in text and "à partir du 01/04/2027, séance à fixer" in text
    assert "Oui, par le Département" in text and "décision formelle du Département" in text
    facilitator = scene["users"]["facilitator"]
    assert context["contact"] == (f"{facilitator.full_name}, chargé·e d'animation territoriale "
                                  f"de l'ICL-I, circonscription de Saint-Denis – "
                                  f"{facilitator.email}")
    assert not re.search(r"\([^)]*\(", text), "nested parentheses"
    assert SHARED_DETAIL not in xml
    assert_no_identity(scene, xml)


def test_feedback_needs_a_sheet_of_the_session(scene, build):
    with pytest.raises(ValueError):
        build("feedback", scene["meeting"].id)


def test_the_information_note_has_an_easy_to_read_version_and_the_instances_dpo(
        scene, engine, settings):
    sheet = scene["sheets"][0]
    keyring = KeyRing.load(settings.keyring_path, WORKER_CHAINS)
    with make_session_factory(engine)() as session:
        context = information_context(
            session, Vault(session, keyring, audit.WORKER), None, 1, TODAY,
            session.get(Sheet, sheet.id), dpo_contact="DPO du Département, dpo@cd93.invalid")
    text = document_text(render(template_path(settings.templates_dir, "information"), context))
    assert text.count("dpo@cd93.invalid") == 2  # the easy-to-read version and the full one
    assert "En bref, en facile à lire" in text and "Il ne vous sanctionne pas." in text
    assert f"Le groupe voit seulement un numéro\u00a0: {sheet.reference}." in text
    assert "ne pas diffuser" not in text  # the note is given to the person
    assert "Information de la personne accompagnée" in text
