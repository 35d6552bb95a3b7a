"""The sheet declaration, validation, the free-text guard and the lifecycle table."""

from datetime import date

import pytest

from shared.demo import demo_values
from shared.domain.sheet_workflow import TRANSITIONS
from shared.domain.sheets import identity_hits, validate_values
from shared.models.sheet import SHEET_STATES
from shared.protected import PROTECTED_FIELDS
from shared.reference_defaults import DEFAULT_ITEMS
from shared.sheet_schema import COLUMN_OF_CLASS, FIELDS, METADATA

LABELS = {kind: dict(items) for kind, items in DEFAULT_ITEMS.items()}
TODAY = date(2026, 11, 25)
IDENTITY = {"nom": "Ben Youssef", "prenom": "Aminata", "nom_naissance": "Traoré",
            "numero_caf": "1234567", "identifiant_france_travail": "7654321X",
            "telephone": "06 12 34 56 78", "email": "a.by@exemple.invalid",
            "adresse": "12 allée des Tilleuls"}


def test_every_field_is_stored_under_the_chain_of_its_class():
    assert {f.column for f in FIELDS if f.data_class != METADATA} <= set(PROTECTED_FIELDS["sheets"])
    for spec in FIELDS:
        if spec.data_class != METADATA:
            assert PROTECTED_FIELDS["sheets"][spec.column].data_class == spec.data_class
    assert set(COLUMN_OF_CLASS.values()) == set(PROTECTED_FIELDS["sheets"])


def test_every_enumeration_names_existing_reference_data():
    assert {f.ref for f in FIELDS if f.ref} <= set(DEFAULT_ITEMS)


def test_the_demo_values_are_complete_and_valid():
    assert validate_values(demo_values(0), LABELS, submitting=True, today=TODAY) == {}


def test_a_draft_may_be_incomplete_but_not_wrong():
    assert validate_values({}, LABELS, submitting=False, today=TODAY) == {}
    errors = validate_values({"enfants_a_charge": 99, "debut_accompagnement": "2030-01-01",
                              "motif": "inconnu", "contrat_fin": "31/12/2026"},
                             LABELS, submitting=False, today=TODAY)
    assert set(errors) == {"enfants_a_charge", "debut_accompagnement", "motif", "contrat_fin"}
    assert errors["debut_accompagnement"] == "La date ne peut pas être dans le futur."


def test_submission_requires_the_required_fields_and_the_persons_information():
    errors = validate_values({**demo_values(0), "question": "", "personne_informee": "non"},
                             LABELS, submitting=True, today=TODAY)
    assert errors["question"] == "Ce champ est obligatoire pour soumettre la fiche."
    assert "doit être informée" in errors["personne_informee"]


def test_error_messages_never_quote_the_value():
    secret = "Zyx-secret-value" * 400
    errors = validate_values({"parcours": secret, "question": "\x00" + secret}, LABELS,
                             submitting=False, today=TODAY)
    assert errors and not any("Zyx" in message for message in errors.values())


@pytest.mark.parametrize(("text", "expected"), [
    ("Mme BEN YOUSSEF souhaite une formation.", ["le nom de la personne"]),
    ("aminata est motivée", ["le prénom de la personne"]),
    ("née traore", ["le nom de naissance de la personne"]),
    ("Tel : 06.12.34.56.78", ["le numéro de téléphone"]),
    ("joignable au +33 6 12 34 56 78", ["le numéro de téléphone"]),
    ("CAF 1234567", ["le numéro CAF"]),
    ("mail a.by@exemple.invalid", ["l'adresse e-mail"]),
    ("habite allée des tilleuls", ["l'adresse"]),
])
def test_the_guard_finds_the_persons_identity_however_it_is_typed(text, expected):
    assert identity_hits(IDENTITY, {"question": text}) == {"question": expected}


@pytest.mark.parametrize("text", [
    "Parcours social de plus de cinq ans, freins de mobilité.",
    "Rendez-vous le 12 à la mission locale ; atelier numérique.",
    "Benoît a parlé à l'ALI de la rue voisine.",
])
def test_the_guard_stays_quiet_on_ordinary_text(text):
    assert identity_hits(IDENTITY, {"parcours": text}) == {}


def test_every_state_is_reachable_and_every_transition_targets_a_known_state():
    targets = {t.target for t in TRANSITIONS.values()}
    sources = set().union(*(t.sources for t in TRANSITIONS.values()))
    assert targets | {"brouillon"} == set(SHEET_STATES)
    assert sources <= set(SHEET_STATES)
    assert {"retiree", "non_recevable", "close"}.isdisjoint(sources)  # final states


@pytest.mark.parametrize(("name", "text", "flagged"), [
    ("Le Gall", "Il est suivi par le service depuis la rentrée.", False),
    ("Le Gall", "M. GALL souhaite une formation.", True),
    ("Ben Youssef", "Elle a été orientée par le CCAS.", False),
    ("Da Silva", "Recherche d'emploi dans la logistique.", False),
    ("Da Silva", "Mme da silva est motivée.", True),
    ("Ng", "Mme Ng est motivée.", True),
])
def test_name_particles_are_not_taken_for_the_name(name, text, flagged):
    hits = identity_hits({"nom": name}, {"question": text})
    assert bool(hits) is flagged


def test_an_end_before_its_start_is_named_on_drafts_too():
    values = {**demo_values(0), "contrat_debut": "2026-03-10", "contrat_fin": "2026-03-01",
              "actions": [{"action": "Atelier CV", "structure": "PLIE", "debut": "2026-02-01",
                           "fin": "2026-03-01", "resultat": ""},
                          {"action": "Stage", "structure": "ACI", "debut": "2026-05-01",
                           "fin": "2026-04-01", "resultat": ""}]}
    for submitting in (False, True):
        errors = validate_values(values, LABELS, submitting=submitting, today=TODAY)
        assert errors["contrat_fin"] == ("La fin du contrat ne peut pas précéder sa "
                                         "signature (le 10/03/2026).")
        assert errors["actions"] == "Action de la ligne 2 : la fin précède le début."
    in_order = {**values, "contrat_fin": "2026-03-10", "actions": values["actions"][:1]}
    assert validate_values(in_order, LABELS, submitting=True, today=TODAY) == {}
