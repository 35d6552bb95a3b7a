"""The account pages of issue 21 in a headless Chromium: the CSV import, as an
administrator goes through it."""

from __future__ import annotations

from tests.browser.pages import LoginPage
from tests.factories import PASSWORD

ACCOUNTS = ("email;nom;role;structure;circonscriptions\n"
            "nouvelle.ref@test.invalid;Nouvelle Référente;referent;ALI de Saint-Denis;\n"
            "nouvelle.cat@test.invalid;Nouvelle CAT;animation;;C01 C02\n")


def test_an_admin_checks_then_imports_accounts_from_a_csv_file(browser, live_server, accounts,
                                                               tmp_path):
    path = tmp_path / "comptes.csv"
    path.write_text(ACCOUNTS, encoding="utf-8-sig")  # as a spreadsheet saves « CSV UTF-8 »
    home = LoginPage(browser, live_server).open().login("admin@test.invalid", PASSWORD)
    page = home.open_accounts_from_menu().open_import()
    assert page.heading == "Importer un fichier CSV"
    report = page.send("Comptes et rôles", path, dry_run=True).report()
    assert "Vérification : rien n'a été enregistré" in report
    assert "2 ligne(s) lue(s) : 2 à créer ou modifier" in report
    assert "nouvelle.cat@test.invalid" not in "".join(page.back_to_accounts().account_rows())

    page = home.open_accounts_from_menu().open_import()
    assert "Import effectué" in page.send("Comptes et rôles", path, dry_run=False).report()
    rows = page.back_to_accounts().account_rows()
    assert any("nouvelle.cat@test.invalid" in row and "Montreuil" in row for row in rows)
    assert page.console_errors() == []
