"""Enrolment by CSV upload: every row checked first, then all enrolled in one transaction, or none.

Columns (a header row, UTF-8, a BOM allowed): `patient_id`, `plan_code`, `anchor_date` (YYYY-MM-DD),
`team_id`, and optionally `attending_doctor`, `discharged_on` (defaults to the anchor date) and
`procedure`. A bad row is reported with its line number (the header is line 1) and every problem it
has; one bad row means nothing is written.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.followups.enrolment import date_problem, hold_patients
from crm_backend.followups.matching import current_versions
from crm_backend.followups.models import EnrolmentStatus, FollowupEnrolment, FollowupPlan, FollowupPlanVersion
from crm_backend.patients.models import Patient
from crm_backend.staff.models import Team

REQUIRED = ("patient_id", "plan_code", "anchor_date", "team_id")
OPTIONAL = ("attending_doctor", "discharged_on", "procedure")
MAX_ROWS = 5000


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    patient_id: int
    plan_version_id: int
    plan_code: str
    anchor_date: date
    discharged_on: date
    team_id: int
    attending_doctor: str
    procedure: str


@dataclass
class CsvProblems:
    #: The file as a whole (encoding, header).
    file: list[str] = field(default_factory=list)
    #: {line: [problem, ...]}
    rows: dict[int, list[str]] = field(default_factory=dict)
    #: {line: patient id as written} of rows naming a patient the uploader may not open (or, to
    #: someone who may not open every patient, one that does not exist: the same answer).
    refused: dict[int, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.file or self.rows or self.refused)

    def add(self, line: int, problem: str) -> None:
        self.rows.setdefault(line, []).append(problem)

    def as_detail(self) -> dict[str, object]:
        return {
            "detail": "nothing was enrolled: fix these rows and upload the whole file again",
            "file": self.file,
            "rows": [{"line": line, "problems": problems} for line, problems in sorted(self.rows.items())],
        }


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


#: An id as the file may write it: ASCII digits only (str.isdigit also accepts "²", which int() refuses).
_DIGITS = re.compile(r"[0-9]{1,10}")


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if _DIGITS.fullmatch(text) and 0 < int(text) < 2**31 else None


async def _open_enrolments(session: AsyncSession, patient_ids: set[int]) -> dict[tuple[int, int, date], int]:
    """{(patient, plan, anchor date): enrolment id} of the active or paused enrolments of these
    patients: a row repeating one would ask every question twice (enrolment.already_enrolled, for
    all rows in one query)."""
    if not patient_ids:
        return {}
    found = await session.execute(
        select(
            FollowupEnrolment.patient_id,
            FollowupPlanVersion.plan_id,
            FollowupEnrolment.anchor_date,
            FollowupEnrolment.id,
        )
        .join(FollowupPlanVersion, FollowupPlanVersion.id == FollowupEnrolment.plan_version_id)
        .where(
            FollowupEnrolment.patient_id.in_(patient_ids),
            FollowupEnrolment.status.in_((EnrolmentStatus.active, EnrolmentStatus.paused)),
        )
    )
    return {(patient, plan, anchor): enrolment for patient, plan, anchor, enrolment in found.all()}


class Uploader(Protocol):
    """Whose file it is: which teams they may enrol into and which patients they may open."""

    def may_access_team(self, team_id: int) -> bool: ...

    @property
    def sees_all_teams(self) -> bool: ...


#: Which of the named patient ids exist and the uploader may open (the patient record's rule).
Reach = Callable[[set[int]], Awaitable[set[int]]]


def _rows(text: str, problems: CsvProblems) -> tuple[list[str], list[tuple[dict[str, str], int]]]:
    """The header and each row with its line; a line the csv module cannot read (a field longer than
    it allows, a NUL) is a problem of that line, and nothing after it is read."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = [name.strip() for name in reader.fieldnames or []]
        raw = [({(k or "").strip(): (v or "") for k, v in row.items()}, reader.line_num) for row in reader]
    except csv.Error as error:
        # line_num counts the lines of the records read whole: the bad one starts on the next.
        problems.add(reader.line_num + 1, f"not readable as CSV ({error})")
        return [], []
    return header, raw


