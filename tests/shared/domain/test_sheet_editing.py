"""The referent's edit page as domain operations: what a save keeps, audits and refuses, and
the form of an expired session, restored to its author only."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.demo import demo_values
from shared.domain import audit, sheet_editing
from shared.domain.sheet_workflow import transition
from shared.encrypted import Vault
from shared.models import AuditEvent, FormStash
from tests.factories import canary_identity, make_sheet


def actions(db_session) -> list[str]:
    return list(db_session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


@pytest.fixture
def referent_vault(db_session, keyring, world):
    return Vault(db_session, keyring, audit.Actor(world["users"]["referent"].id))


@pytest.fixture
def draft(db_session, vault, world):
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(30),
                       author_id=world["users"]["referent"].id)
    db_session.commit()
    return sheet


def test_a_draft_with_an_error_is_saved_but_for_that_field_and_audited(
        db_session, referent_vault, draft):
    opened = sheet_editing.open_sheet(db_session, referent_vault, draft)
    typed = {**demo_values(1), "debut_accompagnement": "2999-01-01",
             "parcours": "Texte mis à jour."}
    saved = sheet_editing.save(db_session, referent_vault, opened, typed, canary_identity(30),
                               actor_id=None)
    assert saved.partly_saved and not saved.saved and set(saved.errors) == {
        "debut_accompagnement"}
    assert actions(db_session)[-1] == "sheet_saved"
    again = sheet_editing.open_sheet(db_session, referent_vault, draft).stored
    assert again["debut_accompagnement"] == opened.stored["debut_accompagnement"]
    assert again["parcours"] == "Texte mis à jour."


def test_a_valid_submission_saves_then_submits_and_each_step_is_audited(
        db_session, referent_vault, draft):
    opened = sheet_editing.open_sheet(db_session, referent_vault, draft)
    saved = sheet_editing.save(db_session, referent_vault, opened, demo_values(0),
                               canary_identity(30), submit=True, actor_id=None)
    assert saved.saved and saved.submitted and draft.status == "soumise"
    assert [a for a in actions(db_session) if a.startswith("sheet_")][-2:] == [
        "sheet_saved", "sheet_submit"]


def test_a_sheet_no_longer_editable_is_refused_in_french(db_session, vault, referent_vault,
                                                          draft):
    opened = sheet_editing.open_sheet(db_session, referent_vault, draft)
    transition(db_session, vault, draft, "withdraw", actor_id=None, reason="Test.")
    with pytest.raises(sheet_editing.NotEditableError, match="n'est plus modifiable"):
        sheet_editing.save(db_session, referent_vault, opened, demo_values(0),
                           canary_identity(30), actor_id=None)
    with pytest.raises(sheet_editing.NotEditableError):
        sheet_editing.open_sheet(db_session, referent_vault, draft)


def test_a_stashed_form_is_restored_once_and_to_its_author_only(
        db_session, keyring, world, referent_vault, draft):
    referent = world["users"]["referent"]
    pairs = [("parcours", "Saisie perdue ?")]
    token = sheet_editing.stash_form(db_session, Vault(db_session, keyring,
                                                       audit.Actor(None, "anonymous")),
                                     sheet_id=draft.id, user_id=referent.id, pairs=pairs)
    someone_else = Vault(db_session, keyring, audit.Actor(world["users"]["admin"].id))
    assert sheet_editing.restore_form(db_session, someone_else, draft, token) is None
    opened = sheet_editing.open_sheet(db_session, referent_vault, draft, display=True,
                                      stash_token=token)
    assert opened.restored == pairs and opened.identity is None
    assert db_session.scalars(select(FormStash)).all() == []
    assert sheet_editing.restore_form(db_session, referent_vault, draft, token) is None


def test_an_empty_or_oversized_form_is_not_stashed(db_session, referent_vault, draft, world):
    for pairs in ([], [("parcours", "x" * sheet_editing.STASH_MAX_CHARS)]):
        with pytest.raises(sheet_editing.InvalidInputError):
            sheet_editing.stash_form(db_session, referent_vault, sheet_id=draft.id,
                                     user_id=world["users"]["referent"].id, pairs=pairs)
