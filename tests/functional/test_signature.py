"""The minutes' signature: visas bear on the exact version read, the final PDF carries both."""

import hashlib
import html
import io
import shutil
import threading
import zipfile
from datetime import date, datetime, time

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.domain import documents, meetings
from shared.encrypted import Vault
from shared.models import (
    GeneratedDocument,
    Meeting,
    MinutesCorrection,
    MinutesReading,
    MinutesVisa,
    Notification,
    User,
)
from tests.helpers import (
    client_as,
    csrf_token,
    examine_every_situation,
    flash_text,
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


def visa(director, meeting_id, institution, document_id, *, read: bool = True,
         confirm: bool = True):
    """A director's visa through the page: the minutes opened first, the visa confirmed."""
    if read:
        assert director.get(f"/visas/documents/{document_id}").status_code == 200
    url = f"/visas/{meeting_id}/{institution}"
    return director.post(url, follow_redirects=True, data={
        "csrf_token": csrf_token(director, "/visas/"), "document_id": str(document_id),
        **({"confirm": "1"} if confirm else {})})


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
    # Numbered per kind: the third minutes of the session, whatever its edit counter.
    assert [read_first.number, rebuilt.number, final.number] == [1, 2, 3]
    assert final.filename.endswith("-v3.docx")
    text = pdf_text(vault.open_blob(final, "pdf_body"))
    flat = text.replace("\n", " ")
    for row in standing:
        assert row.sha256[:16] in text.replace("\n", "")
        assert db_session.get(User, row.user_id).full_name in text
    # It names the approved file, which the directors' page and the archive both offer.
    assert rebuilt.filename in flat and "(version 2)" in flat
    inbox = departement.get("/visas/").get_data(as_text=True)
    assert f"/visas/documents/{rebuilt.id}" in inbox and "Version approuvée" in inbox
    approved = departement.get(f"/visas/documents/{rebuilt.id}")
    assert hashlib.sha256(approved.data).hexdigest() == standing[0].sha256
    with zipfile.ZipFile(io.BytesIO(facilitator.get(
            f"/seances/{meeting.id}/archive").data)) as bundle:
        assert hashlib.sha256(bundle.read(rebuilt.filename)).hexdigest() == standing[0].sha256
        assert final.filename in bundle.namelist()


def test_a_director_opens_and_confirms_before_signing_or_sends_the_minutes_back(
        app, world, db_session, vault):
    meeting = minutes_ready_for_visas(world, db_session, vault)
    meeting.state = "pv_en_signature"
    minutes = GeneratedDocument(meeting_id=meeting.id, kind="minutes", content_version=1,
                                filename="proces-verbal-v1.docx", number=1,
                                media_type="application/octet-stream", size=4, body=b"")
    db_session.add(minutes)
    db_session.flush()
    vault.seal_blob(minutes, "body", b"PK-minutes")
    db_session.commit()
    departement, france_travail = client_as(app, "director"), client_as(app, "other_director")

    # Not opened: no visa, no correction; the page says to open it first.
    page = visa(departement, meeting.id, "departement", minutes.id, read=False)
    assert "Ouvrez d'abord le procès-verbal (version 1)" in html.unescape(flash_text(page))
    review = html.unescape(departement.get(f"/visas/{meeting.id}/departement").get_data(
        as_text=True))
    assert "disabled" in review and "J'ai lu la version 1" in review
    # Another institution's page is not a France Travail director's to see
    assert france_travail.get(f"/visas/{meeting.id}/departement").status_code == 404
    # Opened but not confirmed: refused too.
    page = visa(departement, meeting.id, "departement", minutes.id, confirm=False)
    assert "Cochez la case de confirmation" in flash_text(page)
    assert db_session.scalar(select(func.count()).select_from(MinutesVisa)) == 0
    assert "disabled" not in departement.get(f"/visas/{meeting.id}/departement").get_data(
        as_text=True)
    page = visa(departement, meeting.id, "departement", minutes.id, read=False)
    assert "Visa apposé." in flash_text(page)

    # France Travail asks for a correction instead: a comment naming someone is refused.
    def correction(comment):
        assert france_travail.get(f"/visas/documents/{minutes.id}").status_code == 200
        return france_travail.post(
            f"/visas/{meeting.id}/france_travail/correction", follow_redirects=True,
            data={"csrf_token": csrf_token(france_travail, "/visas/"),
                  "document_id": str(minutes.id), "comment": comment})

    refused = correction("Rappeler la personne au 06 12 34 56 78 avant diffusion.")
    assert refused.status_code == 422 and "ne doit désigner personne" in flash_text(refused)
    # A name the detector may not read as one is caught against the session's people
    surname = world["identities"][0].nom
    refused = correction(f"Situation {world['sheets'][0].reference} : {surname.lower()} "
                         "conteste l'avis.")
    assert refused.status_code == 422 and "ne doit désigner personne" in flash_text(refused)
    # The Département, which signed this version, can no longer send it back
    assert departement.get(f"/visas/documents/{minutes.id}").status_code == 200
    page = departement.post(f"/visas/{meeting.id}/departement/correction",
                            follow_redirects=True,
                            data={"csrf_token": csrf_token(departement, "/visas/"),
                                  "document_id": str(minutes.id), "comment": "À revoir."})
    assert "a déjà visé cette version" in html.unescape(flash_text(page))
    db_session.expire_all()
    assert db_session.get(Meeting, meeting.id).state == "pv_en_signature"
    reference = world["sheets"][0].reference
    page = correction(f"Situation {reference} : l'échéance de la préconisation manque.")
    assert "Demande de correction transmise" in flash_text(page)
    db_session.expire_all()
    meeting = db_session.get(Meeting, meeting.id)
    assert meeting.state == "pv_redige"
    (request,) = db_session.scalars(select(MinutesCorrection)).all()
    assert request.institution == "france_travail" and request.document_id == minutes.id
    told = db_session.scalars(select(Notification).where(
        Notification.kind == "minutes_correction")).all()
    assert {n.user_id for n in told} == {world["users"]["facilitator"].id}
    # The CAT reads the comment on the session's page; the earlier visa no longer stands.
    facilitator = logged_in(app, "facilitator@test.invalid")
    page = facilitator.get(f"/seances/{meeting.id}").get_data(as_text=True)
    assert "Corrections du procès-verbal demandées" in page
    assert f"Situation {reference} : l'échéance de la préconisation manque." in html.unescape(
        page)
    assert documents.standing_visas(db_session, meeting, minutes) == {}
    # The version sent back cannot go for visas again: a corrected one must be built.
    step(facilitator, meeting.id, "send_minutes")
    db_session.expire_all()
    assert db_session.get(Meeting, meeting.id).state == "pv_redige"
    assert "d'une demande de correction" in html.unescape(facilitator.get(
        f"/seances/{meeting.id}").get_data(as_text=True))


def test_two_directors_signing_at_the_same_moment_both_count(app, world, db_session, vault,
                                                             engine, keyring):
    from shared.domain import audit

    meeting = minutes_ready_for_visas(world, db_session, vault)
    meeting.state = "pv_en_signature"
    minutes = GeneratedDocument(meeting_id=meeting.id, kind="minutes", content_version=1,
                                filename="pv.docx", media_type="application/octet-stream",
                                size=4, body=b"")
    db_session.add(minutes)
    db_session.flush()
    users = {"departement": world["users"]["director"],
             "france_travail": world["users"]["other_director"]}
    db_session.add_all(MinutesReading(document_id=minutes.id, user_id=user.id)
                       for user in users.values())
    db_session.commit()
    first = Session(engine)
    first_vault = Vault(first, keyring, audit.Actor(users["departement"].id))
    # The first visa is written, not yet committed, when the second director signs.
    done_first = meetings.apply_visa(first, first_vault, first.get(Meeting, meeting.id),
                                      first.get(GeneratedDocument, minutes.id),
                                      first.get(User, users["departement"].id), "departement",
                                      "a" * 64, confirmed=True)
    results = {}

    def second_director():
        with Session(engine) as second:
            second_vault = Vault(second, keyring, audit.Actor(users["france_travail"].id))
            results["done"] = meetings.apply_visa(
                second, second_vault, second.get(Meeting, meeting.id),
                second.get(GeneratedDocument, minutes.id),
                second.get(User, users["france_travail"].id), "france_travail", "a" * 64,
                confirmed=True)
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
