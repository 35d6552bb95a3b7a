"""The facilitator's follow-up: open préconisations, marking them done, monthly statistics."""

import csv
import html
import io
import re
from datetime import date, datetime

import pytest
from sqlalchemy import select

from shared.demo import demo_values
from shared.domain.meetings import ActionInput, adjourn, create_meeting, inscribe_sheet, record_avis
from shared.domain.reference import reference_labels
from shared.domain.statistics import monthly_statistics
from shared.models import AuditEvent, DecisionAction, DeidentificationCount
from tests.factories import (
    PASSWORD,
    PLANNED_ON,
    canary_identity,
    canary_values,
    make_sheet,
    reference_data,
    users_for_every_role,
)
from tests.helpers import csrf_token

MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
          "octobre", "novembre", "décembre"]
OVERDUE_LABEL = "Atelier mobilité avec l'ALI"
LATER_LABEL = "Bilan de compétences approfondi"


def item_of(meeting, sheet):
    return next(item for item in meeting.items if item.sheet_id == sheet.id)


def give_avis(session, vault, meeting, sheet, avis, actions=(), come_back_on=None):
    return record_avis(session, vault, meeting, item_of(meeting, sheet).id, avis=avis,
                       avis_codes=set(reference_labels(session)["avis"]),
                       motivation="Motivation de l'instance.", actions=list(actions),
                       come_back_on=come_back_on, formal_decision_by="")


def login(auth, role):
    response = auth.login(f"{role.replace('_', '.')}@test.invalid", PASSWORD)
    assert response.status_code == 302


def page_text(response) -> str:
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def followed(world, db_session, vault):
    """The world's session, held in the past: sheet 0 got two préconisations (one overdue),
    sheet 1 is to come back in instance; one more sheet waits to be screened."""
    meeting, sheets, structures = world["meeting"], world["sheets"], world["structures"]
    meeting.starts_at = datetime(2026, 9, 8, 14, 0)
    meeting.state = "tenue"  # the attendance steps are not what is tested here
    decision = give_avis(db_session, vault, meeting, sheets[0], "maintien", actions=[
        ActionInput(OVERDUE_LABEL, structures["ali"].id, date(2026, 10, 1)),
        ActionInput(LATER_LABEL, None, date(2099, 12, 31)),
    ])
    give_avis(db_session, vault, meeting, sheets[1], "remobilisation",
              come_back_on=date(2026, 10, 20))
    sheets[1].status = "suivi"  # as after the session's closure
    waiting = make_sheet(db_session, vault, structures["ssd"], canary_identity(5),
                         status="soumise")
    db_session.commit()
    overdue, later = decision.actions
    return {**world, "overdue": overdue, "later": later, "waiting": waiting}


def test_dashboard_lists_open_actions_by_due_date_and_flags_the_overdue_one(
        client, auth, followed):
    login(auth, "facilitator")
    page = page_text(client.get("/suivi/"))
    sheet = followed["sheets"][0]
    rows = re.findall(r"<tr>.*?</tr>", page, flags=re.S)
    overdue_row = next(r for r in rows if OVERDUE_LABEL in r)
    later_row = next(r for r in rows if LATER_LABEL in r)
    assert "en retard" in overdue_row and "01/10/2026" in overdue_row
    assert "en retard" not in later_row and "31/12/2099" in later_row
    assert page.index(OVERDUE_LABEL) < page.index(LATER_LABEL)
    for row in (overdue_row, later_row):
        assert sheet.reference in row and sheet.beneficiary.pseudonym in row
        assert "Maintien du parcours et du référent, avec préconisations" in row
        assert "Marquer réalisée" in row
    assert "ALI de Saint-Denis" in overdue_row
    # The situation to bring back, and the sheets waiting to be screened.
    returning = followed["sheets"][1]
    back_row = next(r for r in rows if returning.reference in r)
    assert "20/10/2026" in back_row and "Remobilisation" in back_row
    assert re.search(r'href="/fiches/\?vue=instance&etat=soumise">[^<]*</a> : <strong>1<',
                     page)
    for identity in [*followed["identities"], canary_identity(5)]:
        assert not any(value in page for value in canary_values(identity))


