"""Imports every domain's models so metadata (Alembic, tests) sees all tables."""

from crm_backend.appointments.models import Appointment, Department, Doctor, Schedule
from crm_backend.audit.models import AuditChainHead, AuditEntry
from crm_backend.complaints.models import Complaint, ComplaintTimelineEntry, DepartmentLiaison
from crm_backend.consent.models import ConsentRecord
from crm_backend.conversations.models import Conversation, InboundMessage, Message
from crm_backend.database.core import Base
from crm_backend.escalations.label_models import ConversationLabel, Label
from crm_backend.escalations.models import CannedReply, ConversationNote, Escalation
from crm_backend.followups.models import (
    FollowupAnswer,
    FollowupCall,
    FollowupCheckin,
    FollowupEnrolment,
    FollowupPlan,
    FollowupPlanVersion,
    FollowupSend,
)
from crm_backend.hospital_info.models import HospitalInfoEntry
from crm_backend.patients.models import Patient, PatientLink, WeChatIdentity
from crm_backend.staff.models import Staff, Team, TeamMembership
from crm_backend.triage.models import TriageDecision

__all__ = [
    "Appointment",
    "AuditChainHead",
    "AuditEntry",
    "Base",
    "CannedReply",
    "Complaint",
    "ComplaintTimelineEntry",
    "ConsentRecord",
    "Conversation",
    "ConversationLabel",
    "ConversationNote",
    "Department",
    "DepartmentLiaison",
    "Doctor",
    "Escalation",
    "FollowupAnswer",
    "FollowupCall",
    "FollowupCheckin",
    "FollowupEnrolment",
    "FollowupPlan",
    "FollowupPlanVersion",
    "FollowupSend",
    "HospitalInfoEntry",
    "InboundMessage",
    "Label",
    "Message",
    "Patient",
    "PatientLink",
    "Schedule",
    "Staff",
    "Team",
    "TeamMembership",
    "TriageDecision",
    "WeChatIdentity",
]
