"""The webhook's first line of defence: what counts as a valid push, and how duplicates are keyed."""

from __future__ import annotations

import pytest

from channels.wechat_oa.push import PushRejected, WeChatPush, parse_xml


def _xml(**fields: str) -> bytes:
    inner = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    return f"<xml>{inner}</xml>".encode()


def test_text_message_fields_and_dedupe_key() -> None:
    push = WeChatPush.from_fields(
        parse_xml(
            _xml(FromUserName="oA", CreateTime="1700000000", MsgType="text", Content="你好", MsgId="42")
        )
    )
    assert (push.openid, push.msg_type, push.msg_id, push.fields["Content"]) == ("oA", "text", 42, "你好")
    assert push.dedupe_key("wx1") == "msg:wx1:42"


def test_events_are_keyed_by_sender_time_and_event() -> None:
    fields = parse_xml(_xml(FromUserName="oA", CreateTime="1700000000", MsgType="event", Event="subscribe"))
    push = WeChatPush.from_fields(fields)
    assert push.msg_id is None
    assert push.dedupe_key("wx1") == "evt:wx1:oA:1700000000:subscribe"


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE x [<!ENTITY a "b">]><xml><Content>&a;</Content></xml>',
        b"<!DOCTYPE xml><xml/>",
        b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://evil/x.dtd"><xml/>',
    ],
)
def test_doctype_and_entities_are_refused(body: bytes) -> None:
    with pytest.raises(PushRejected) as info:
        parse_xml(body)
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    "fields",
    [
        {"CreateTime": "1", "MsgType": "text", "MsgId": "1"},
        {"FromUserName": "oA", "CreateTime": "soon", "MsgType": "text", "MsgId": "1"},
        {"FromUserName": "oA", "CreateTime": "1", "MsgType": "text"},
        {"FromUserName": "oA", "CreateTime": "1", "MsgType": "event"},
        {"FromUserName": "o" * 200, "CreateTime": "1", "MsgType": "text", "MsgId": "1"},
    ],
)
def test_incomplete_pushes_are_refused(fields: dict[str, str]) -> None:
    with pytest.raises(PushRejected):
        WeChatPush.from_fields(fields)


def test_wrong_root_and_garbage_are_refused() -> None:
    for body in (b"<html></html>", b"\x00\x01garbage", b""):
        with pytest.raises(PushRejected):
            parse_xml(body)
