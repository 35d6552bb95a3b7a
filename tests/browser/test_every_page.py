"""Every page each role reaches, in the real browser, at a desktop's width and a phone's
(issue 22): no horizontal scroll on a phone, and no accessibility violation found by axe-core
(vendored: tests/browser/vendor), of any impact, at either width."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.pages import LoginPage
from tests.factories import PASSWORD, canary_identity, make_sheet

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
WIDTHS = (1280, 390)  # a desktop; a phone (iPhone 12 to 15)
# Where to keep a picture of each role's home and main page (CI keeps them as artefacts; the
# README shows those in docs/screenshots/).
SCREENSHOTS = os.environ.get("ICLI_SCREENSHOT_DIR")

# The innermost elements reaching past the screen's edge, outside any scrolling box: what
# makes the page scroll sideways.
TOO_WIDE = """
const edge = arguments[0];
const scrolls = (e) => { for (let a = e.parentElement; a; a = a.parentElement) {
  if (["auto", "scroll"].includes(getComputedStyle(a).overflowX)) return true; } return false; };
const past = (e) => e.getBoundingClientRect().right > edge + 1 && !scrolls(e);
return [...document.body.querySelectorAll("*")]
  .filter((e) => past(e) && ![...e.children].some(past)).slice(0, 3)
  .map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
              + (e.className && typeof e.className === "string" ? "." + e.className : ""));
"""

RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]}).then(
  (result) => done(result.violations.map((v) => [v.id, v.impact, v.nodes.length,
                                                 v.nodes[0].target.join(" ")])),
  (error) => done([["axe-error", String(error), 0, ""]]));
"""


def pages_by_role(world, own_sheet_id: int) -> dict[str, list[str]]:
    """Each role's pages; the first two are its home and its main page (the screenshots)."""
    meeting = world["meeting"]
    north = world["north"].id
    item = next(i for i in meeting.items if i.sheet_id is not None)
    return {
        "referent": ["/", "/fiches/", "/fiches/nouvelle", f"/fiches/{own_sheet_id}",
                     f"/fiches/{own_sheet_id}/modifier", "/compte"],
        "facilitator": ["/", f"/seances/{meeting.id}", "/fiches/?vue=instance",
                        f"/fiches/{world['sheets'][0].id}", "/seances/",
                        f"/seances/{meeting.id}/points/{item.id}/avis",
                        f"/seances/calendrier/{north}", f"/seances/membres/{north}",
                        "/suivi/", "/suivi/statistiques", "/suivi/decisions-en-attente"],
        "director": ["/", "/visas/", "/suivi/decisions-en-attente", "/suivi/departement"],
        "admin": ["/", "/admin/utilisateurs", "/admin/utilisateurs/nouveau",
                  f"/admin/utilisateurs/{world['users']['referent'].id}",
                  f"/admin/utilisateurs/{world['users']['referent'].id}/fiches",
                  "/admin/import", "/admin/api",
                  "/admin/circonscriptions", "/admin/structures", "/admin/referentiels",
                  "/admin/modeles", "/admin/cles", "/admin/courriels", "/admin/travaux"],
        "dpo": ["/", "/dpo/journal", "/dpo/conservation", "/accessibilite"],
    }


ROLES = ("referent", "facilitator", "director", "admin", "dpo")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)  # one test per role: they run side by side
def test_every_page_fits_a_phone_and_has_no_accessibility_violation(
        browser, live_server, world, db_session, vault, role):
    own = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(40),
                     author_id=world["users"]["referent"].id)
    db_session.commit()
    pages = pages_by_role(world, own.id)
    assert set(pages) == set(ROLES)
    paths = pages[role]
    problems: list[str] = []
    LoginPage(browser, live_server).open().login(f"{role}@test.invalid", PASSWORD)
    for index, path in enumerate(paths):
        for width in WIDTHS:
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
            browser.get(live_server + path)
            assert "/connexion" not in browser.current_url, path
            if SCREENSHOTS and width == WIDTHS[0] and index < 2:
                name = f"{role}-{'accueil' if index == 0 else 'page'}.png"
                assert browser.save_screenshot(str(Path(SCREENSHOTS) / name))
            # Against the screen's width: a phone widens its layout to fit what overflows
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth;") - width
            if overflow > 0:
                culprits = browser.execute_script(TOO_WIDE, width)
                problems.append(f"{path} at {width} px: {overflow} px too wide "
                                f"({', '.join(culprits)})")
            browser.execute_script(AXE)
            for rule, impact, count, first in browser.execute_async_script(RUN_AXE):
                problems.append(f"{path} at {width} px: {rule} ({impact}), {count} node(s), "
                                f"first: {first}")
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert problems == [], "\n".join(problems)


@pytest.mark.browser
@pytest.mark.slow
def test_a_sheet_prints_as_a_document_without_the_application_around_it(
        browser, live_server, world, db_session, vault):
    own = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(41),
                     author_id=world["users"]["referent"].id)
    db_session.commit()
    LoginPage(browser, live_server).open().login("referent@test.invalid", PASSWORD)
    browser.get(f"{live_server}/fiches/{own.id}")
    shown = "return [...document.querySelectorAll(arguments[0])]" \
            ".filter((e) => getComputedStyle(e).display !== 'none').length;"
    assert browser.execute_script(shown, "nav, main button") > 0  # on screen
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert browser.execute_script(shown, "nav, main button") == 0
    assert own.reference in browser.find_element("tag name", "main").text
