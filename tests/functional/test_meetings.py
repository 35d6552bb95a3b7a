"""A whole month of a facilitator's work, through the real forms (CSRF on)."""

import hashlib
import html
import re
from datetime import date, timedelta

from sqlalchemy import func, select

from shared.models import (
    AgendaItem,
    Decision,
    GeneratedDocument,
    Meeting,
    MeetingMember,
    Member,
    MinutesVisa,
    Sheet,
)
from tests.factories import canary_identity, make_sheet
from tests.helpers import (
    client_as,
    csrf_token,
    docx_xml,
    flash_text,
    post,
    reload,
    run_queue,
)

PRESENTER = {"presenter_structure": "PLIE de Plaine Commune",
             "presenter_role": "Chargée de mission"}


def test_a_whole_month_of_one_instance(facilitator, app, world, db_session, vault, redis,
                                       settings):
    north = world["north"]
    structures = world["structures"]
    referent = world["users"]["referent"]
    sheets = [make_sheet(db_session, vault, structures["ssd"], canary_identity(20 + n),
                         author_id=referent.id, status="recevable") for n in range(3)]
    db_session.commit()

    # The monthly rhythm plans the coming sessions.
    page = post(facilitator, f"/seances/calendrier/{north.id}", {
        "weekday": "1", "week_of_month": "2", "at": "14:00", "place": "Maison de l'emploi",
        "video_link": "", "cutoff_days": "10", "dossier_days": "5"})
    assert "séance(s) planifiée(s)" in flash_text(page)
    planned = db_session.scalars(select(Meeting).where(Meeting.circonscription_id == north.id,
                                                       Meeting.state == "planifiee")).all()
    assert planned  # December has its session already (world); the following months get one
    assert all(m.starts_at.weekday() == 1 and 8 <= m.starts_at.day <= 14 for m in planned)
    future = max(planned, key=lambda m: m.starts_at)

    # Members: two permanent, the ACCO GLO counsellor invited for ICAG items.
    for name, kind, acco in [("Chef de circonscription", "permanent", "non"),
                             ("Directrice ALI", "permanent", "non"),
                             ("Conseillère ACCO GLO", "invite", "oui")]:
        post(facilitator, f"/seances/membres/{north.id}", {
            "name": name, "function": "", "structure_id": "0", "kind": kind,
            "acco_glo": acco})
    assert db_session.scalar(select(func.count()).select_from(Member)) == 3

    # Today's session, planned through the form.
    page = post(facilitator, "/seances/", {"circonscription_id": str(north.id),
                                           "day": date.today().isoformat(), "at": "09:30",
                                           "place": "Salle du conseil", "video_link": ""})
    assert "Séance planifiée." in flash_text(page)
    meeting = db_session.scalars(select(Meeting).where(Meeting.place == "Salle du conseil")
                                 ).one()
    url = f"/seances/{meeting.id}"
    assert len(meeting.members) == 2  # permanent members invited

    # Agenda: a partnership item, two situations (one ICAG entry).
    post(facilitator, f"{url}/points", {"title": "Présentation du PLIE", "duration": "20",
                                        **PRESENTER}, url)
    post(facilitator, f"{url}/inscrire", {"sheet_id": str(sheets[0].id), "time_slot": "10:00",
                                          "part": "situation", "icag_kind": ""}, url)
    page = post(facilitator, f"{url}/inscrire", {"sheet_id": str(sheets[1].id),
                                                 "time_slot": "10:20", "part": "icag",
                                                 "icag_kind": "entree"}, url)
    assert f"Fiche {sheets[1].reference} inscrite." in flash_text(page)
    meeting = reload(db_session, Meeting, meeting.id)
    assert [i.part for i in meeting.items] == ["partenariat", "situation", "icag"]
    assert len(meeting.members) == 3  # the ACCO GLO counsellor joins for the ICAG entry
    assert reload(db_session, Sheet, sheets[0].id).status == "inscrite"

    # Reorder: the first situation goes up.
    situation_item = meeting.items[1]
    post(facilitator, f"{url}/points/{situation_item.id}/monter", form_url=url)
    meeting = reload(db_session, Meeting, meeting.id)
    assert meeting.items[0].id == situation_item.id

    # Answers to the invitation.
    rows = {row.member.name: row for row in meeting.members}
    answers = {f"answer_{rows['Chef de circonscription'].id}": "confirme",
               f"answer_{rows['Directrice ALI'].id}": "remplace",
               f"replacement_{rows['Directrice ALI'].id}": "Adjointe ALI",
               f"answer_{rows['Conseillère ACCO GLO'].id}": "confirme"}
    page = post(facilitator, f"{url}/reponses", answers, url)
    assert "Réponses aux invitations enregistrées." in flash_text(page)

    # Convened: the agenda is frozen; an urgent late addition makes a new version.
    post(facilitator, f"{url}/etat/convene", form_url=url)
    meeting = reload(db_session, Meeting, meeting.id)
    assert meeting.state == "convoquee" and meeting.frozen_version == meeting.content_version
    post(facilitator, f"{url}/inscrire", {"sheet_id": str(sheets[2].id), "time_slot": "10:40",
                                          "part": "situation", "icag_kind": ""}, url)
    meeting = reload(db_session, Meeting, meeting.id)
    late = next(i for i in meeting.items if i.sheet_id == sheets[2].id)
    assert late.late and meeting.content_version > meeting.frozen_version

    # Attendance: refused before the day (the planned future session), taken on the day.
    future_url = f"/seances/{future.id}"
    post(facilitator, f"{future_url}/points", {"title": "Bilan", "duration": "10",
                                               **PRESENTER}, future_url)
    post(facilitator, f"{future_url}/etat/convene", form_url=future_url)
    future_row = reload(db_session, Meeting, future.id).members[0]
    page = post(facilitator, f"/seances/{future.id}/presences",
                {f"attendance_{future_row.id}": "present"}, f"/seances/{future.id}")
    assert "le jour de la séance ou après" in flash_text(page)
    assert reload(db_session, MeetingMember, future_row.id).attendance == ""

    attendance = {f"attendance_{rows['Chef de circonscription'].id}": "present",
                  f"attendance_{rows['Directrice ALI'].id}": "remplace",
                  f"replacement_{rows['Directrice ALI'].id}": "Adjointe ALI",
                  f"attendance_{rows['Conseillère ACCO GLO'].id}": "excuse"}
    page = post(facilitator, f"{url}/presences", attendance, url)
    assert "Présences enregistrées." in flash_text(page)
    assert "Présents : 1 · excusés : 1 · absents : 0 · remplacés : 1" in page.get_data(
        as_text=True)
    # Held: the secrétaire de séance is chosen among the members present and the CAT.
    chief = rows["Chef de circonscription"].member
    page = post(facilitator, f"{url}/etat/hold", form_url=url)
    assert "Choisissez le ou la secrétaire de séance" in flash_text(page)
    assert f'value="member:{chief.id}"' in page.get_data(as_text=True)
    assert f'value="member:{rows["Conseillère ACCO GLO"].member_id}"' not in page.get_data(
        as_text=True)  # excused: not a choice
    post(facilitator, f"{url}/etat/hold", {"secretary": f"member:{chief.id}"}, url)
    meeting = reload(db_session, Meeting, meeting.id)
    assert meeting.state == "tenue" and meeting.secretary_member_id == chief.id
    assert f"Secrétaire de séance&nbsp;: {chief.name}" in facilitator.get(url).get_data(
        as_text=True)

    # Examination: an avis with two actions, one adjournment, an avis on the late sheet.
    items = {i.sheet_id: i for i in reload(db_session, Meeting, meeting.id).items if i.sheet_id}
    due = (date.today() + timedelta(days=30)).isoformat()
    page = post(facilitator, f"{url}/points/{items[sheets[0].id].id}/avis", {
        "avis": "reorientation_socio_pro", "motivation": "Freins levés, projet d'emploi.",
        "come_back_on": "", "formal_decision_by": "departement",
        "action_0_label": "Prise de contact avec l'ALI", "action_0_owner":
            str(structures["ali"].id), "action_0_due": due,
        "action_1_label": "Bilan de compétences", "action_1_owner": "", "action_1_due": ""})
    assert f"Avis enregistré pour {sheets[0].reference}." in flash_text(page)
    page = post(facilitator, f"{url}/points/{items[sheets[1].id].id}/ajourner", {
        "reason": "Diagnostic partagé à compléter.", "target_id": "0"}, url)
    assert "Situation ajournée" in flash_text(page)
    post(facilitator, f"{url}/points/{items[sheets[2].id].id}/avis", {
        "avis": "sans_suite", "motivation": "", "come_back_on": "",
        "formal_decision_by": ""})
    decision = db_session.scalars(select(Decision).where(Decision.sheet_id == sheets[0].id)
                                  ).one()
    assert decision.formal_decision_by == "departement" and len(decision.actions) == 2
    assert vault.open(decision.actions[0], "label").reveal() == "Prise de contact avec l'ALI"
    # A situation with its avis offers no second form
    page = facilitator.get(f"{url}/points/{items[sheets[0].id].id}/avis")
    assert "déjà un avis" in html.unescape(page.get_data(as_text=True))
    assert "Enregistrer l'avis" not in html.unescape(page.get_data(as_text=True))

    # The adjourned sheet is proposed first for the next session.
    page = facilitator.get(f"/seances/{future.id}").get_data(as_text=True)
    assert f"{sheets[1].reference} – {sheets[1].beneficiary.pseudonym} (ajournée)" in page

    # The minutes: written, generated by the worker, sent, visaed by both directors.
    for action in ("finish_avis", "write_minutes"):
        page = post(facilitator, f"{url}/etat/{action}", form_url=url)
        assert "Séance :" in flash_text(page), (action, flash_text(page))
    page = facilitator.get(f"{url}/points/{items[sheets[2].id].id}/avis")  # PV rédigé
    assert "La saisie des avis n'est pas ouverte" in html.unescape(page.get_data(as_text=True))
    assert "Enregistrer l'avis" not in html.unescape(page.get_data(as_text=True))
    page = post(facilitator, f"{url}/etat/send_minutes", form_url=url)
    assert "Générez d'abord le procès-verbal" in html.unescape(flash_text(page))
    post(facilitator, f"{url}/documents/minutes", form_url=url)
    run_queue(settings, redis)
    page = post(facilitator, f"{url}/etat/send_minutes", form_url=url)
    assert "Séance : PV en signature." in flash_text(page)
    assert "sign_minutes" not in facilitator.get(url).get_data(as_text=True)
    sent = db_session.scalars(select(GeneratedDocument).where(
        GeneratedDocument.kind == "minutes")).one()
    for role, institution in (("director", "departement"), ("other_director", "france_travail")):
        director = client_as(app, role)
        review = f"/visas/{meeting.id}/{institution}"
        assert review in director.get("/visas/").get_data(as_text=True)
        assert director.get(f"/visas/documents/{sent.id}").status_code == 200  # read first
        assert "Apposer mon visa" in director.get(review).get_data(as_text=True)
        page = post(director, review, {"document_id": str(sent.id), "confirm": "1"},
                    form_url=review)
        assert "Visa apposé." in flash_text(page)
    assert reload(db_session, Meeting, meeting.id).state == "pv_signe"
    visas = db_session.scalars(select(MinutesVisa)).all()
    first = db_session.get(GeneratedDocument, visas[0].document_id)
    assert {v.institution for v in visas} == {"departement", "france_travail"}
    assert visas[0].sha256 == hashlib.sha256(vault.open_blob(first, "body")).hexdigest()
    run_queue(settings, redis)  # the final minutes carry both visas
    final = db_session.scalars(select(GeneratedDocument).where(
        GeneratedDocument.kind == "minutes").order_by(GeneratedDocument.id.desc())).first()
    assert final.id != first.id and visas[0].sha256[:16] in docx_xml(
        vault.open_blob(final, "body"))
    inbox = client_as(app, "director").get("/visas/").get_data(as_text=True)
    assert inbox.count("Visé le") == 2 and "En attente" not in inbox  # the signed version's
    page = post(facilitator, f"{url}/etat/close", form_url=url)
    assert reload(db_session, Meeting, meeting.id).state == "cloturee"
    offered = facilitator.get(url).get_data(as_text=True)  # only what the state allows
    assert f"{url}/documents/feedback" in offered and f"{url}/documents/agenda" not in offered
    assert "Dossier de séance (copie d&#39;archive)" in offered  # still producible, as such
    assert reload(db_session, Sheet, sheets[0].id).status == "suivi"  # open actions
    assert reload(db_session, Sheet, sheets[1].id).status == "ajournee"
    assert reload(db_session, Sheet, sheets[2].id).status == "close"

    # The referent sees the avis and the préconisations on their sheet.
    sheet_page = client_as(app, "referent").get(f"/fiches/{sheets[0].id}").get_data(
        as_text=True)
    assert "Réorientation vers le parcours socio-professionnel" in sheet_page
    assert "Prise de contact avec l&#39;ALI" in sheet_page and "Freins levés" in sheet_page


