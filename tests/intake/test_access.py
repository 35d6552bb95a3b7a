"""Walk every route as every role: access is checked on the server for each of them."""

import pytest
from sqlalchemy import select

from shared.domain import documents
from shared.domain.meetings import add_partnership_item, inscribe_sheet
from shared.models import (
    ApiClient,
    Decision,
    DecisionAction,
    GeneratedDocument,
    Meeting,
    Member,
    Notification,
    ReferenceItem,
    TemplateVersion,
)
from tests.factories import canary_identity, canary_values, make_sheet
from tests.helpers import client_as, csrf_token

ROLES = ["anonymous", "referent", "other_referent", "facilitator", "other_facilitator",
         "director", "admin", "dpo"]
# The convocation answer link needs no account (its token is checked instead); the health
# probes answer whoever asks (check names only), /metrics whoever holds its token
# (tests/intake/test_monitoring.py).
# Signing in has steps before the account is logged in (its second factor, an OpenID Connect
# provider's round trip) and one after it is logged out (back from the provider's logout).
PUBLIC = {"auth.login", "main.healthz", "main.readyz", "main.prometheus_metrics", "static",
          "main.accessibility",
          "convocations.answer", "auth.second_factor_code", "auth.second_factor_enrolment",
          "auth.oidc_start", "auth.oidc_callback", "auth.logged_out"}
# The API answers a bearer token, never the login session, and its OpenAPI document is public
# (tests/functional/test_api.py).
TOKEN_API = ("api.", "api-docs.")
# Meeting-scoped endpoints: a facilitator of another circonscription gets 404, not 403.
# Scoped endpoints: a facilitator of another circonscription (or a referent of another
# structure) gets 404, not 403: nothing tells them the record exists.
SCOPED = {"sheets.show", "sheets.edit", "sheets.withdraw", "sheets.screen",
          "sheets.reveal_identity", "sheets.document_download",
          "sheets.information_note", "followup.mark_done", "sheets.access_export",
          "followup.bring_back", "followup.partnership_done", "sheets.identity_choice"}


def scoped(endpoint):
    return endpoint in SCOPED or (endpoint.startswith("meetings.")
                                  and endpoint != "meetings.index")


