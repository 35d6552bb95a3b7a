"""The de-identification detector and review (issue #8), on the real model."""

import subprocess
import sys
import threading

from bench.deidentify import Score, evaluate, load_corpus, target_lines
from shared import deidentify
from shared.deidentify import (
    REVIEW_KEY,
    accept,
    analyse,
    decision_counts,
    dismiss,
    findings,
    unhandled,
    unhandled_high_confidence,
)
from shared.demo import demo_values
from shared.domain.sheets import read_values, write_values
from shared.sheet_schema import COLUMN_OF_CLASS
from tests.factories import canary_identity, make_sheet


def kinds(text: str) -> list[tuple[str, str]]:
    return [(d.kind, d.text) for d in analyse(text)]


def test_french_identifiers_are_found_with_their_kind():
    text = ("Née le 12/03/1985, joignable au 06 12 48 73 95 ou à awa.k@example.fr. "
            "N° allocataire CAF 2846513, identifiant France Travail 4587213K, "
            "NIR 2 84 08 59 197 919 03, IBAN FR79 1760 9543 5974 7941 1245 293. "
            "Adresse : 14 rue Gabriel Péri 93200 Saint-Denis.")
    assert kinds(text) == [
        ("birth_date", "12/03/1985"), ("phone", "06 12 48 73 95"),
        ("email", "awa.k@example.fr"), ("caf", "2846513"), ("france_travail", "4587213K"),
        ("nir", "2 84 08 59 197 919 03"), ("iban", "FR79 1760 9543 5974 7941 1245 293"),
        ("address", "14 rue Gabriel Péri"), ("postcode", "93200")]


def test_numbers_whose_key_is_wrong_are_not_taken_for_a_nir_or_an_iban():
    assert kinds("NIR 2 84 08 59 197 919 04, IBAN FR79 1760 9543 5974 7941 1245 294.") == []


def test_third_parties_get_a_replacement_that_says_their_role():
    found = {d.text: d.replacement for d in analyse(
        "Son fils Moussa est à l'école Jules Ferry ; suivie par le Dr Lambert ; "
        "elle a travaillé chez Carrefour Market.")}
    assert found == {"Moussa": "[enfant]", "école Jules Ferry": "[établissement scolaire]",
                     "Lambert": "[médecin]", "Carrefour Market": "[employeur]"}


def test_ordinary_social_work_wording_is_not_flagged():
    assert kinds("Madame perçoit le RSA depuis mars ; la CAF et France Travail (ex-Pôle "
                 "emploi) ont été sollicités, ainsi que le CCAS de Bobigny. Monsieur doit "
                 "500 euros à la CPAM. Réinscription prévue en janvier.") == []


def test_each_finding_is_accepted_or_dismissed_and_counted_without_words():
    values = {**demo_values(0), "parcours": "Son fils Moussa. Tél. 06 12 48 73 95."}
    person, phone = findings(values)["parcours"]
    values = accept(values, phone.key)
    assert values["parcours"] == "Son fils Moussa. Tél. [téléphone]."
    assert [f.detection.kind for f in unhandled(values)] == ["person"]
    values = dismiss(values, person.key)
    assert unhandled(values) == [] and unhandled_high_confidence(values) == []
    assert decision_counts(values) == {("phone", "accepted"): 1, ("person", "dismissed"): 1}
    assert "Moussa" not in repr(findings(values))  # findings never show their words


def test_actions_rows_are_reviewed_cell_by_cell():
    values = {**demo_values(0), "actions": [{"action": "Stage", "structure": "ALI",
                                             "debut": "", "fin": "",
                                             "resultat": "Embauche chez Leroy Merlin"}]}
    (finding,) = unhandled(values)
    assert finding.unit == "action_0_resultat"
    assert accept(values, finding.key)["actions"][0]["resultat"] == "Embauche chez [employeur]"