def test_disallowed_session_actions_are_refused_clearly_and_change_nothing(
        facilitator, world, db_session):
    meeting = world["meeting"]  # agenda under construction
    url = f"/seances/{meeting.id}"
    version = meeting.content_version
    for action in ("hold", "close", "write_minutes"):
        page = post(facilitator, f"{url}/etat/{action}", form_url=url)
        assert "Action impossible : la séance est « ODJ en construction »." in flash_text(page)
    token = csrf_token(facilitator, url)  # only the directors' visas sign the minutes
    assert facilitator.post(f"{url}/etat/sign_minutes",
                            data={"csrf_token": token}).status_code == 404
    page = post(facilitator, f"{url}/etat/cancel", {"reason": ""}, url)
    assert "Indiquez le motif pour annuler la séance." in flash_text(page)
    item = meeting.items[1]
    page = post(facilitator, f"{url}/points/{item.id}/avis", {
        "avis": "maintien", "motivation": "", "come_back_on": "", "formal_decision_by": ""},
        f"{url}/points/{item.id}/avis")
    assert "Action impossible" in flash_text(page)
    meeting = reload(db_session, Meeting, meeting.id)
    assert meeting.state == "odj_en_construction" and meeting.content_version == version
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 0


def test_the_session_page_says_in_plain_words_whether_the_agenda_changed_since_convened(
        facilitator, world, db_session, redis):
    meeting = world["meeting"]
    url = f"/seances/{meeting.id}"
    assert "convocations" not in facilitator.get(url).get_data(as_text=True).split("<p>Date")[0]
    post(facilitator, f"{url}/etat/convene", form_url=url)
    assert reload(db_session, Meeting, meeting.id).state == "convoquee"
    head = facilitator.get(url).get_data(as_text=True).split("<p>Date")[0]
    assert "Ordre du jour inchangé depuis l'envoi des convocations." in head
    post(facilitator, f"{url}/points", {"title": "Point urgent", "duration": "10",
                                        **PRESENTER}, url)
    head = facilitator.get(url).get_data(as_text=True).split("<p>Date")[0]
    assert "Ordre du jour modifié depuis l'envoi des convocations" in head
    assert "les membres ont reçu la version précédente" in head
    assert "version du contenu" not in head and "figée" not in head


