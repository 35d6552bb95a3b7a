import re

from sqlalchemy import select

from shared.models import AuditEvent, Circonscription, Structure, User
from tests.factories import PASSWORD, canary_identity, make_sheet
from tests.helpers import client_as, create_account, csrf_token, logged_in, wait_for


def test_admin_creates_a_facilitator_who_must_change_the_one_time_password(
        app, client, auth, world, db_session):
    auth.login("admin@test.invalid", PASSWORD)
    response = create_account(client, email="Nouvelle.CAT@Test.Invalid", full_name="Nouvelle CAT",
                              role="facilitator", structure_id="0",
                              circonscription_ids=[str(world["north"].id)])
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Mot de passe provisoire" in body
    password = re.search(r"<code>([^<]+)</code>", body).group(1)
    user = db_session.scalar(select(User).where(User.email == "nouvelle.cat@test.invalid"))
    assert user.must_change_password and user.circonscription_ids == {world["north"].id}
    assert password not in user.password_hash
    newcomer = app.test_client()
    token = csrf_token(newcomer, "/connexion")
    newcomer.post("/connexion", data={"csrf_token": token, "email": "nouvelle.cat@test.invalid",
                                      "password": password})
    assert newcomer.get("/").headers["Location"] == "/mot-de-passe"


def test_referent_without_structure_is_refused_with_a_french_message(client, auth, world,
                                                                     db_session):
    auth.login("admin@test.invalid", PASSWORD)
    before = db_session.scalar(select(User.id).order_by(User.id.desc()))
    response = create_account(client, email="ref@test.invalid", full_name="Réf",
                              role="referent", structure_id="0")
    assert "doit être rattaché·e à une structure" in response.get_data(as_text=True)
    assert db_session.scalar(select(User.id).order_by(User.id.desc())) == before


def test_duplicate_email_is_refused(client, auth, world):
    auth.login("admin@test.invalid", PASSWORD)
    response = create_account(client, email="DIRECTOR@test.invalid", full_name="Doublon",
                              role="director", structure_id="0")
    assert "Un compte existe déjà" in response.get_data(as_text=True)


def test_admin_deactivates_then_reactivates_an_account(client, auth, world, db_session):
    auth.login("admin@test.invalid", PASSWORD)
    director = world["users"]["director"]
    response = auth.post(f"/admin/utilisateurs/{director.id}/desactiver")
    assert response.status_code == 302
    db_session.expire_all()
    assert db_session.get(User, director.id).active is False
    auth.post(f"/admin/utilisateurs/{director.id}/activer")
    db_session.expire_all()
    assert db_session.get(User, director.id).active is True
    actions = db_session.scalars(select(AuditEvent.action)).all()
    assert {"user_deactivated", "user_activated"} <= set(actions)


def test_admin_cannot_deactivate_their_own_account(client, auth, world, db_session):
    auth.login("admin@test.invalid", PASSWORD)
    admin = world["users"]["admin"]
    auth.post(f"/admin/utilisateurs/{admin.id}/desactiver")
    db_session.expire_all()
    assert db_session.get(User, admin.id).active is True


def test_admin_resets_a_password(app, client, auth, world, db_session):
    auth.login("admin@test.invalid", PASSWORD)
    director = world["users"]["director"]
    body = auth.post(f"/admin/utilisateurs/{director.id}/reinitialiser").get_data(as_text=True)
    password = re.search(r"<code>([^<]+)</code>", body).group(1)
    other = app.test_client()
    token = csrf_token(other, "/connexion")
    assert other.post("/connexion", data={"csrf_token": token, "email": "director@test.invalid",
                                          "password": PASSWORD}).status_code == 401
    token = csrf_token(other, "/connexion")
    assert other.post("/connexion", data={"csrf_token": token, "email": "director@test.invalid",
                                          "password": password}).status_code == 302


