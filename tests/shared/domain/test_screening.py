"""Texts typed in session: the person's own identity never passes, other findings are
dismissed one by one with a reason, reference names are not findings (issue 15, bug 2)."""

from datetime import datetime

import pytest
from sqlalchemy import select

from shared.domain.meetings import add_partnership_item, adjourn, create_meeting, record_avis
from shared.domain.screening import TextsNeedReviewError, screen_session_texts
from shared.models import AuditEvent, Decision, Structure
from tests.factories import PLANNED_ON

BENALI = {"nom": "Benali", "prenom": "Ali", "date_naissance": "1981-03-05",
          "telephone": "01 48 12 34 56", "numero_caf": "1234567",
          "email": "a.benali@exemple.invalid", "adresse": "3 rue des Glycines"}


def _caught(findings):
    return [(f.label, f.text, f.own_identity) for f in findings]


def test_every_token_of_the_persons_identity_is_caught_where_it_stands():
    text = ("Mme Benali, née le 05/03/1981, joignable au 01 48 12 34 56 ou "
            "a.benali@exemple.invalid, allocataire 1234567, résidence des Glycines.")
    findings = screen_session_texts({"Motivation": text}, [BENALI])
    assert _caught(findings) == [
        ("Motivation", "Benali", True), ("Motivation", "05/03/1981", True),
        ("Motivation", "01 48 12 34 56", True), ("Motivation", "a.benali@exemple.invalid", True),
        ("Motivation", "1234567", True), ("Motivation", "Glycines", True)]
    assert all(text[f.start:f.end] == f.text for f in findings)


def test_a_family_named_in_an_agenda_title_is_a_finding():
    findings = screen_session_texts({"Intitulé": "Retour sur la famille Benali (Bondy)"})
    assert _caught(findings) == [("Intitulé", "Benali", False)]


def test_reference_names_are_not_findings_even_when_they_hold_the_persons_first_name():
    texts = {"Action 1": "présentation de l'ALI de Bobigny"}
    assert _caught(screen_session_texts(texts, [BENALI])) == [("Action 1", "ALI", True)]
    assert screen_session_texts(texts, [BENALI], ["ALI de Bobigny"]) == []


@pytest.mark.parametrize("text", [
    "Née le 05 mars 1981, situation stable.",          # a day with its leading zero
    "Dossier ouvert, naissance 1981/3/5.",              # year first
    "Allocataire CAF 1234567 - 2024.",                  # a number beside another
    "Joignable au +33 1 48 12 34 56 / 2024.",           # an international prefix
    "Joignable au 0148-123-456.",                       # another grouping
])
def test_the_persons_numbers_and_birth_date_are_caught_however_they_are_written(text):
    # Outside review: these forms passed as dismissable findings, or as nothing at all.
    findings = screen_session_texts({"Motivation": text}, [BENALI])
    assert findings and all(f.own_identity for f in findings), _caught(findings)


def test_a_reference_name_made_of_the_persons_name_never_hides_it():
    # A member or a structure named like the person must not let the name through.
    texts = {"Motivation": "Ali Benali a été reçu."}
    assert [f.own_identity for f in screen_session_texts(texts, [BENALI], ["Ali Benali"])] \
        == [True, True]


def test_every_structures_record_of_the_person_is_checked():
    # Another structure knows a phone number this one does not: still the person's.
    other = {"nom": "Benali", "telephone": "06 11 22 33 44"}
    findings = screen_session_texts({"Motivation": "Rappeler au 06 11 22 33 44."},
                                    [{"nom": "Benali"}, other])
    assert _caught(findings) == [("Motivation", "06 11 22 33 44", True)]


@pytest.fixture
def held(world, db_session):
    meeting = world["meeting"]
    meeting.state = "tenue"
    db_session.add(Structure(name="ALI de Bobigny", type="ali"))
    db_session.flush()
    return meeting, [i for i in meeting.items if i.sheet_id]


def _avis(db_session, vault, meeting, item, motivation, dismissals=None):
    return record_avis(db_session, vault, meeting, item.id, avis="maintien",
                       avis_codes={"maintien"}, motivation=motivation, actions=[],
                       come_back_on=None, formal_decision_by="", dismissals=dismissals)


