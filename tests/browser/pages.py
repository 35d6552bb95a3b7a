"""Page objects: each public method is something a user does or sees on a page."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.factories import second_factor_code

TIMEOUT = 15

# Console noise that is not the page's fault to test here: the app serves no favicon, so
# Chromium's automatic request for /favicon.ico logs a 404 on every page (reported).
KNOWN_CONSOLE_NOISE = ("/favicon.ico - Failed to load resource",)


def _literal(text: str) -> str:
    """``text`` as an XPath string literal (apostrophes included: "l'ALI")."""
    return "concat('" + "', \"'\", '".join(text.split("'")) + "', '')"


def _text_is(text: str) -> str:
    """An XPath predicate: the element's whitespace-normalised text equals ``text``."""
    return f"normalize-space()={_literal(text)}"


class Page:
    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    # -- what the user sees ------------------------------------------------------------
    @property
    def heading(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "h1").text

    @property
    def title(self) -> str:
        return self.driver.title

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    def flash_messages(self) -> list[str]:
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, "p.flash")]

    def error_message(self) -> str:
        """The page's error banner (role="alert")."""
        return self.driver.find_element(By.CSS_SELECTOR, "p.flash-error[role=alert]").text

    def menu_entries(self) -> list[str]:
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, "nav li > a")]

    def console_errors(self, *, expected: tuple[str, ...] = ()) -> list[str]:
        """Console errors since the last call: CSP violations (source "security"), script
        errors ("javascript"), failed loads ("network"), but the ``expected`` ones."""
        ignored = (*KNOWN_CONSOLE_NOISE, *expected)
        return [f"{e['source']}: {e['message']}" for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE" and not any(i in e["message"] for i in ignored)]

    def save_screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        if full_page:  # grow the window to the document's height, then shoot
            height = self.driver.execute_script(
                "return document.documentElement.scrollHeight")
            width = self.driver.get_window_size()["width"]
            self.driver.set_window_size(width, max(height + 150, 600))
        assert self.driver.save_screenshot(str(path)), f"no screenshot written to {path}"
        return path

    # -- what the user does ------------------------------------------------------------
    def visit(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def open_menu(self, label: str) -> None:
        """Click an entry of the main navigation."""
        link = self.driver.find_element(By.XPATH, f"//nav//a[{_text_is(label)}]")
        self._follow(link)

    def log_out(self) -> LoginPage:
        self._follow(self.driver.find_element(
            By.XPATH, "//nav//button[starts-with(normalize-space(), 'Se déconnecter')]"))
        return LoginPage(self.driver, self.base_url)

    # -- helpers ---------------------------------------------------------------------
    def _wait(self, timeout: float = TIMEOUT, *, across_reloads: bool = False) -> WebDriverWait:
        """A wait that retries while elements are missing or stale; ``across_reloads``: also
        while the page replaces its document (chromedriver then reports errors such as "Node
        with given id does not belong to the document" as plain WebDriverExceptions)."""
        ignored = (WebDriverException,) if across_reloads else (
            NoSuchElementException, StaleElementReferenceException)
        return WebDriverWait(self.driver, timeout, ignored_exceptions=ignored)

    def _follow(self, element: WebElement) -> None:
        """Click ``element`` and wait until the next page has loaded."""
        old_page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        self._wait(across_reloads=True).until(ec.staleness_of(old_page))
        self._wait(across_reloads=True).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    def _fill(self, label: str, value: str) -> None:
        """Type into the field whose <label> reads ``label``."""
        field = self._field(label)
        field.clear()
        field.send_keys(value)

    def _field(self, label: str) -> WebElement:
        label_element = self.driver.find_element(By.XPATH, f"//label[{_text_is(label)}]")
        return self.driver.find_element(By.ID, label_element.get_attribute("for"))

    def _press(self, button_label: str) -> None:
        button = self.driver.find_element(
            By.XPATH, f"//main//*[(self::button or self::input[@type='submit'])"
                      f" and ({_text_is(button_label)} or @value={_literal(button_label)})]")
        self._follow(button)


class LoginPage(Page):
    def open(self) -> LoginPage:
        self.visit("/connexion")
        return self

    def login(self, email: str, password: str) -> HomePage:
        """Sign in, with the account's second-factor code when it has one (administrators,
        the DPO); the next page is the home page, or this one again with an error."""
        self._fill("Adresse e-mail professionnelle", email)
        self._fill("Mot de passe", password)
        self._press("Se connecter")
        if self.path == "/connexion/code":
            self._fill("Code à 6 chiffres de votre application, ou un code de secours",
                       second_factor_code(email))
            self._press("Valider")
        return HomePage(self.driver, self.base_url)

    def sign_in_with_provider(self, label: str) -> ProviderPage:
        """Follow the link « Se connecter avec <label> » to the provider's page."""
        self._follow(self.driver.find_element(By.LINK_TEXT, f"Se connecter avec {label}"))
        return ProviderPage(self.driver, self.base_url)


class ProviderPage(Page):
    """The sign-in page of the tests' OpenID Connect provider (tests/oidc_provider.py)."""

    def sign_in_as(self, email: str) -> HomePage:
        self._fill("E-mail", email)
        self._follow(self.driver.find_element(By.TAG_NAME, "button"))
        return HomePage(self.driver, self.base_url)


class HomePage(Page):
    def open_meetings_from_menu(self) -> MeetingsPage:
        self.open_menu("Séances")
        return MeetingsPage(self.driver, self.base_url)

    def open_accounts_from_menu(self) -> AdminUsersPage:
        self.open_menu("Comptes")
        return AdminUsersPage(self.driver, self.base_url)


class MeetingsPage(Page):
    def meeting_dates(self) -> list[str]:
        links = self.driver.find_elements(By.CSS_SELECTOR, "tbody td:first-child a")
        return [e.text for e in links]

    def open_meeting(self, date_label: str) -> MeetingPage:
        """Click the session whose date reads ``date_label`` (e.g. "15/12/2026 14:00")."""
        self._follow(self.driver.find_element(By.XPATH, f"//tbody//a[{_text_is(date_label)}]"))
        return MeetingPage(self.driver, self.base_url)


class MeetingPage(Page):
    AGENDA = "Ordre du jour"

    def _document_row(self, label: str) -> WebElement:
        return self.driver.find_element(
            By.XPATH, f"//table[contains(@class, 'documents')]//tr[td[1][{_text_is(label)}]]")

    def document_status(self, label: str = AGENDA) -> str:
        """The state cell of a document as displayed (label, step, link)."""
        return self._document_row(label).find_element(By.CSS_SELECTOR, "td.job-status").text

    def agenda_points(self) -> list[str]:
        """The "Point" column of the agenda's tables (sheet reference – pseudonym, or title):
        the tables under the "Ordre du jour" heading, before the next heading of its level."""
        return [e.text for e in self.driver.find_elements(
            By.XPATH, "//table[preceding::h2[1][normalize-space()='Ordre du jour']]"
                      "/tbody/tr/td[2]")]

    def add_partnership_point_clicking_twice(self, title: str) -> None:
        """Type a partnership point's title and presenter, click "Ajouter" twice 20 ms apart
        (the first request already sent), wait for the next page."""
        self._fill("Intitulé (sans nom de personne accompagnée)", title)
        self._fill("Structure qui présente", "PLIE de Plaine Commune")
        self._fill("Fonction de la personne qui présente (pas son nom)", "Chargée de mission")
        button = self.driver.find_element(By.XPATH, f"//main//button[{_text_is('Ajouter')}]")
        old_page = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.execute_script(
            "arguments[0].click(); setTimeout(() => arguments[0].click(), 20);", button)
        self._wait(across_reloads=True).until(ec.staleness_of(old_page))
        self._wait(across_reloads=True).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    def generate_agenda(self) -> None:
        """Click "Générer" on the agenda's row and wait for the confirmation."""
        row = self._document_row(self.AGENDA)
        self._follow(row.find_element(By.XPATH, f".//button[{_text_is('Générer')}]"))
        assert any("génération demandée" in m for m in self.flash_messages()), \
            self.flash_messages()

    def remember_this_page_load(self) -> None:
        """Tag the loaded document, to tell later whether the page reloaded itself."""
        self.driver.execute_script("window.__sameDocument = true;")

    def was_reloaded(self) -> bool:
        return not self.driver.execute_script("return window.__sameDocument === true;")

    def wait_for_document_ready(self, label: str = AGENDA, timeout: float = 90) -> str:
        """Wait, hands off, until the page shows the document "Terminé"; its download URL.

        Fails at once if the page shows "Échec" with the error it displays.
        """

        def ready(driver: WebDriver) -> str | None:
            row = self._document_row(label)
            state = row.find_element(By.CSS_SELECTOR, ".status").text
            if state == "Échec":
                raise AssertionError(f"generation failed: {self.document_status(label)}")
            if state != "Terminé":
                return None
            links = row.find_elements(By.PARTIAL_LINK_TEXT, "Word")
            return links[0].get_attribute("href") if links else None

        return self._wait(timeout, across_reloads=True).until(
            ready, f"{label} not shown as ready in {timeout} s")

    def download(self, url: str) -> tuple[dict[str, str], bytes]:
        """Fetch ``url`` as this browser would: its cookies and its User-Agent.

        The User-Agent matters: flask-login's "strong" session protection binds the session
        to the client's address and User-Agent.
        """
        assert url.startswith(self.base_url + "/"), url  # the app's own http URL, nothing else
        cookies = "; ".join(f"{c['name']}={c['value']}" for c in self.driver.get_cookies())
        agent = self.driver.execute_script("return navigator.userAgent")
        request = urllib.request.Request(  # noqa: S310 - checked above
            url, headers={"Cookie": cookies, "User-Agent": agent})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return dict(response.headers.items()), response.read()


    # -- returning situations, inscription, fiches retour -----------------------------
    def proposed_returns(self) -> list[str]:
        """The rows of « Retours en instance proposés pour cette séance » (empty if none)."""
        return [e.text for e in self.driver.find_elements(
            By.XPATH, "//table[preceding::h3[1][@id='retours']]/tbody/tr")]

    def bring_back(self, reference: str) -> None:
        """Click « Faire revenir en instance » on the proposed return ``reference``."""
        row = self.driver.find_element(
            By.XPATH, "//table[preceding::h3[1][@id='retours']]/tbody"
                      f"/tr[td//a[{_text_is(reference)}]]")
        self._follow(row.find_element(By.XPATH, ".//button"))

    def inscription_choices(self) -> list[str]:
        return [o.text for o in Select(self._field("Fiche recevable")).options]

    def inscribe(self, choice: str, time_slot: str) -> None:
        """Inscribe the sheet whose option reads ``choice`` at ``time_slot`` ("HH:MM")."""
        Select(self._field("Fiche recevable")).select_by_visible_text(choice)
        self.driver.execute_script("arguments[0].value = arguments[1];",
                                   self._field("Créneau"), time_slot)
        self._press("Inscrire")

    def generate_feedback(self, reference: str) -> str:
        """Click « Générer » on the fiche retour of ``reference``; the row's label."""
        label = f"Fiche retour au référent – {reference}"
        row = self._document_row(label)
        self._follow(row.find_element(By.XPATH, f".//button[{_text_is('Générer')}]"))
        return label


class SheetPage(Page):
    def open(self, sheet_id: int) -> SheetPage:
        self.visit(f"/fiches/{sheet_id}")
        return self

    def start_update_for_return(self) -> SheetEditPage:
        self._follow(self.driver.find_element(
            By.LINK_TEXT, "Actualiser pour le retour en instance"))
        return SheetEditPage(self.driver, self.base_url)


class AdminUsersPage(Page):
    def open(self) -> AdminUsersPage:
        self.visit("/admin/utilisateurs")
        return self

    def account_rows(self) -> list[str]:
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, "tbody tr")]

    def create_account(self, *, email: str, full_name: str, role: str,
                       circonscriptions: tuple[str, ...] = (),
                       structure: str | None = None) -> OneTimePasswordPage:
        """Fill in "Créer un compte" (role and options by their visible French labels)."""
        self._follow(self.driver.find_element(By.LINK_TEXT, "Créer un compte"))
        self._fill("Adresse e-mail professionnelle", email)
        self._fill("Nom et prénom", full_name)
        Select(self._field("Rôle")).select_by_visible_text(role)
        if structure is not None:
            Select(self._field("Structure (référent·e)")).select_by_visible_text(structure)
        circs = Select(self._field("Circonscriptions (animation)"))
        for label in circonscriptions:
            circs.select_by_visible_text(label)
        self._press("Créer le compte")
        return OneTimePasswordPage(self.driver, self.base_url)


    def open_import(self) -> ImportPage:
        self._follow(self.driver.find_element(By.LINK_TEXT, "Importer un fichier CSV"))
        return ImportPage(self.driver, self.base_url)


