"""A numbered menu leaves no ERROR in Rasa's log (Rasa 3.6 read `{...}` in a button payload as a slot)."""

from __future__ import annotations

from tests.support.stack import Stack


async def test_the_relationship_menu_is_numbered_and_logs_no_error(stack: Stack) -> None:
    rasa_log = stack.rasa.rasa.log_path
    start = rasa_log.stat().st_size
    openid = await stack.consented_patient()

    assert "登记就诊人" in (await stack.converse(openid, "我想挂个号"))[-1]
    menu = (await stack.converse(openid, "1"))[-1]
    assert "什么人" in menu
    for number, title in enumerate(["本人", "子女", "父母", "配偶", "其他亲友"], start=1):
        assert f"{number}. {title}" in menu, menu
    # The patient's digit still maps back to the payload: the form moves on to the name.
    assert "姓名" in (await stack.converse(openid, "2"))[-1]

    with rasa_log.open("rb") as log:
        log.seek(start)
        written = log.read().decode(errors="replace")
    assert "Rasa server is up" in rasa_log.read_text(errors="replace")
    assert "interpolator" not in written, written[-3000:]
    assert " ERROR " not in written, written[-3000:]