def test_marking_an_action_done_removes_it_and_is_audited(client, auth, followed, db_session):
    login(auth, "facilitator")
    page = client.get("/suivi/").get_data(as_text=True)
    # Each section once, in the page's body: a merge once put two of them in the title.
    assert "<title>Suivi des préconisations – ICL-I Seine-Saint-Denis</title>" in page
    assert page.count("<h2>Points partenariaux à suivre</h2>") == 1
    overdue = followed["overdue"]
    form = re.search(rf'<form method="post" action="(/suivi/preconisations/{overdue.id}/realisee)"'
                     r'.*?name="csrf_token"[^>]*value="([^"]+)"', page, flags=re.S)
    assert form, "no form to mark the action done"
    response = client.post(form.group(1), data={"csrf_token": form.group(2)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/suivi/")

    page = page_text(client.get("/suivi/"))
    assert "marquée réalisée" in page
    assert OVERDUE_LABEL not in page and LATER_LABEL in page
    db_session.expire_all()
    assert db_session.get(DecisionAction, overdue.id).done_on == date.today()
    audited = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "action_done"))
    assert [event.object_ids for event in audited] == [str(overdue.id)]

    again = client.post(form.group(1), data={"csrf_token": form.group(2)},
                        follow_redirects=True)
    assert "déjà réalisée" in page_text(again)


def test_marking_done_without_the_csrf_token_changes_nothing(client, auth, followed,
                                                            db_session):
    login(auth, "facilitator")
    response = client.post(f"/suivi/preconisations/{followed['overdue'].id}/realisee")
    assert response.status_code == 400
    db_session.expire_all()
    assert db_session.get(DecisionAction, followed["overdue"].id).done_on is None


def test_a_facilitator_of_another_circonscription_sees_nothing_of_this_one(
        client, auth, followed, db_session):
    login(auth, "other_facilitator")
    north = followed["north"].id
    page = page_text(client.get("/suivi/"))
    assert OVERDUE_LABEL not in page and followed["sheets"][0].reference not in page
    assert followed["sheets"][1].reference not in page
    assert client.get(f"/suivi/statistiques?circonscription={north}").status_code == 404
    assert client.get(f"/suivi/statistiques.csv?circonscription={north}").status_code == 404
    assert client.get("/suivi/statistiques?circonscription=abc").status_code == 404
    token = csrf_token(client, "/suivi/")
    response = client.post(f"/suivi/preconisations/{followed['overdue'].id}/realisee",
                           data={"csrf_token": token})
    assert response.status_code == 404
    db_session.expire_all()
    assert db_session.get(DecisionAction, followed["overdue"].id).done_on is None
    # Their own circonscription is the default and answers.
    assert "Montreuil" in page_text(client.get("/suivi/statistiques"))


@pytest.mark.parametrize("role", ["referent", "director", "admin"])
def test_other_roles_are_refused_the_follow_up(client, auth, followed, role):
    login(auth, role)
    for url in ["/suivi/", "/suivi/statistiques", "/suivi/statistiques.csv"]:
        assert client.get(url).status_code == 403, url
    token = csrf_token(client, "/")
    response = client.post(f"/suivi/preconisations/{followed['overdue'].id}/realisee",
                           data={"csrf_token": token})
    assert response.status_code == 403


