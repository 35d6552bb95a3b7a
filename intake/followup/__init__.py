"""Facilitators' follow-up: open préconisations, situations to bring back, statistics."""