class ImportPage(Page):
    """The administrator's CSV import: a dry run, then the import."""

    def send(self, kind: str, path: Path, *, dry_run: bool) -> ImportPage:
        Select(self._field("Contenu du fichier")).select_by_visible_text(kind)
        self._field("Fichier CSV (UTF-8, séparateur « ; » ou « , »)").send_keys(str(path))
        self._press("Vérifier (rien n'est enregistré)" if dry_run else "Importer")
        return self

    def report(self) -> str:
        return self.driver.find_element(By.ID, "rapport").text

    def back_to_accounts(self) -> AdminUsersPage:
        return AdminUsersPage(self.driver, self.base_url).open()


class OneTimePasswordPage(Page):
    @property
    def password(self) -> str:
        return self.driver.find_element(By.CSS_SELECTOR, ".secret code").text

    def back_to_accounts(self) -> AdminUsersPage:
        self._follow(self.driver.find_element(By.LINK_TEXT, "Retour aux comptes"))
        return AdminUsersPage(self.driver, self.base_url)


class SheetEditPage(Page):
    """A referent's sheet form, with its de-identification review panels."""

    def open(self, sheet_id: int) -> SheetEditPage:
        self.visit(f"/fiches/{sheet_id}/modifier")
        return self

    def write(self, label: str, text: str) -> None:
        self._fill(label, text)

    def save_draft(self) -> None:
        self._press("Enregistrer le brouillon")

    def resend_updated(self) -> SheetPage:
        self._press("Renvoyer la fiche actualisée")
        return SheetPage(self.driver, self.base_url)

    def highlighted(self) -> list[tuple[str, str]]:
        """(kind, words) of each finding highlighted in the texts, still to handle."""
        return [(m.get_attribute("title"), m.text) for m in self.driver.find_elements(
            By.CSS_SELECTOR, ".deid-text mark.open")]

    def accept_replacement(self, replacement: str) -> None:
        self._press(f"Remplacer par « {replacement} »")

    def dismiss_first_finding(self) -> None:
        self._press("N'identifie personne")

    def text_of(self, label: str) -> str:
        return self._field(label).get_attribute("value")

    def switch_to_another_tab(self) -> None:
        """The user leaves the page for another tab: the page is hidden, not closed (a
        headless browser has no other tab to show, so the page is told it is hidden)."""
        self.driver.execute_script(
            "Object.defineProperty(document, 'visibilityState',"
            " {value: 'hidden', configurable: true});"
            "document.dispatchEvent(new Event('visibilitychange'));")

    def autosave_status(self, *, once_it_starts: str) -> str:
        """The line under the buttons where the page says what it saved by itself."""
        def status(driver):
            text = driver.find_element(By.ID, "enregistrement-auto").text
            return text if text.startswith(once_it_starts) else False
        return self._wait().until(status)
