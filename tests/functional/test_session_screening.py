"""The facilitator's refused session texts: caught words highlighted in place, dismissed one
by one with a reason, through the real forms (issue 15, bug 2)."""

import html
import re

from sqlalchemy import select

from shared.models import AgendaItem, AuditEvent, Meeting, Structure
from tests.helpers import flash_text, logged_in, post


def test_a_refused_agenda_title_is_shown_highlighted_and_a_finding_dismissed_with_a_reason(
        app, world, db_session):
    facilitator = logged_in(app, "facilitator@test.invalid")
    meeting = world["meeting"]
    db_session.add(Structure(name="ALI de Bobigny", type="ali"))
    db_session.commit()
    url = f"/seances/{meeting.id}"
    presenter = {"presenter_structure": "ALI de Bobigny", "presenter_role": "Directrice"}
    page = post(facilitator, f"{url}/points", {"title": "présentation de l'ALI de Bobigny",
                                                "duration": "20", **presenter}, url)
    assert "Point ajouté" in flash_text(page)

    title = "Retour sur la famille Benali (Bondy)"
    page = post(facilitator, f"{url}/points", {"title": title, "duration": "30", **presenter},
                url)
    body = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 422 and "Point non ajouté" in flash_text(page)
    assert re.search(r'<mark class="open"[^>]*>Benali</mark>', body)
    assert "Benali" not in flash_text(page)
    key = re.search(r'name="dismiss_([^"]+)"', body).group(1)
    assert 'name="duration" value="30"' in body  # the rest of the form comes back
    page = post(facilitator, f"{url}/points", {"title": title, "duration": "30", **presenter,
                                                f"dismiss_{key}": "mot_courant"}, url)
    assert "Point ajouté" in flash_text(page)
    db_session.expire_all()
    assert [i.title for i in db_session.get(Meeting, meeting.id).items if not i.sheet_id][-1] \
        == title
    event = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "screening_dismissed")).one()
    assert event.fields == "person/mot_courant/1"


def test_an_adjournment_reason_naming_the_person_is_highlighted_and_cannot_be_dismissed(
        app, world, db_session):
    facilitator = logged_in(app, "facilitator@test.invalid")
    meeting = world["meeting"]
    meeting.state = "tenue"
    db_session.commit()
    item = next(i for i in meeting.items if i.sheet_id)
    url = f"/seances/{meeting.id}"
    identity = world["identities"][0]
    reason = f"Attendre le retour de {identity.prenom} ({identity.telephone})."
    page = post(facilitator, f"{url}/points/{item.id}/ajourner",
                {"reason": reason, "target_id": "0"}, url)
    body = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 422
    assert re.search(rf'<mark class="own"[^>]*>{identity.prenom}</mark>', body)
    assert re.search(rf'<mark class="own"[^>]*>{identity.telephone}</mark>', body)
    assert 'name="dismiss_' not in body
    message = flash_text(page)
    assert identity.prenom not in message and identity.telephone not in message
    db_session.expire_all()
    assert db_session.get(AgendaItem, item.id).outcome == ""
