"""The département-wide steering view agrees with the per-circonscription monthly figures it
generalises, and its totals with its rows (issue 22)."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from shared.db import utc_to_paris, utcnow
from shared.demo import seed_demo
from shared.domain.statistics import monthly_statistics
from shared.domain.steering import Period, steering_view
from shared.errors import InvalidInputError
from shared.models import Circonscription
from tests.helpers import client_as


def test_the_departement_view_adds_up_and_matches_each_circonscriptions_month(db_session,
                                                                             vault):
    seed_demo(db_session, vault, password="demo-password-2026", sheets=12, seed=3)
    db_session.commit()
    today = utc_to_paris(utcnow()).date()
    year = steering_view(db_session, Period(today.year))
    if year.rows[-1].figures["submitted"] == 0:  # early January: the demo's months are past
        year = steering_view(db_session, Period(today.year - 1))
    busiest = max(year.monthly, key=lambda entry: entry[1])[0]  # the demo's data spread
    month = steering_view(db_session, Period(year.period.year, busiest))
    circonscriptions = {c.name: c.id for c in db_session.scalars(select(Circonscription))}
    *rows, total = month.rows
    assert [r.label for r in rows] == sorted(circonscriptions)
    for row in rows:
        same = monthly_statistics(db_session, circonscriptions[row.label], year.period.year,
                                  busiest)
        assert row.figures["submitted"] == same.submitted.total
        assert row.figures["decisions"] == same.outcomes.decisions
        assert row.figures["adjourned"] == same.outcomes.adjourned
        assert row.figures["median_delay"] == same.delay.median_days
    for key in ("submitted", "decisions", "adjourned", "ag_entries", "ag_exits"):
        assert total.figures[key] == sum(r.figures[key] for r in rows)
    assert total.figures["submitted"] > 0
    assert sum(month.by_avis.values()) == total.figures["decisions"]
    # The year's series holds the month, and the year's totals are the series' sums
    assert year.monthly[busiest - 1][1:] == (total.figures["submitted"],
                                             total.figures["decisions"])
    assert sum(s for _m, s, _d in year.monthly) == year.rows[-1].figures["submitted"]
    assert sum(d for _m, _s, d in year.monthly) == year.rows[-1].figures["decisions"]
    with pytest.raises(InvalidInputError):
        steering_view(db_session, Period(today.year, 13))


def test_directors_see_the_page_with_its_chart_and_data_table(app, world):
    page = client_as(app, "director").get("/suivi/departement?annee=2026&mois=12")
    assert page.status_code == 200
    body = html.unescape(page.get_data(as_text=True))
    assert "Pilotage départemental – décembre 2026" in body
    assert '<svg role="img" aria-labelledby="titre-mois graphe-desc"' in body
    assert "Données du diagramme – 2026" in body and "Seine-Saint-Denis (total)" in body
    assert client_as(app, "referent").get("/suivi/departement").status_code == 403
