"""A referent files and submits a sheet with the keyboard alone (issue 22): Tab to move,
typing, arrows in lists, Enter to follow a link or press a button. No click."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.factories import PASSWORD

NEUTRAL_TEXT = "Accompagnement engagé depuis deux ans ; démarches d'insertion en cours."
MOST_TABS = 400  # the sheet form holds about 150 stops


class Keyboard:
    """What a keyboard user does, each key sent to the element that has the focus."""

    def __init__(self, driver) -> None:
        self.driver = driver

    def press(self, *keys: str) -> None:
        ActionChains(self.driver).send_keys(*keys).perform()

    def focus(self) -> tuple[str, str, str]:
        """The focused element's id, tag and text, in one round trip."""
        return tuple(self.driver.execute_script(
            "const e = document.activeElement;"
            "return [e.id || '', e.tagName.toLowerCase(), (e.textContent || '').trim()];"))

    def tab_to(self, matches, what: str) -> None:
        """Press Tab until the focused element ``matches``; fails past MOST_TABS presses."""
        for _ in range(MOST_TABS):
            self.press(Keys.TAB)
            if matches(*self.focus()):
                return
        raise AssertionError(f"{what} cannot be reached with the Tab key")

    def tab_to_id(self, element_id: str) -> None:
        self.tab_to(lambda id_, _tag, _text: id_ == element_id, f"#{element_id}")

    def tab_to_text(self, text: str) -> None:
        self.tab_to(lambda _id, _tag, content: content == text, f"« {text} »")

    def press_enter_and_wait(self) -> None:
        page = self.driver.find_element(By.TAG_NAME, "html")
        self.press(Keys.ENTER)
        WebDriverWait(self.driver, 30).until(ec.staleness_of(page))

    def type_date(self, day: int, month: int, year: int) -> None:
        """A date field takes its parts in the browser's locale order, digit by digit."""
        order = self.driver.execute_script(
            "return new Intl.DateTimeFormat(navigator.language).formatToParts("
            "new Date(2026, 10, 23)).filter(p => p.type !== 'literal').map(p => p.type);")
        parts = {"day": f"{day:02d}", "month": f"{month:02d}", "year": f"{year:04d}"}
        self.press("".join(parts[p] for p in order))


@pytest.mark.browser
@pytest.mark.slow
def test_a_referent_files_and_submits_a_sheet_with_the_keyboard_alone(browser, live_server,
                                                                     world):
    keys = Keyboard(browser)
    browser.get(f"{live_server}/connexion")
    keys.tab_to_id("email")
    keys.press("referent@test.invalid")
    keys.tab_to_id("password")
    keys.press(PASSWORD)
    keys.press_enter_and_wait()

    keys.tab_to_text("Nouvelle fiche")
    keys.press_enter_and_wait()
    keys.tab_to_id("nom")
    keys.press("Clavierseul")
    keys.tab_to_id("prenom")
    keys.press("Annabelle")
    keys.tab_to_id("date_naissance")
    keys.type_date(14, 3, 1984)
    keys.tab_to_text("Créer le brouillon")
    keys.press_enter_and_wait()
    assert "/modifier" in browser.current_url, browser.current_url

    # The edit form: every field marked as needed for submission, in the order Tab meets them
    required = set(browser.execute_script(
        "return [...document.querySelectorAll('.required-mark')]"
        ".map((mark) => mark.id.replace(/-requis$/, ''));")) - {"nom", "prenom", "date_naissance"}
    chosen_frein = False
    for _ in range(MOST_TABS):
        keys.press(Keys.TAB)
        field, tag, text = keys.focus()
        if text == "Soumettre à l'instance":
            break
        if field == "date_information":
            keys.type_date(2, 11, 2026)
        elif field.startswith("frein__") and not chosen_frein:
            keys.press(Keys.ARROW_DOWN)  # the first intensity of the first frein
            chosen_frein = True
        elif field in required:
            keys.press(Keys.ARROW_DOWN if tag == "select"  # its first answer (« oui »…)
                       else NEUTRAL_TEXT if tag == "textarea" else "Conseillère")
    else:
        raise AssertionError("the submit button cannot be reached with the Tab key")
    keys.press_enter_and_wait()
    flashes = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".flash")]
    assert any("soumise à l'instance" in text for text in flashes), (
        flashes, browser.find_element(By.TAG_NAME, "main").text[:2000])