def test_admin_edits_circonscriptions_and_refuses_a_duplicate_code(client, auth, world,
                                                                   db_session):
    auth.login("admin@test.invalid", PASSWORD)
    token = csrf_token(client, "/admin/circonscriptions/nouvelle")
    response = client.post("/admin/circonscriptions/nouvelle", data={
        "csrf_token": token, "code": "C09", "name": "Aulnay-sous-Bois", "active": "y"})
    assert response.status_code == 302
    assert db_session.scalar(select(Circonscription).where(Circonscription.code == "C09"))
    response = client.post(f"/admin/circonscriptions/{world['south'].id}", data={
        "csrf_token": token, "code": "C09", "name": "Montreuil", "active": "y"})
    assert "Une autre circonscription porte déjà ce code." in response.get_data(as_text=True)
    response = client.post("/admin/circonscriptions/nouvelle", data={
        "csrf_token": token, "code": "c 9!", "name": "X"})
    assert "2 à 8 lettres majuscules ou chiffres." in response.get_data(as_text=True)


def test_admin_creates_a_structure(client, auth, world, db_session):
    auth.login("admin@test.invalid", PASSWORD)
    token = csrf_token(client, "/admin/structures/nouvelle")
    response = client.post("/admin/structures/nouvelle", data={
        "csrf_token": token, "name": "CCAS de Stains", "type": "service_social_municipal",
        "circonscription_id": str(world["north"].id), "active": "y"})
    assert response.status_code == 302
    structure = db_session.scalar(select(Structure).where(Structure.name == "CCAS de Stains"))
    assert structure.circonscription_id == world["north"].id


def test_admin_renames_adds_and_deactivates_reference_entries(app, client, auth, world,
                                                              db_session, vault):
    from shared.models import ReferenceItem

    auth.login("admin@test.invalid", PASSWORD)
    cer = db_session.scalar(select(ReferenceItem).where(ReferenceItem.kind == "contrat",
                                                        ReferenceItem.code == "cer"))
    token = csrf_token(client, f"/admin/referentiels/contrat/{cer.id}")
    response = client.post(f"/admin/referentiels/contrat/{cer.id}", data={
        "csrf_token": token, "label": "CER (ancien régime, avant 2025)", "code": "hacked"})
    assert response.status_code == 302
    db_session.expire_all()
    cer = db_session.get(ReferenceItem, cer.id)
    assert cer.label == "CER (ancien régime, avant 2025)" and cer.code == "cer"
    assert cer.active is False  # the box was not ticked: no longer offered

    token = csrf_token(client, "/admin/referentiels/motif/nouveau")
    response = client.post("/admin/referentiels/motif/nouveau", data={
        "csrf_token": token, "code": "sortie_rsa", "label": "Sortie du RSA", "active": "y"})
    assert response.status_code == 302
    duplicate = client.post("/admin/referentiels/motif/nouveau", data={
        "csrf_token": token, "code": "sortie_rsa", "label": "Encore", "active": "y"})
    assert "Ce code existe déjà" in duplicate.get_data(as_text=True)
    assert client.get("/admin/referentiels/inconnu/nouveau").status_code == 404

    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(1),
                       author_id=world["users"]["referent"].id)
    db_session.commit()
    form = client_as(app, "referent").get(f"/fiches/{sheet.id}/modifier")
    body = form.get_data(as_text=True)
    assert "Sortie du RSA" in body and "CER (ancien régime" not in body