def test_no_dismissal_ever_clears_the_persons_own_identity(world, db_session, vault, held):
    meeting, (item, _) = held
    identity = world["identities"][0]
    motivation = f"Mme {identity.nom} reprend confiance."
    with pytest.raises(TextsNeedReviewError) as refused:
        _avis(db_session, vault, meeting, item, motivation)
    keys = {f.key: "partenaire" for review in refused.value.reviews
            for f in review["findings"]}
    assert keys
    with pytest.raises(TextsNeedReviewError):
        _avis(db_session, vault, meeting, item, motivation, keys)
    assert identity.nom not in refused.value.message
    db_session.rollback()  # as the avis page does
    assert db_session.scalar(select(Decision.id)) is None
    # Each refusal for the person's own identity stays in the audit log (outside review:
    # the highlighted words could otherwise be used to probe an identity unseen).
    assert db_session.scalars(select(AuditEvent.fields).where(
        AuditEvent.action == "identity_guard_refused")).all() == ["nom", "nom"]


def test_other_findings_pass_once_each_is_dismissed_with_a_reason(world, db_session, vault,
                                                                  held):
    meeting, (item, _) = held
    motivation = "Rencontre avec Mme Durand puis avec M. Lefebvre ; présentation de l'ALI de " \
                 "Bobigny."
    with pytest.raises(TextsNeedReviewError) as refused:
        _avis(db_session, vault, meeting, item, motivation)
    keys = [f.key for review in refused.value.reviews for f in review["findings"]]
    assert len(keys) == 2
    with pytest.raises(TextsNeedReviewError):  # one at a time: each needs its own reason
        _avis(db_session, vault, meeting, item, motivation, {keys[0]: "professionnel"})
    with pytest.raises(TextsNeedReviewError):  # a reason outside the list is no reason
        _avis(db_session, vault, meeting, item, motivation,
              {keys[0]: "professionnel", keys[1]: "parce que"})
    decision = _avis(db_session, vault, meeting, item, motivation,
                     {keys[0]: "professionnel", keys[1]: "partenaire"})
    event = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "screening_dismissed")).one()
    assert (event.object_type, event.object_ids) == ("decisions", str(decision.id))
    assert event.fields == "person/partenaire/1,person/professionnel/1"


def test_adjournment_reasons_and_titles_follow_the_same_rule(world, db_session, vault, held):
    meeting, (_, item) = held
    with pytest.raises(TextsNeedReviewError):
        adjourn(db_session, vault, meeting, item.id,
                f"Attendre l'appel de {world['identities'][1].prenom}.")
    assert item.outcome == ""
    planned = create_meeting(db_session, world["north"], datetime(2027, 1, 19, 14, 0), "Salle",
                             today=PLANNED_ON)
    presenter = {"presenter_structure": "PLIE", "presenter_role": "Chargée de mission"}
    with pytest.raises(TextsNeedReviewError) as refused:
        add_partnership_item(db_session, vault, planned, "Retour sur la famille Benali (Bondy)",
                             **presenter)
    key = refused.value.reviews[0]["findings"][0].key
    add_partnership_item(db_session, vault, planned, "Présentation de l'ALI de Bobigny",
                         **presenter)
    add_partnership_item(db_session, vault, planned, "Retour sur la famille Benali (Bondy)",
                         dismissals={key: "mot_courant"}, **presenter)
    assert [i.title for i in planned.items] == ["Présentation de l'ALI de Bobigny",
                                                "Retour sur la famille Benali (Bondy)"]


def test_a_cancellation_reason_becomes_each_adjournment_reason_and_is_screened(
        world, db_session, vault):
    from shared.domain.meetings import transition

    meeting = world["meeting"]
    identity = world["identities"][1]
    with pytest.raises(TextsNeedReviewError) as refused:
        transition(db_session, vault, meeting, "cancel",
                   reason=f"Salle indisponible ; prévenir {identity.prenom}.")
    assert refused.value.problems == {"Motif": ["le prénom de la personne"]}
    assert meeting.state != "annulee"
    assert all(not i.outcome for i in meeting.items)
    transition(db_session, vault, meeting, "cancel", reason="Salle indisponible.")
    assert meeting.state == "annulee"


def test_a_dismissal_never_carries_over_to_other_words_at_the_same_place(world, db_session,
                                                                         vault, held):
    meeting, (item, _) = held
    with pytest.raises(TextsNeedReviewError) as refused:
        _avis(db_session, vault, meeting, item, "Rencontre avec Mme Durand.")
    key = refused.value.reviews[0]["findings"][0].key
    with pytest.raises(TextsNeedReviewError):  # same place, same kind, other name
        _avis(db_session, vault, meeting, item, "Rencontre avec Mme Dupont.",
              {key: "professionnel"})