@pytest.fixture
def routes(app, world, db_session, vault):
    meeting = world["meeting"]
    document = GeneratedDocument(meeting_id=meeting.id, kind="agenda", content_version=1,
                                 filename="odj.docx", media_type="application/octet-stream",
                                 size=3, body=b"")
    db_session.add(document)
    db_session.flush()
    vault.seal_blob(document, "body", b"doc")
    signing = Meeting(circonscription_id=world["north"].id, starts_at=meeting.starts_at,
                      place="Salle", state="pv_en_signature")  # minutes sent to the directors
    db_session.add(signing)
    db_session.flush()
    minutes = GeneratedDocument(meeting_id=signing.id, kind="minutes", content_version=1,
                                filename="pv.docx", media_type="application/octet-stream",
                                size=3, body=b"")
    db_session.add(minutes)
    db_session.flush()
    vault.seal_blob(minutes, "body", b"pv")
    # Queued, not failed: an administrator's « Relancer » is refused and changes nothing.
    agenda_job = documents.request_document(db_session, meeting, "agenda", None)
    referent = world["users"]["referent"]
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(9),
                       author_id=referent.id, status="soumise")
    decision = Decision(meeting_id=meeting.id, sheet=world["sheets"][0], avis="maintien")
    action = DecisionAction(decision=decision)
    db_session.add_all([decision, action])
    db_session.flush()
    vault.seal(action, "label", "Préconisation de test")
    feedback = GeneratedDocument(meeting_id=meeting.id, kind="feedback", content_version=1,
                                 sheet_id=sheet.id, filename="fr.docx", size=2, body=b"",
                                 media_type="application/octet-stream")
    db_session.add(feedback)
    db_session.flush()
    vault.seal_blob(feedback, "body", b"fr")
    template = TemplateVersion(kind="agenda", version=1, filename="modele.docx",
                               sha256="0" * 64, size=3, body=b"doc")
    db_session.add(template)
    member = Member(circonscription_id=world["north"].id, name="Membre Test", kind="permanent")
    db_session.add(member)
    failed_mail = Notification(kind="sheet_submitted", user_id=world["users"]["facilitator"].id,
                               sheet_id=sheet.id, status="failed", error_message="code 550")
    db_session.add(failed_mail)
    api_client = ApiClient(name="SI", token_hash="0" * 64, scopes="export",
                           expires_at=meeting.starts_at)
    db_session.add(api_client)
    db_session.commit()
    eml = f"{failed_mail.uuid}.eml"  # a development outbox file
    (app.extensions["icli"].settings.mail_outbox_dir).mkdir(exist_ok=True)
    (app.extensions["icli"].settings.mail_outbox_dir / eml).write_text("Subject: test\n")
    situation = meeting.items[-1]
    # An ICAG entry and a partnership item for their own pages (never removed by the walk).
    icag_item = inscribe_sheet(db_session, vault, meeting, make_sheet(
        db_session, vault, world["structures"]["ssd"], canary_identity(9), status="recevable"),
        "16:00", part="icag", icag_kind="entree")
    partnership_item = add_partnership_item(db_session, vault, meeting, "Point d'accès",
                                            presenter_structure="PLIE", presenter_role="Cheffe")
    db_session.commit()
    own_item = {"meetings.icag_step": icag_item.id,
                "meetings.partnership_outcome": partnership_item.id,
                "followup.partnership_done": partnership_item.id}
    # Agenda item ids, an action no state allows without a reason (nothing changes).
    meeting_values = {"item_id": situation.id, "action": "cancel",
                      "member_id": member.id, "direction": "monter"}
    values = {"meeting_id": meeting.id, "document_id": document.id, "kind": "agenda",
              "sheet_id": sheet.id, "institution": "departement", "version_id": template.id,
              "item_id": db_session.scalar(
                  select(ReferenceItem.id).where(ReferenceItem.kind == "motif").limit(1)),
              "user_id": world["users"]["director"].id, "action": "desactiver",
              "circ_id": world["north"].id, "structure_id": world["structures"]["ali"].id,
              "filename": "app.css", "action_id": action.id, "chain": "content", "version": 1,
              "notification_id": failed_mail.id, "name": eml, "token": "not-a-token",
              "job_id": agenda_job.id, "client_id": api_client.id}
    out = []
    for rule in app.url_map.iter_rules():
        args = {k: values.get(k, meeting_values.get(k)) for k in rule.arguments}
        if rule.endpoint.startswith("admin.reference"):
            args["kind"] = "motif"
        if rule.endpoint.startswith("meetings."):
            args.update({k: v for k, v in meeting_values.items() if k in rule.arguments})
        if rule.endpoint == "sheets.document_download":
            args["document_id"] = feedback.id
        if rule.endpoint == "signatures.download":
            args["document_id"] = minutes.id
        if rule.endpoint == "meetings.member_toggle":
            args["action"] = "desactiver"
        if rule.endpoint == "meetings.remove_item":  # keep the situations for later routes
            args["item_id"] = meeting.items[0].id
        if rule.endpoint in own_item:
            args["item_id"] = own_item[rule.endpoint]
        url = rule.build(args, append_unknown=False)[1]
        method = "GET" if "GET" in rule.methods else "POST"
        out.append((rule.endpoint, url, method))
    return out


def expected_status(app, endpoint, role):
    if endpoint in PUBLIC or endpoint.startswith(TOKEN_API):
        return None  # anyone; checked separately
    if role == "anonymous":
        return 302
    required = getattr(app.view_functions[endpoint], "required_roles", None)
    if required is None:
        return None  # any logged-in user
    base_role = role.removeprefix("other_")
    if base_role not in required:
        return 403
    if role.startswith("other_") and scoped(endpoint):
        return 404
    return "allowed"


@pytest.mark.parametrize("role", ROLES)
def test_every_route_checks_access_for_every_role(app, routes, world, role):
    client = client_as(app, role)
    secrets = [world["meeting"].place, *(s.reference for s in world["sheets"]),
               *(s.beneficiary.pseudonym for s in world["sheets"]),
               *canary_values(canary_identity(9))]
    checked = 0
    for endpoint, url, method in routes:
        expected = expected_status(app, endpoint, role)
        if expected is None:
            continue
        if method == "GET":
            response = client.get(url)
        else:
            token = csrf_token(client, "/connexion" if role == "anonymous" else "/")
            response = client.post(url, data={"csrf_token": token})
        body = response.get_data().decode("utf-8", "replace")  # archives are binary
        if expected == "allowed":
            assert response.status_code not in (401, 403, 404), (endpoint, role)
        else:
            assert response.status_code == expected, (endpoint, role, response.status_code)
            if expected == 302:
                assert response.headers["Location"].startswith("/connexion")
            assert not any(secret in body for secret in secrets), (endpoint, role)
        checked += 1
    assert checked >= 15


def test_public_routes_answer_without_login(app, world):
    client = app.test_client()
    assert client.get("/connexion").status_code == 200
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_admin_never_sees_beneficiary_data(app, world):
    client = client_as(app, "admin")
    for url in ["/", "/admin/utilisateurs", "/admin/structures", "/admin/circonscriptions"]:
        body = client.get(url).get_data(as_text=True)
        for sheet in world["sheets"]:
            assert sheet.reference not in body
            assert sheet.beneficiary.pseudonym not in body
        for identity in world["identities"]:
            assert identity.nom not in body