def test_a_cancelled_session_gives_its_sheets_back_with_the_reason(facilitator, world,
                                                                   db_session):
    meeting = world["meeting"]
    url = f"/seances/{meeting.id}"
    page = post(facilitator, f"{url}/etat/cancel", {"reason": "Grève des transports"}, url)
    assert "Séance : Annulée." in flash_text(page)
    for sheet in world["sheets"]:
        assert reload(db_session, Sheet, sheet.id).status == "ajournee"
    body = facilitator.get(url).get_data(as_text=True)
    assert "Motif : Grève des transports" in body
    assert "Convoquer" not in body  # only the actions allowed in the state are offered


def test_a_postponed_session_moves_its_pending_agenda_to_the_new_date(facilitator, world,
                                                                      db_session):
    meeting = world["meeting"]
    new_day = (meeting.starts_at + timedelta(days=7)).date().isoformat()
    page = post(facilitator, f"/seances/{meeting.id}/reporter", {
        "day": new_day, "at": "14:00", "reason": "Salle indisponible"},
        f"/seances/{meeting.id}")
    assert "Séance reportée" in flash_text(page)
    old = reload(db_session, Meeting, meeting.id)
    assert old.state == "reportee" and old.postponed_to_id
    new = db_session.get(Meeting, old.postponed_to_id)
    assert {i.sheet_id for i in new.items if i.sheet_id} == {s.id for s in world["sheets"]}
    assert [i.title for i in new.items if not i.sheet_id] == ["Présentation de l'ALI"]
    assert db_session.scalar(select(func.count()).select_from(AgendaItem)
                             .where(AgendaItem.meeting_id == old.id,
                                    AgendaItem.outcome == "ajourne")) == 2


