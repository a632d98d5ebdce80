"""The console API's JSON for complaints: what the complaints workspace sends and reads
(docs/CONSOLE_API.md, "Complaints")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm_backend.complaints.models import CaseKind, CaseStatus, Category, Referral, TimelineKind
from crm_backend.complaints.replies import Delivery
from crm_backend.complaints.service import ComplaintIntake
from crm_backend.database.core import RowId

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]

# -- what staff send ---------------------------------------------------------------------------------


class CaseIn(BaseModel):
    """A case staff register from a call, a visit or a letter (首诉负责制: whoever receives it)."""

    patient_id: RowId
    conversation_id: RowId | None = None
    #: The intake's `intake_key` is the chat's and is ignored here (the register view drops it).
    intake: ComplaintIntake
    #: Several departments involved, as the receiver sees it: 10 working days instead of 5 (the
    #: office may change it when assigning).
    several_departments: bool = False


class AssignIn(BaseModel):
    department_id: RowId
    #: A liaison of that department (complaint_liaisons); None: the department's liaisons share it.
    liaison_staff_id: RowId | None = None
    #: Several departments involved: 10 working days from receipt instead of 5.
    several_departments: bool | None = None
    category: Category | None = None
    note: Note | None = None


class TransitionIn(BaseModel):
    #: The moves without their own endpoint: under investigation, and closing praise.
    to: Literal["investigating", "closed"]
    note: Note | None = None


class TextIn(BaseModel):
    text: Text


class ReferralIn(BaseModel):
    to: Referral
    note: Note | None = None


class LiaisonsIn(BaseModel):
    staff_ids: list[RowId] = Field(max_length=50)


# -- what staff read ---------------------------------------------------------------------------------


class DepartmentRef(BaseModel):
    id: int
    name: str


class StaffRef(BaseModel):
    id: int
    display_name: str


class ScopeRead(BaseModel):
    """What the caller's complaints scope holds, for the console to offer what the API answers."""

    office: bool
    #: Departments whose liaison the caller is (they read those departments' cases and report).
    liaison_of: list[DepartmentRef]


class CaseItemRead(BaseModel):
    """A case in a list: no word of what the patient said (masked; the detail is audited)."""

    case_number: str
    kind: CaseKind
    status: CaseStatus
    category: Category | None
    safety_risk: bool
    #: The patient's name masked (张*).
    patient_label: str
    department: DepartmentRef | None
    liaison: StaffRef | None
    several_departments: bool
    registered_at: datetime
    registered_by: str
    due_on: date
    due_at: datetime
    #: "nearing" (one working day left) or "overdue", while the case is still open; else None.
    flag: Literal["nearing", "overdue"] | None
    #: Working days after today up to the due day (official calendar), 0 on the due day and after
    #: it, while the case is still open; else None.
    working_days_left: int | None


class TimelineEntryRead(BaseModel):
    id: int
    at: datetime
    kind: TimelineKind
    actor: str
    from_status: CaseStatus | None
    to_status: CaseStatus | None
    text: str | None
    #: What the entry records (e.g. the safety risks found in an addition, a list).
    data: dict[str, Any] | None


class PatientRef(BaseModel):
    id: int
    name: str | None


class CaseDetailRead(CaseItemRead):
    """The whole case (audited on every view)."""

    patient: PatientRef
    what: str
    when_text: str
    when_date: date | None
    where_department: str | None
    where_ward: str | None
    who: str | None
    wish: str | None
    official_calendar: bool
    first_response_at: datetime | None
    answer: str | None
    answered_at: datetime | None
    accepted: bool | None
    satisfaction: int | None
    reopen_count: int
    referral: Referral | None
    closed_at: datetime | None
    timeline: list[TimelineEntryRead]
    #: The states the caller may move the case to now.
    next_states: list[CaseStatus]


class SentRead(BaseModel):
    """After an answer or a message: the case, and how the words travel to the patient."""

    case: CaseDetailRead
    delivery: Delivery


class DepartmentLiaisonsRead(BaseModel):
    department: DepartmentRef
    liaisons: list[StaffRef]