async def read_csv(
    session: AsyncSession, body: bytes, uploader: Uploader, reach: Reach
) -> tuple[list[CsvRow], CsvProblems]:
    """Every row read and checked against the database. The named patients are held first
    (enrolment.hold_patients), so the same file uploaded twice at once enrols nobody twice."""
    problems = CsvProblems()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        problems.file.append("the file is not UTF-8 text")
        return [], problems
    header, raw = _rows(text, problems)
    if problems:
        return [], problems
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    if missing:
        problems.file.append(f"missing columns: {', '.join(missing)}")
    if unknown:
        problems.file.append(f"unknown columns: {', '.join(unknown)}")
    if problems:
        return [], problems
    if not raw:
        problems.file.append("the file has no rows")
        return [], problems
    if len(raw) > MAX_ROWS:
        problems.file.append(f"at most {MAX_ROWS} rows per file")
        return [], problems
    patient_ids = {number for values, _ in raw if (number := _int(values["patient_id"])) is not None}
    await hold_patients(session, patient_ids)
    plans = {definition.code: version for version, definition in await current_versions(session)}
    inactive = set(
        (await session.scalars(select(FollowupPlan.code).where(FollowupPlan.active.is_(False)))).all()
    )
    known_patients = set((await session.scalars(select(Patient.id).where(Patient.id.in_(patient_ids)))).all())
    in_reach = await reach(patient_ids)
    team_ids = {_int(values["team_id"]) for values, _ in raw} - {None}
    known_teams = set((await session.scalars(select(Team.id).where(Team.id.in_(team_ids)))).all())
    enrolled = await _open_enrolments(session, patient_ids)
    rows: list[CsvRow] = []
    seen: dict[tuple[int, str, date], int] = {}
    for values, line in raw:
        patient_id = _int(values["patient_id"])
        if patient_id is not None and patient_id not in in_reach and not uploader.sees_all_teams:
            problems.refused[line] = values["patient_id"].strip()
            continue
        if patient_id is None or patient_id not in known_patients:
            problems.add(line, f"patient_id {values['patient_id']!r}: no such patient")
        code = values["plan_code"].strip()
        version: FollowupPlanVersion | None = plans.get(code)
        if version is None:
            why = "the plan is inactive" if code in inactive else "no such plan"
            problems.add(line, f"plan_code {code!r}: {why}")
        anchor = _date(values["anchor_date"])
        if anchor is None:
            problems.add(line, f"anchor_date {values['anchor_date']!r}: not a date (YYYY-MM-DD)")
        discharged = (
            _date(values.get("discharged_on") or "") if values.get("discharged_on", "").strip() else anchor
        )
        if discharged is None and anchor is not None:
            problems.add(line, f"discharged_on {values.get('discharged_on')!r}: not a date (YYYY-MM-DD)")
        for name, value in (("anchor_date", anchor), ("discharged_on", discharged)):
            problem = date_problem(name, value) if value is not None else None
            if problem is not None and (name == "anchor_date" or value != anchor):
                problems.add(line, problem)
        team_id = _int(values["team_id"])
        if team_id is None or team_id not in known_teams:
            problems.add(line, f"team_id {values['team_id']!r}: no such team")
        elif not uploader.may_access_team(team_id):
            problems.add(line, f"team_id {team_id}: you may enrol only into your own teams")
        doctor = values.get("attending_doctor", "").strip()
        if len(doctor) > 64:
            problems.add(line, "attending_doctor: at most 64 characters")
        if line in problems.rows:
            continue
        assert patient_id and version and anchor and discharged and team_id
        twice = seen.get((patient_id, code, anchor))
        if twice is not None:
            problems.add(line, f"the same patient, plan and anchor_date as line {twice}")
            continue
        seen[(patient_id, code, anchor)] = line
        earlier = enrolled.get((patient_id, version.plan_id, anchor))
        if earlier is not None:
            problems.add(
                line,
                f"patient {patient_id} is already enrolled in {code} from {anchor} (enrolment {earlier})",
            )
            continue
        rows.append(
            CsvRow(
                line,
                patient_id,
                version.id,
                code,
                anchor,
                discharged,
                team_id,
                doctor,
                values.get("procedure", "").strip()[:200],
            )
        )
    return rows, problems
