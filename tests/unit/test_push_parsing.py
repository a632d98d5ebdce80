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


def test_plain_signature_is_the_one_wechat_computes() -> None:
    """Plain pushes are checked on the event loop with our own SHA-1; wechatpy's check (which
    runs in a thread) is the reference it must agree with."""
    import secrets

    from wechatpy.utils import check_signature

    from channels.wechat_oa.security import OfficialAccountKeys, plain_signature

    keys = OfficialAccountKeys("wxapp", "token-123", "")
    for _ in range(20):
        timestamp, nonce = str(secrets.randbelow(2**31)), secrets.token_hex(5)
        signature = plain_signature("token-123", timestamp, nonce)
        check_signature("token-123", signature, timestamp, nonce)  # raises if we disagree
        keys.verify_plain(signature, timestamp, nonce)
        with pytest.raises(PushRejected) as refused:
            keys.verify_plain(plain_signature("other-token", timestamp, nonce), timestamp, nonce)
        assert refused.value.status_code == 403


async def test_large_plain_push_is_checked_off_the_loop_with_the_same_rules() -> None:
    from channels.wechat_oa.security import INLINE_PLAIN_BYTES, OfficialAccountKeys, plain_signature

    keys = OfficialAccountKeys("wxapp", "token-123", "")
    params = {"timestamp": "1700000000", "nonce": "n1"}
    params["signature"] = plain_signature("token-123", params["timestamp"], params["nonce"])
    padding = "很" * INLINE_PLAIN_BYTES
    big = _xml(FromUserName="oA", CreateTime="1700000000", MsgType="text", Content=padding[:2000], MsgId="7")
    big = big.replace(b"</xml>", b"<Note>" + b"x" * INLINE_PLAIN_BYTES + b"</Note></xml>")
    assert len(big) > INLINE_PLAIN_BYTES
    fields = await keys.open_push_async(params, big)
    assert fields["Content"] == padding[:2000]
    hostile = b'<!DOCTYPE xml [<!ENTITY a "b">]>' + big
    with pytest.raises(PushRejected) as refused:
        await keys.open_push_async(params, hostile)
    assert refused.value.status_code == 400
    with pytest.raises(PushRejected) as forged:
        await keys.open_push_async({**params, "signature": "0" * 40}, big)
    assert forged.value.status_code == 403