# -- statistics ------------------------------------------------------------------------------
@pytest.fixture
def steering(db_session, vault):
    """March 2025 in Saint-Denis: two sheets submitted (two motifs, two structure types), both
    on the session of 11 March; one got an avis, the other was adjourned. Around them, sheets
    that must not count: another circonscription, and the last second of February (Paris
    time; stored in UTC, an hour behind in winter)."""
    north, south, structures = reference_data(db_session)
    users_for_every_role(db_session, vault, north, south, structures)
    identities = [canary_identity(n) for n in range(10, 14)]

    def sheet(n, structure, motif, submitted_at, status="recevable"):
        row = make_sheet(db_session, vault, structures[structure], identities[n],
                         status=status, values={**demo_values(n), "motif": motif})
        row.submitted_at = submitted_at
        return row

    first = sheet(0, "ssd", "reorientation", datetime(2025, 3, 1, 9, 0))
    second = sheet(1, "ali", "situation_complexe", datetime(2025, 3, 4, 10, 30))
    elsewhere = sheet(2, "other", "reorientation", datetime(2025, 3, 5, 11, 0), "soumise")
    february = sheet(3, "ssd", "adhesion", datetime(2025, 2, 28, 22, 59, 59), "soumise")
    # The referents' review of identifying words (counts per kind, recorded at submission)
    db_session.add_all([
        DeidentificationCount(sheet_id=first.id, kind="phone", outcome="accepted", count=2),
        DeidentificationCount(sheet_id=second.id, kind="phone", outcome="accepted", count=1),
        DeidentificationCount(sheet_id=second.id, kind="person", outcome="dismissed", count=1),
        DeidentificationCount(sheet_id=elsewhere.id, kind="iban", outcome="accepted", count=4)])
    meeting = create_meeting(db_session, north, datetime(2025, 3, 11, 14, 0), "Salle 3",
                             today=PLANNED_ON)
    inscribe_sheet(db_session, vault, meeting, first, "14:30")
    inscribe_sheet(db_session, vault, meeting, second, "15:00")
    meeting.state = "tenue"
    decision = give_avis(db_session, vault, meeting, first, "reorientation_pro", actions=[
        ActionInput("Inscription à un atelier collectif", structures["ali"].id,
                    date(2025, 4, 30))])
    decision.created_at = datetime(2025, 3, 11, 16, 0)
    adjourn(db_session, vault, meeting, item_of(meeting, second).id,
            "Complément d'information demandé.")
    db_session.commit()
    return {"north": north, "south": south, "structures": structures, "identities": identities,
            "sheets": [first, second, elsewhere, february]}


EXPECTED_MARCH = {
    "Fiches soumises": {"Total": "2"},
    "Fiches soumises par motif": {
        "Demande de réorientation de parcours": "1",
        "Situation complexe / cumul de freins (appui, regards croisés)": "1"},
    "Fiches soumises par type de structure": {
        "Agence Locale d'Insertion": "1",
        "Service social départemental (circonscription)": "1"},
    "Avis rendus": {"Total": "1"},
    "Avis rendus par avis": {
        "Réorientation vers le parcours professionnel (France Travail)": "1"},
    "Situations ajournées": {"Total": "1"},
    "Délai entre la soumission et la séance (jours)": {
        "Avis pris en compte": "1", "Médiane": "10", "Moyenne": "10"},
    "Relecture des textes : éléments identifiants signalés aux référent·e·s": {
        "Remplacés – numéro de téléphone": "3",
        "Jugés non identifiants – nom d'une personne": "1"},
}


def figures_on_page(page: str) -> dict[str, dict[str, str]]:
    figures = {}
    for chunk in page.split("<h2>")[1:]:
        title = chunk.split("</h2>")[0]
        figures[title] = dict(re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", chunk))
    return figures


def figures_in_csv(body: str) -> dict[str, dict[str, str]]:
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))
    assert rows[0] == ["Circonscription", "Mois", "Indicateur", "Détail", "Valeur"]
    figures: dict[str, dict[str, str]] = {}
    for circonscription, month, section, detail, value in rows[1:]:
        assert (circonscription, month) == ("Saint-Denis", "2025-03")
        figures.setdefault(section, {})[detail] = value
    return figures


