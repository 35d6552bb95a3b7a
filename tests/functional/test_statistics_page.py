"""The statistics page says how months are counted (issue 15, bug 6)."""

import html

from tests.helpers import logged_in


def test_the_statistics_page_says_months_are_counted_in_paris_time(app, world):
    facilitator = logged_in(app, "facilitator@test.invalid")
    page = html.unescape(facilitator.get("/suivi/statistiques").get_data(as_text=True))
    assert "heure de Paris" in page
    assert "temps universel" not in page and "UTC" not in page