def test_the_keys_page_runs_a_rotation_with_confirmations_and_shows_no_key(
        settings, engine, db_session, tmp_path):
    import dataclasses
    import json

    from intake import create_app
    from shared.crypto import KeyRing
    from shared.domain import audit
    from shared.domain.users import RoleSpec, create_user
    from shared.encrypted import Vault
    from shared.models import AuditEvent, RecordKey
    from tests.factories import reference_data

    # An instance with a keyring of its own (the suite's shared one is never edited)
    path = tmp_path / "keyring.json"
    KeyRing.create_file(path)
    app = create_app(dataclasses.replace(settings, keyring_path=path))
    app.config["TESTING"] = True
    vault = Vault(db_session, KeyRing.load(path), audit.CLI)
    _north, _south, structures = reference_data(db_session)
    for n in range(3):
        make_sheet(db_session, vault, structures["ssd"], canary_identity(n))
    create_user(db_session, email="admin@test.invalid", full_name="Admin", password=PASSWORD,
                role=RoleSpec("admin"))
    db_session.commit()

    admin = logged_in(app, "admin@test.invalid")
    keyring_text = path.read_text()
    page = admin.get("/admin/cles").get_data(as_text=True)
    assert "Clés de chiffrement" in page and "Identité" in page
    secrets = [v["key"] for c in json.loads(keyring_text)["chains"].values()
               for v in c["versions"].values()]
    assert not any(secret in page for secret in secrets)

    # Without the confirmation box nothing happens
    token = csrf_token(admin, "/admin/cles")
    admin.post("/admin/cles/content/ajouter", data={"csrf_token": token})
    assert path.read_text() == keyring_text

    confirmed = {"csrf_token": token, "confirmer": "oui"}
    admin.post("/admin/cles/content/ajouter", data=confirmed)
    assert "2" in json.loads(path.read_text())["chains"]["content"]["versions"]
    app.extensions["icli"].heartbeat.beat(force=True)  # this process reloaded: it holds v2
    admin.post("/admin/cles/content/2/promouvoir", data=confirmed)
    assert json.loads(path.read_text())["chains"]["content"]["primary"] == 2
    admin.post("/admin/cles/content/rotation", data=confirmed)

    def rotated():
        db_session.expire_all()
        versions = set(db_session.scalars(select(RecordKey.kek_version)
                                          .where(RecordKey.chain == "content")))
        db_session.commit()
        return versions == {2}

    wait_for(rotated, timeout=30)
    wait_for(lambda: admin.get("/admin/cles/rotations.json").get_json()["rotations"][0][
        "status"] == "terminée", timeout=30)
    admin.post("/admin/cles/content/1/retirer", data=confirmed)
    assert list(json.loads(path.read_text())["chains"]["content"]["versions"]) == ["2"]
    actions = set(db_session.scalars(select(AuditEvent.action)))
    assert {"key_added", "key_promoted", "key_rotation_done", "key_retired"} <= actions
    app.extensions["icli"].engine.dispose()
    app.extensions["icli"].redis.close()


def test_the_mail_and_keys_pages_give_paris_times_and_never_utc(app, world, settings):
    import os
    from datetime import UTC, datetime

    from intake.dates import paris_time

    # Given an outbox file written at 22:30 UTC on 14 July: 00:30 on 15 July in Paris
    folder = settings.mail_outbox_dir
    folder.mkdir(parents=True, exist_ok=True)
    written = folder / "00000000-0000-4000-8000-000000000714.eml"
    written.write_bytes(b"Subject: test\r\n\r\ntest\r\n")
    moment = datetime(2026, 7, 14, 22, 30, tzinfo=UTC).timestamp()
    os.utime(written, (moment, moment))
    try:
        admin = client_as(app, "admin")
        page = admin.get("/admin/courriels").get_data(as_text=True)
        assert written.name in page and "15/07/2026 à 00:30" in page
        assert "UTC" not in page
        # The keys page: the processes seen and the versions' creation dates
        app.extensions["icli"].heartbeat.beat(force=True)
        page = admin.get("/admin/cles").get_data(as_text=True)
        assert "UTC" not in page
        assert re.search(r"<td>\d\d/\d\d/\d{4} à \d\d:\d\d:\d\d</td>", page)
    finally:
        written.unlink()
    # ISO text (the key ring's times, the keys status's) is read, offset included
    assert paris_time("2026-07-14T22:30:05Z", "%d/%m/%Y à %H:%M:%S") == "15/07/2026 à 00:30:05"
    assert paris_time("2026-01-14T23:30:00+00:00", "%d/%m/%Y") == "15/01/2026"
    assert paris_time("", "%d/%m/%Y") == "" and paris_time("hier") == "hier"
