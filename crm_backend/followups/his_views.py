"""POST /api/his/discharges: the HIS enrols a patient at discharge (the contract in issue 15).

Bearer HIS_API_TOKEN (without the setting the endpoint is off: 404; a wrong or missing token: 401).
The body is a FHIR R4B Bundle (his.py) as `application/fhir+json` or `application/json`. Answers:
201 with the new enrolment and its check-ins' due times (ISO 8601, Asia/Shanghai); 200 with the same
body when the Encounter was enrolled before (a retry; also the loser of two identical requests
racing); 409 naming what differs when a request for an enrolled Encounter says otherwise (another
discharge date, doctor or resident ID); 400 naming what is malformed; 415 for another media type;
422 naming the known procedures when no plan covers the ones sent. Audited with the HIS as the actor.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from crm_backend.audit.service import record as audit
from crm_backend.followups.enrolment_views import EnrolmentRead, enrolment_read
from crm_backend.followups.his import (
    DischargeError,
    enrol_discharge,
    enrolment_by_encounter,
    parse_discharge,
    retry_differences,
)
from crm_backend.staff.deps import runtime_of

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/his", tags=["his"])

MEDIA_TYPES = ("application/fhir+json", "application/json")


class DischargeEnrolled(EnrolmentRead):
    #: False when the Encounter had been enrolled before (the answer is then 200).
    created: bool


def _authorise(request: Request) -> None:
    expected = runtime_of(request).settings.his_api_token
    if not expected:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid HIS bearer token is required",
            {"WWW-Authenticate": "Bearer"},
        )


@router.post("/discharges", status_code=status.HTTP_201_CREATED, response_model=None)
async def receive_discharge(request: Request) -> JSONResponse:
    _authorise(request)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"send one of {', '.join(MEDIA_TYPES)}")
    try:
        discharge = parse_discharge(await request.body())
    except DischargeError as exc:
        return JSONResponse({"detail": exc.message, **exc.detail}, status_code=exc.status_code)
    runtime = runtime_of(request)
    # Two tries: the second after losing a race on the Encounter (answer what the winner made) or
    # on a new patient's resident ID (find the patient the winner created).
    for attempt in (1, 2):
        async with runtime.db.sessions() as session:
            existing = await enrolment_by_encounter(session, discharge.encounter_key)
            if existing is not None:
                differences = await retry_differences(session, runtime.protector, existing, discharge)
                if differences:
                    return JSONResponse(
                        {
                            "detail": f"Encounter {discharge.encounter_key} was enrolled before with "
                            f"other content: {', '.join(differences)}; correct the enrolment in the "
                            "console or send a new Encounter identifier",
                            "enrolment_id": existing.id,
                            "differences": differences,
                        },
                        status_code=status.HTTP_409_CONFLICT,
                    )
                read = await enrolment_read(session, existing)
                return _answer(read, created=False)
            try:
                enrolment, definition, found_by = await enrol_discharge(
                    session, runtime.protector, runtime.settings, discharge
                )
                await audit(
                    session,
                    staff_id=None,
                    action="followup_enrolment.his",
                    object_type="followup_enrolment",
                    object_id=enrolment.id,
                    patient_id=enrolment.patient_id,
                    request=request,
                    detail={
                        "actor": "his",
                        "encounter": discharge.encounter_key,
                        "plan": definition.code,
                        "procedure": enrolment.procedure,
                        "patient": found_by,
                    },
                )
                read = await enrolment_read(session, enrolment)
                await session.commit()
            except DischargeError as exc:
                await session.rollback()
                return JSONResponse({"detail": exc.message, **exc.detail}, status_code=exc.status_code)
            except IntegrityError:
                await session.rollback()
                if attempt == 2:
                    raise
                log.info("discharge %s: a concurrent request got there first", discharge.encounter_key)
                continue
        log.info("discharge %s enrolled as %s (patient %s)", discharge.encounter_key, read.id, found_by)
        return _answer(read, created=True)
    raise AssertionError("unreachable")


def _answer(read: EnrolmentRead, *, created: bool) -> JSONResponse:
    body = DischargeEnrolled(**read.model_dump(), created=created)
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK
    )
