"""SQLAlchemy models, one module per aggregate; importing this package registers them all."""

from shared.models.audit import AuditEvent, AuditHead, AuditReanchor
from shared.models.beneficiary import Beneficiary, IdentityRecord
from shared.models.document import (
    DocumentJob,
    GeneratedDocument,
    MinutesCorrection,
    MinutesReading,
    MinutesVisa,
    TemplateVersion,
)
from shared.models.icag import GlobalSupport, GlobalSupportStep
from shared.models.keys import KeyRotation, KeyVersionRecord, ProcessHeartbeat, RecordKey
from shared.models.maintenance import MaintenanceRun
from shared.models.meeting import (
    AgendaItem,
    AvisRevision,
    Decision,
    DecisionAction,
    FormalDecision,
    Meeting,
    MeetingMember,
    Member,
    Schedule,
)
from shared.models.notification import Notification, NotificationPreference
from shared.models.reference import Circonscription, ReferenceItem, Structure
from shared.models.sheet import DeidentificationCount, FormStash, Sheet, SheetEvent
from shared.models.user import (
    ApiClient,
    LoginThrottle,
    OidcLink,
    RecoveryCode,
    RoleAssignment,
    SecondFactor,
    User,
)

__all__ = [
    "AgendaItem",
    "ApiClient",
    "AuditEvent",
    "AuditHead",
    "AuditReanchor",
    "AvisRevision",
    "Beneficiary",
    "Circonscription",
    "Decision",
    "DecisionAction",
    "DeidentificationCount",
    "DocumentJob",
    "FormStash",
    "FormalDecision",
    "GeneratedDocument",
    "GlobalSupport",
    "GlobalSupportStep",
    "IdentityRecord",
    "KeyRotation",
    "KeyVersionRecord",
    "LoginThrottle",
    "MaintenanceRun",
    "Meeting",
    "MeetingMember",
    "Member",
    "MinutesCorrection",
    "MinutesReading",
    "MinutesVisa",
    "Notification",
    "NotificationPreference",
    "OidcLink",
    "ProcessHeartbeat",
    "RecordKey",
    "RecoveryCode",
    "ReferenceItem",
    "RoleAssignment",
    "Schedule",
    "SecondFactor",
    "Sheet",
    "SheetEvent",
    "Structure",
    "TemplateVersion",
    "User",
]
