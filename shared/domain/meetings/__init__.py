"""Sessions (séances): calendar, members, agenda, examination and the session lifecycle.

planifiée → ODJ en construction → convoquée → tenue → avis saisis → PV rédigé →
PV en signature → PV signé / diffusé → clôturée, plus annulée and reportée. Every change is
guarded here; views only offer the actions ``allowed_actions`` returns.

One module per part: ``states`` (what each state allows), ``lifecycle`` (moving a session),
``planning``, ``members``, ``agenda``, ``guard`` (texts typed in session), ``examination``
(the avis) and ``followup``; their public names are importable from here.
"""

from shared.domain.meetings.agenda import (
    SamePersonOnAgendaError,
    add_partnership_item,
    add_screened_partnership_item,
    adjourn,
    agenda_item,
    candidate_sheets,
    inscribe_sheet,
    move_item,
    purged,
    remove_item,
    same_person_items,
)
from shared.domain.meetings.examination import (
    AVIS_REVIEW_INTRO,
    ActionInput,
    avis_texts,
    check_avis_inputs,
    mark_action_done,
    record_avis,
)
from shared.domain.meetings.followup import (
    open_actions,
    previous_passages,
    situations_to_bring_back,
)
from shared.domain.meetings.guard import GUARD_PURPOSE, review_sheet_texts
from shared.domain.meetings.lifecycle import apply_visa, transition
from shared.domain.meetings.members import (
    add_member,
    attendance_counts,
    invite_members,
    invite_substitutes,
    record_answers,
    record_attendance,
    save_member,
    set_member_active,
    set_substitute,
)
from shared.domain.meetings.planning import (
    create_meeting,
    deadlines,
    nth_weekday,
    plan_from_schedule,
    plan_meeting,
    postpone,
    save_schedule,
    save_schedule_and_plan,
)
from shared.domain.meetings.states import (
    ACTION_LIMIT,
    ADJOURN_STATES,
    AGENDA_OPEN,
    ATTENDANCE_STATES,
    AVIS_STATES,
    LATE_ADDITION,
    MOTIVATION_LIMIT,
    PRESENTER_LIMIT,
    TEXT_LIMIT,
    TIME_RE,
    TRANSITIONS,
    MeetingTransition,
    allowed_actions,
    audit_meeting,
    require_allowed,
)

__all__ = [
    "ACTION_LIMIT",
    "ADJOURN_STATES",
    "AGENDA_OPEN",
    "ATTENDANCE_STATES",
    "AVIS_REVIEW_INTRO",
    "AVIS_STATES",
    "GUARD_PURPOSE",
    "LATE_ADDITION",
    "MOTIVATION_LIMIT",
    "PRESENTER_LIMIT",
    "TEXT_LIMIT",
    "TIME_RE",
    "TRANSITIONS",
    "ActionInput",
    "MeetingTransition",
    "SamePersonOnAgendaError",
    "add_member",
    "add_partnership_item",
    "add_screened_partnership_item",
    "adjourn",
    "agenda_item",
    "allowed_actions",
    "apply_visa",
    "attendance_counts",
    "audit_meeting",
    "avis_texts",
    "candidate_sheets",
    "check_avis_inputs",
    "create_meeting",
    "deadlines",
    "inscribe_sheet",
    "invite_members",
    "invite_substitutes",
    "mark_action_done",
    "move_item",
    "nth_weekday",
    "open_actions",
    "plan_from_schedule",
    "plan_meeting",
    "postpone",
    "previous_passages",
    "purged",
    "record_answers",
    "record_attendance",
    "record_avis",
    "remove_item",
    "require_allowed",
    "review_sheet_texts",
    "same_person_items",
    "save_member",
    "save_schedule",
    "save_schedule_and_plan",
    "set_member_active",
    "set_substitute",
    "situations_to_bring_back",
    "transition",
]