def test_texts_typed_in_session_that_name_someone_are_refused_before_any_document(
        facilitator, world, db_session, vault):
    """Avis, actions, adjournment reason and item titles reach the PV and the fiche retour
    under a reference only: the person's identity is refused whatever is posted; another
    identifying element until it is dismissed with a reason (audited as counts); nothing is
    saved meanwhile."""
    from shared.models import AuditEvent

    meeting = world["meeting"]
    meeting.state = "tenue"
    db_session.commit()
    url = f"/seances/{meeting.id}"
    identity = world["identities"][0]
    first, second = (i for i in meeting.items if i.sheet_id)
    avis_url = f"{url}/points/{first.id}/avis"
    form = {"avis": "maintien", "come_back_on": "", "formal_decision_by": "",
            "motivation": f"{identity.prenom} {identity.nom.upper()} reprend confiance.",
            "action_0_label": "Rappeler au 06 12 34 56 78", "action_0_owner": "",
            "action_0_due": ""}
    page = post(facilitator, avis_url, form, avis_url)
    message = html.unescape(flash_text(page))
    assert "Avis non enregistré" in message
    assert "Motivation : le nom de la personne, le prénom de la personne" in message
    assert "Action 1 : numéro de téléphone" in message
    assert identity.nom not in message and identity.prenom not in message
    body = html.unescape(page.get_data(as_text=True))
    # Issue 15: the page highlights each caught word (never the flash: it is in the cookie)
    assert re.search(rf'<mark class="own"[^>]*>{identity.prenom}</mark>', body)
    assert re.search(r'<mark class="open"[^>]*>06 12 34 56 78</mark>', body)
    assert "Je confirme" not in body
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 0

    rephrased = {**form, "motivation": "La personne reprend confiance.",
                 "action_0_label": "Rappeler la personne"}
    page = post(facilitator, avis_url, rephrased, avis_url)
    assert f"Avis enregistré pour {first.sheet.reference}." in flash_text(page)

    page = post(facilitator, f"{url}/points/{second.id}/ajourner", {
        "reason": f"Attendre l'avis du Dr {world['identities'][1].nom}.", "target_id": "0"}, url)
    assert "Situation non ajournée" in flash_text(page)
    assert "Motif de l'ajournement : le nom de la personne" in html.unescape(flash_text(page))
    assert reload(db_session, AgendaItem, second.id).outcome == ""

    version = reload(db_session, Meeting, meeting.id).content_version
    meeting.state = "odj_en_construction"
    db_session.commit()
    page = post(facilitator, f"{url}/points", {"title": "Point sur Madame Jeanne Martin",
                                                "duration": "20", **PRESENTER}, url)
    assert "Point non ajouté" in flash_text(page)
    assert reload(db_session, Meeting, meeting.id).content_version == version

    # The person's own identity cannot be dismissed, whatever the form posts (issue 15).
    meeting.state = "tenue"
    db_session.commit()
    other_url = f"{url}/points/{second.id}/avis"
    named = {**form, "motivation": f"Rencontre du réseau {world['identities'][1].nom}.",
             "action_0_label": "", "texts_confirmed": "y"}
    page = post(facilitator, other_url, named, other_url)
    body = html.unescape(page.get_data(as_text=True))
    assert 'name="dismiss_' not in body
    forced = {**named, "dismiss_Motivation:21:31:nom": "partenaire"}
    page = post(facilitator, other_url, forced, other_url)
    assert "Avis non enregistré" in flash_text(page)
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 1

    # A third party's name is dismissed with a reason, and counted without the words.
    third = {**named, "motivation": "Rencontre avec Mme Durand, conseillère du réseau."}
    page = post(facilitator, other_url, third, other_url)
    keys = re.findall(r'name="dismiss_([^"]+)"', page.get_data(as_text=True))
    assert len(keys) == 1
    page = post(facilitator, other_url, {**third, f"dismiss_{html.unescape(keys[0])}":
                                         "professionnel"}, other_url)
    assert f"Avis enregistré pour {second.sheet.reference}." in flash_text(page)
    dismissed = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "screening_dismissed")).one()
    assert dismissed.object_type == "decisions"
    assert dismissed.fields == "person/professionnel/1"
