"""The fault suite's books for complaints (bench/fault_complaints.py): what the complaint patient
writes next, and which intakes count as registered once, lost or duplicated."""

from __future__ import annotations

from bench.fault_complaints import CONFIRM, START, Intake, check_complaints, next_words


def _intake(openid: str, *, confirmed: bool, pushes: list[tuple[int, str, bool]] | None = None) -> Intake:
    return Intake(openid, "web_kill", started=True, confirmed=confirmed, pushes=pushes or [])


def _never(openid: str, msg_id: int) -> bool:
    return False


def test_the_patient_answers_the_question_asked_and_stops_once_registered() -> None:
    assert (
        next_words(["请您具体说说发生了什么事？"], confirmed=False) == "门诊排队等了两个小时，叫号也没人解释"
    )
    assert next_words(["我核对一下记录（投诉）：\n…"], confirmed=False) == CONFIRM
    assert next_words(["抱歉，系统暂时无法登记……请稍后回复“确认”再试"], confirmed=True) == CONFIRM
    assert next_words(["您的投诉已登记，编号：TS-20261205-0001。"], confirmed=True) is None
    # An intake the bot lost is started again only before the patient confirmed anything.
    assert next_words(["您好，请问有什么可以帮您？"], confirmed=False) == START
    assert next_words(["您好，请问有什么可以帮您？"], confirmed=True) is None


def test_one_case_for_a_confirmed_intake_is_registered_once_and_two_are_a_duplicate() -> None:
    cases = [
        {"openid": "once", "case_number": "TS-20261205-0001"},
        {"openid": "twice", "case_number": "TS-20261205-0002"},
        {"openid": "twice", "case_number": "TS-20261205-0003"},
    ]
    read = {"once": ["您的投诉已登记，编号：TS-20261205-0001。"], "twice": []}
    intakes = [_intake("once", confirmed=True), _intake("twice", confirmed=True)]
    [tally] = check_complaints(intakes, cases, read, _never, _never).values()
    counts = tally.counts
    assert (counts["confirmed"], counts["registered once"], counts["duplicated"], counts["lost"]) == (
        2,
        1,
        1,
        0,
    )


def test_a_confirmed_intake_without_a_case_is_lost_unless_given_up_and_escalated() -> None:
    confirmed = [(7, START, True), (9, CONFIRM, True)]
    intakes = [
        _intake("lost", confirmed=True, pushes=confirmed),
        _intake("gave", confirmed=True, pushes=confirmed),
    ]
    [tally] = check_complaints(
        intakes, [], {}, lambda openid, msg_id: openid == "gave" and msg_id == 9, _never
    ).values()
    assert (tally.counts["lost"], dict(tally.marked)) == (1, {"confirmation given up, escalated": 1})


def test_a_case_number_the_patient_read_must_be_the_registered_one() -> None:
    intakes = [_intake("told", confirmed=True)]
    read = {"told": ["您的投诉已登记，编号：TS-20261205-0009。"]}
    cases = [{"openid": "told", "case_number": "TS-20261205-0008"}]
    [tally] = check_complaints(intakes, cases, read, _never, _never).values()
    assert tally.counts["lost"] == 1 and tally.failed