def test_high_confidence_only_is_what_the_dossier_builder_refuses():
    values = {**demo_values(0), "question": "Orientation vers l'ASPA Solidarité Emploi ?",
              "proposition": "Appui du Dr Lambert."}
    assert {f.detection.kind for f in unhandled(values)} == {"organisation", "person"}
    assert [f.unit for f in unhandled_high_confidence(values)] == ["proposition"]


def test_dismissals_are_sealed_with_their_fields_class(db_session, vault, world):
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(20))
    values = {**demo_values(0), "sante_detail": "Suivie par le Dr Lambert.",
              "parcours": "Son fils Moussa."}
    for unit in ("sante_detail", "parcours"):
        values = dismiss(values, findings(values)[unit][0].key)
    write_values(vault, sheet, values)
    situation = read_values(vault, sheet, purpose="test",
                            columns=(COLUMN_OF_CLASS["situational"],))
    assert set(situation[REVIEW_KEY]) == {"parcours"}  # the sensitive one is not there
    assert read_values(vault, sheet, purpose="test")[REVIEW_KEY] == values[REVIEW_KEY]


def test_the_corpus_keeps_its_recall_and_precision():
    # The tuning part only (the held-out part is never read by tests). Measured: recall
    # 99.0 %, precision 99.0 % on 177 narratives (bench/deidentify.py, issue 23); floors a
    # little under.
    scores = evaluate(load_corpus())
    assert len(load_corpus()) >= 160
    assert scores["overall"].recall >= 0.96
    assert scores["overall"].precision >= 0.95
    assert all(s.recall >= 0.9 and s.precision >= 0.9 for s in scores.values()), {
        k: (round(s.recall, 3), round(s.precision, 3)) for k, s in scores.items()}


def test_the_bench_checks_issue_23s_targets_recall_and_precision_on_the_held_out_part():
    figures = {"scores": {"overall": vars(Score(expected=100, found=96, found_any_kind=97,
                                                predicted=100, correct=96))},
               "flagged_free": 3, "free": 30, "block_p99_ms": 150.5}
    held_out = target_lines("held-out", figures)
    assert [line.split()[0] for line in held_out] == ["MISSED", "met", "met", "MISSED"]
    assert "(96.0%)" in held_out[0] and "(3/30)" in held_out[2]
    assert target_lines("tuning", figures) == held_out[2:]


def test_a_text_is_analysed_once_and_the_memo_keeps_no_text(monkeypatch):
    text = "Vu avec Madame Zyxmemo Okonkwo, née le 14/02/1987, au 06 71 52 38 94, suivie à l'ALI."
    model_calls = []
    model = deidentify._ANALYZER.analyse
    monkeypatch.setattr(deidentify._ANALYZER, "analyse",
                        lambda t: model_calls.append(1) or model(t))
    first = analyse(text)
    assert [d.text for d in first] == ["Zyxmemo Okonkwo", "14/02/1987", "06 71 52 38 94"]
    assert analyse(text) == first and analyse(text + " ") != [] and len(model_calls) == 2
    held = repr(deidentify._ANALYSED._values)
    assert "Zyxmemo" not in held and "1987" not in held and "06 71" not in held
    deidentify.forget_analyses()  # what the benchmark does before timing each text
    assert analyse(text) == first and len(model_calls) == 3


def test_the_model_is_loaded_once_and_shared_by_threads():
    text = "Son fils Moussa, joignable au 06 12 48 73 95."
    results = []
    threads = [threading.Thread(target=lambda: results.append(kinds(text))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [[("person", "Moussa"), ("phone", "06 12 48 73 95")]] * 4
    assert deidentify._ANALYZER.engine() is deidentify._ANALYZER.engine()


def test_the_worker_never_imports_spacy_or_presidio():
    code = ("import sys, generator.worker, generator.jobs, generator.contexts, shared.deidentify;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('spacy', 'presidio_"
            "analyzer')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