def test_statistics_count_the_month_of_one_circonscription_without_any_identity(
        client, auth, steering):
    login(auth, "facilitator")
    url = f"/suivi/statistiques?circonscription={steering['north'].id}&mois=2025-03"
    page = page_text(client.get(url))
    assert "Saint-Denis, mars 2025" in page
    assert figures_on_page(page) == EXPECTED_MARCH
    secrets = [*(s.reference for s in steering["sheets"]),
               *(s.beneficiary.pseudonym for s in steering["sheets"]),
               *(v for identity in steering["identities"] for v in canary_values(identity))]
    assert not any(secret in page for secret in secrets)

    response = client.get(url.replace("statistiques?", "statistiques.csv?"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment")
    body = response.data.decode("utf-8-sig")
    assert figures_in_csv(body) == EXPECTED_MARCH
    assert not any(secret in body for secret in secrets)


def test_statistics_follow_the_month_chosen(client, auth, steering):
    login(auth, "facilitator")
    north = steering["north"].id
    february = figures_on_page(page_text(client.get(
        f"/suivi/statistiques?circonscription={north}&mois=2025-02")))
    assert february["Fiches soumises"] == {"Total": "1"}
    assert february["Fiches soumises par motif"] == {
        "Difficulté d'adhésion (rendez-vous non honorés, contrat non signé)": "1"}
    assert february["Avis rendus"] == {"Total": "0"}
    assert february["Délai entre la soumission et la séance (jours)"]["Médiane"] == "—"
    current = page_text(client.get("/suivi/statistiques"))  # defaults: Saint-Denis, now
    today = date.today()
    assert f"Saint-Denis, {MONTHS[today.month - 1]} {today.year}" in current
    for month in ["2025-13", "mars", "2025-3"]:
        assert client.get(f"/suivi/statistiques?mois={month}").status_code == 400


def test_delay_median_and_mean_differ_over_several_avis(db_session, vault, steering):
    # Given three more avis in March at sessions 12, 30 and 9 days after submission (Paris
    # dates), and one recorded on the first second of April in Paris (22:00 UTC the day before)
    north = steering["north"]
    structures = steering["structures"]
    meeting = create_meeting(db_session, north, datetime(2025, 3, 25, 9, 30), "Salle 3",
                             today=PLANNED_ON)
    created = []
    for n, (submitted, recorded) in enumerate([
            (datetime(2025, 3, 13, 18, 0), datetime(2025, 3, 25, 12, 0)),
            (datetime(2025, 2, 23, 8, 0), datetime(2025, 3, 26, 9, 0)),
            (datetime(2025, 3, 15, 23, 59), datetime(2025, 3, 31, 21, 59, 59)),
            (datetime(2025, 3, 20, 10, 0), datetime(2025, 3, 31, 22, 0))]):
        sheet = make_sheet(db_session, vault, structures["ali"], canary_identity(20 + n),
                           status="recevable")
        sheet.submitted_at = submitted
        inscribe_sheet(db_session, vault, meeting, sheet, f"1{n}:00")
        created.append((sheet, recorded))
    meeting.state = "tenue"
    for sheet, recorded in created:
        give_avis(db_session, vault, meeting, sheet, "sans_suite").created_at = recorded
    db_session.flush()
    # When the figures of March are computed
    stats = monthly_statistics(db_session, north.id, 2025, 3)
    # Then the delays are 10 (earlier session), 12, 30 and 9 days (submitted 23:59 UTC on
    # the 15th: 00:59 on the 16th in Paris)
    assert stats.delay.count == 4
    assert stats.delay.median_days == 11.0
    assert stats.delay.mean_days == pytest.approx(15.25)
    assert stats.outcomes.by_avis == {
        "Sans suite / situation résolue": 3,
        "Réorientation vers le parcours professionnel (France Travail)": 1}
    assert monthly_statistics(db_session, north.id, 2025, 4).outcomes.decisions == 1
    assert monthly_statistics(db_session, steering["south"].id, 2025, 3).outcomes.decisions == 0
