"""The minutes' signature: visas bear on the exact version read, the final PDF carries both."""

import hashlib
import shutil
import threading
from datetime import date, datetime, time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.domain import documents, meetings
from shared.encrypted import Vault
from shared.models import GeneratedDocument, Meeting, MinutesVisa, User
from tests.helpers import (
    client_as,
    csrf_token,
    examine_every_situation,
    generate,
    logged_in,
    pdf_text,
    step,
)


def minutes_ready_for_visas(world, db_session, vault) -> Meeting:
    """The world's session held today, its avis recorded, the minutes written."""
    meeting = world["meeting"]
    meeting.starts_at = datetime.combine(date.today(), time(9, 0))
    examine_every_situation(db_session, vault, meeting)
    meeting.state = "pv_redige"
    db_session.commit()
    return meeting


def visa(director, meeting_id, institution, document_id) -> None:
    director.post(f"/visas/{meeting_id}/{institution}", data={
        "csrf_token": csrf_token(director, "/visas/"), "document_id": str(document_id)})


def latest_minutes(db_session) -> GeneratedDocument:
    db_session.expire_all()
    return db_session.scalars(select(GeneratedDocument).where(
        GeneratedDocument.kind == "minutes").order_by(GeneratedDocument.id.desc())).first()


@pytest.mark.skipif(not (shutil.which("soffice") and shutil.which("pdftotext")),
                    reason="LibreOffice and poppler-utils are installed by .ci/run")
def test_visas_bear_on_the_version_read_and_the_final_pdf_carries_both(
        app, world, db_session, vault, worker_process):
    meeting = minutes_ready_for_visas(world, db_session, vault)
    facilitator = logged_in(app, "facilitator@test.invalid")
    generate(facilitator, meeting.id, "minutes")
    step(facilitator, meeting.id, "send_minutes")
    departement, france_travail = client_as(app, "director"), client_as(app, "other_director")
    read_first = latest_minutes(db_session)
    visa(departement, meeting.id, "departement", read_first.id)

    # The facilitator builds the minutes again while they await visas: the new version
    # carries no visa (nobody approved it), and the earlier visa does not stand for it.
    generate(facilitator, meeting.id, "minutes", rebuild=True)
    rebuilt = latest_minutes(db_session)
    assert rebuilt.id != read_first.id
    assert "Visa apposé" not in pdf_text(vault.open_blob(rebuilt, "pdf_body"))
    assert documents.standing_visas(db_session, db_session.get(Meeting, meeting.id),
                                    rebuilt) == {}

    visa(france_travail, meeting.id, "france_travail", rebuilt.id)
    visa(departement, meeting.id, "departement", rebuilt.id)
    db_session.expire_all()
    assert db_session.get(Meeting, meeting.id).state == "pv_signe"
    standing = db_session.scalars(select(MinutesVisa).where(
        MinutesVisa.document_id == rebuilt.id)).all()
    assert {v.institution for v in standing} == {"departement", "france_travail"}
    body = vault.open_blob(rebuilt, "body")
    assert all(v.sha256 == hashlib.sha256(body).hexdigest() for v in standing)

    generate(facilitator, meeting.id, "minutes")  # the final version, built on the 2nd visa
    final = latest_minutes(db_session)
    assert final.id != rebuilt.id and final.pdf_body is not None
    text = pdf_text(vault.open_blob(final, "pdf_body"))
    for row in standing:
        assert row.sha256[:16] in text.replace("\n", "")
        assert db_session.get(User, row.user_id).full_name in text


def test_two_directors_signing_at_the_same_moment_both_count(app, world, db_session, vault,
                                                             engine, keyring):
    from shared.domain import audit

    meeting = minutes_ready_for_visas(world, db_session, vault)
    meeting.state = "pv_en_signature"
    minutes = GeneratedDocument(meeting_id=meeting.id, kind="minutes", content_version=1,
                                filename="pv.docx", media_type="application/octet-stream",
                                size=4, body=b"")
    db_session.add(minutes)
    db_session.commit()
    users = {"departement": world["users"]["director"],
             "france_travail": world["users"]["other_director"]}
    first = Session(engine)
    first_vault = Vault(first, keyring, audit.Actor(users["departement"].id))
    # The first visa is written, not yet committed, when the second director signs.
    done_first = meetings.apply_visa(first, first_vault, first.get(Meeting, meeting.id),
                                      first.get(GeneratedDocument, minutes.id),
                                      first.get(User, users["departement"].id), "departement",
                                      "a" * 64)
    results = {}

    def second_director():
        with Session(engine) as second:
            second_vault = Vault(second, keyring, audit.Actor(users["france_travail"].id))
            results["done"] = meetings.apply_visa(
                second, second_vault, second.get(Meeting, meeting.id),
                second.get(GeneratedDocument, minutes.id),
                second.get(User, users["france_travail"].id), "france_travail", "a" * 64)
            second.commit()

    thread = threading.Thread(target=second_director)
    thread.start()
    thread.join(timeout=1.0)
    first.commit()
    first.close()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert done_first is False and results == {"done": True}
    db_session.expire_all()
    assert db_session.get(Meeting, meeting.id).state == "pv_signe"
