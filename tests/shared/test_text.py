"""Typed values get one spelling before any check sees them (shared/text.py)."""

from datetime import date

import pytest

from shared.crypto import normalise_name
from shared.domain.beneficiaries import Identity, IdentityInvalidError, validate_identity
from shared.text import canonical, clean_text, parse_date

DISGUISED = {  # what pasting from other software produces, and what a reader sees
    "combining accent": ("Ai\u0308ssatou", "Aïssatou"),
    "soft hyphen": ("Aïs\u00adsatou", "Aïssatou"),
    "zero-width space in a number": ("765\u200b4321", "7654321"),
    "zero-width joiner in a name": ("Aï\u200dssatou", "Aïssatou"),
    "full-width digits": ("０６１２３４５６７８", "0612345678"),
    "Arabic-Indic digits": ("٠٦١٢", "0612"),
    "full-width letters": ("ＤＵＰＯＮＴ", "DUPONT"),
    "bidirectional override": ("\u202eenilno\u202c texte", "enilno texte"),
    "byte order mark": ("\ufeffBonjour", "Bonjour"),
    "pasted line breaks": ("un\x0bdeux\x0ctrois\r\nquatre", "un\ndeux\ntrois\nquatre"),
}


@pytest.mark.parametrize("name", sorted(DISGUISED))
def test_invisible_or_variant_characters_are_reduced_to_what_a_reader_sees(name):
    typed, seen = DISGUISED[name]
    assert canonical(typed) == seen
    assert canonical(seen) == seen  # idempotent


@pytest.mark.parametrize("kept", ["Émoji 🙂👩🏾‍⚕️ ok", "N'Diaye-Müller", "Œdipe ½ m²",
                                  "محمد", "王小明", "x" * 5000])
def test_ordinary_text_and_emoji_sequences_are_kept_as_typed(kept):
    assert canonical(kept) == kept


@pytest.mark.parametrize(("typed", "expected"), [
    ("2000-02-29", date(2000, 2, 29)), ("29/02/2000", date(2000, 2, 29)),
    (" 1/2/1990 ", date(1990, 2, 1))])
def test_a_date_is_read_in_iso_or_french_form(typed, expected):
    assert parse_date(typed) == expected


@pytest.mark.parametrize("typed", ["20000229", "2000-W01-1", "2000-060", "31/02/2000",
                                   "2000-02-30", "", "29-02-2000", "٢٠٠٠-٠٢-٢٩"])
def test_other_date_spellings_are_refused(typed):
    with pytest.raises(ValueError):
        parse_date(typed)


def test_a_birth_date_has_one_spelling_so_duplicates_are_found():
    typed = Identity(nom="Rent", prenom="Concur", date_naissance="07/07/1971")
    iso = Identity(nom="Rent", prenom="Concur", date_naissance="1971-07-07")
    assert typed.date_naissance == iso.date_naissance == "1971-07-07"
    assert validate_identity(typed) == []
    compact = Identity(nom="Rent", prenom="Concur", date_naissance="19710707")
    assert validate_identity(compact) == ["date_naissance : date invalide (format JJ/MM/AAAA)"]


@pytest.mark.parametrize("born", ["31/12/1899", "02/01/2027"])
def test_a_birth_date_out_of_range_is_refused_with_the_range(born):
    identity = Identity(nom="Rent", prenom="Concur", date_naissance=born)
    problems = validate_identity(identity, today=date(2027, 1, 1))
    assert problems == ["date_naissance : la date de naissance doit être comprise entre le "
                        "01/01/1900 et aujourd'hui"]
    assert IdentityInvalidError(problems).errors["date_naissance"] == (
        "La date de naissance doit être comprise entre le 01/01/1900 et aujourd'hui.")


def test_a_name_disguised_by_invisible_characters_normalises_like_the_plain_name():
    assert normalise_name(canonical("N'Dia\u00adye\u200b")) == normalise_name("N'Diaye")


@pytest.mark.parametrize(("phone", "plausible"), [
    ("06 12 34 56 78", True), ("06.12.34.56.78", True), ("+33 6 12 34 56 78", True),
    ("0033612345678", True), ("+1 (555) 123-4567", True),
    ("abc0612345678xyz", False), ("0612", False), ("6 12 34 56 78", False)])
def test_a_phone_number_is_checked_for_its_characters_and_length(phone, plausible):
    identity = Identity(nom="Rent", prenom="Concur", date_naissance="1971-07-07",
                        telephone=phone)
    assert (validate_identity(identity) == []) is plausible


@pytest.mark.parametrize("typed", ["Point\x0bpartenarial", "Point\npartenarial",
                                   "Point\u2028partenarial", "Point\x85partenarial",
                                   "  Point \t\u00a0 partenarial\r\n"])
def test_a_one_line_field_gets_its_line_breaks_as_one_space(typed):
    assert clean_text(typed, label="Intitulé", limit=200) == "Point partenarial"


def test_a_multiline_field_keeps_its_paragraphs():
    assert clean_text(" Premier.\x0bSecond.\n", label="Motif", limit=500,
                      multiline=True) == "Premier.\nSecond."
