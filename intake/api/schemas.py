"""The API's request and response bodies (marshmallow, documented in OpenAPI 3)."""

from __future__ import annotations

from datetime import date

import marshmallow as ma
from marshmallow import fields, validate

from shared.domain.account_import import KINDS

FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)
MAX_CSV = 2 * 1024 * 1024


class ImportRequest(ma.Schema):
    kind = fields.String(required=True, validate=validate.OneOf(list(KINDS)),
                         metadata={"description": "Ce que contient le fichier."})
    csv = fields.String(required=True, validate=validate.Length(max=MAX_CSV),
                        metadata={"description": "Le fichier CSV, texte (première ligne : "
                                                 "les noms de colonnes)."})
    dry_run = fields.Boolean(load_default=True,
                             metadata={"description": "Vérifier seulement (par défaut)."})


class ChangeSchema(ma.Schema):
    line = fields.Integer(required=True)
    action = fields.String(required=True)
    key = fields.String(required=True)
    fields_ = fields.List(fields.String(), data_key="fields", attribute="fields",
                          required=True)


class ImportReportSchema(ma.Schema):
    kind = fields.String(required=True)
    rows = fields.Integer(required=True)
    applied = fields.Boolean(required=True)
    changes = fields.List(fields.Nested(ChangeSchema), required=True)
    errors = fields.List(fields.String(), required=True)
    error_count = fields.Integer(required=True)


class PeriodArgs(ma.Schema):
    since = fields.Date(required=True, validate=validate.Range(FIRST_DAY, LAST_DAY))
    until = fields.Date(required=True, validate=validate.Range(FIRST_DAY, LAST_DAY))


class SessionSchema(ma.Schema):
    date = fields.Date(required=True)
    circonscription = fields.String(required=True)


class PreconisationSchema(ma.Schema):
    label = fields.String(required=True)
    structure = fields.String(required=True, allow_none=True)
    due_on = fields.Date(required=True, allow_none=True)
    done_on = fields.Date(required=True, allow_none=True)


class FormalDecisionSchema(ma.Schema):
    outcome = fields.String(required=True)
    outcome_label = fields.String(required=True, allow_none=True)
    decided_on = fields.Date(required=True)
    author = fields.String(required=True)


class DecisionSchema(ma.Schema):
    reference = fields.String(required=True)
    pseudonym = fields.String(required=True)
    session = fields.Nested(SessionSchema, required=True)
    avis = fields.String(required=True)
    avis_label = fields.String(required=True)
    come_back_on = fields.Date(required=True, allow_none=True)
    formal_decision_by = fields.String(required=True, allow_none=True)
    formal_decision_by_label = fields.String(required=True, allow_none=True)
    preconisations = fields.List(fields.Nested(PreconisationSchema), required=True)
    formal_decision = fields.Nested(FormalDecisionSchema, required=True, allow_none=True)


class StatisticsArgs(ma.Schema):
    circonscription = fields.String(required=True, validate=validate.Length(1, 8))
    year = fields.Integer(required=True, validate=validate.Range(2000, 2100))
    month = fields.Integer(required=True, validate=validate.Range(1, 12))


def _counts(**kwargs) -> fields.Dict:
    return fields.Dict(keys=fields.String(), values=fields.Integer(), **kwargs)


class SubmittedSchema(ma.Schema):
    total = fields.Integer(required=True)
    by_motif = _counts(required=True)
    by_structure_type = _counts(required=True)


class OutcomesSchema(ma.Schema):
    decisions = fields.Integer(required=True)
    by_avis = _counts(required=True)
    adjourned = fields.Integer(required=True)


class DelaySchema(ma.Schema):
    count = fields.Integer(required=True)
    median_days = fields.Float(required=True, allow_none=True)
    mean_days = fields.Float(required=True, allow_none=True)


class StatisticsSchema(ma.Schema):
    circonscription = fields.String(required=True)
    year = fields.Integer(required=True)
    month = fields.Integer(required=True)
    submitted = fields.Nested(SubmittedSchema, required=True)
    outcomes = fields.Nested(OutcomesSchema, required=True)
    delay = fields.Nested(DelaySchema, required=True)
    text_review = _counts(required=True)
