"""Pushes must be exactly what WeChat sends: checked with wechatpy's own verification and decryption."""

from __future__ import annotations

import time

import pytest
from defusedxml.ElementTree import fromstring
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from channels.sandbox.pushes import build_push, verification_params
from crm_backend.config import SANDBOX_AES_KEY, SANDBOX_APPID, SANDBOX_TOKEN

OPENID = "oPatient_0000000000000000001"
KEYS = {"token": SANDBOX_TOKEN, "appid": SANDBOX_APPID, "aes_key": SANDBOX_AES_KEY}


def fields(xml: bytes | str) -> dict[str, str]:
    root = fromstring(xml)
    assert root.tag == "xml"
    return {child.tag: child.text or "" for child in root}


def test_plain_text_push_is_signed_and_carries_the_message() -> None:
    push = build_push(
        "text",
        OPENID,
        content="我想挂号\n明天上午",
        msg_id=1234567890123456789,
        create_time=1700000000,
        **KEYS,
    )

    assert set(push.params) == {"signature", "timestamp", "nonce", "openid"}
    assert push.params["openid"] == OPENID
    assert push.params["nonce"].isdigit()
    check_signature(SANDBOX_TOKEN, push.params["signature"], push.params["timestamp"], push.params["nonce"])
    with pytest.raises(InvalidSignatureException):
        check_signature(
            "another-token", push.params["signature"], push.params["timestamp"], push.params["nonce"]
        )

    assert fields(push.body) == {
        "ToUserName": "gh_carebridge",
        "FromUserName": OPENID,
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": "我想挂号\n明天上午",
        "MsgId": "1234567890123456789",
    }
    assert b"<Content><![CDATA[" in push.body
    assert push.body.decode() == push.plaintext
    assert push.msg_id == 1234567890123456789
    assert push.headers["Content-Type"] == "text/xml"


def test_defaults_are_fresh_and_within_wechat_ranges() -> None:
    first = build_push("text", OPENID, content="你好", **KEYS)
    second = build_push("text", OPENID, content="你好", **KEYS)
    assert first.msg_id is not None and second.msg_id is not None
    assert first.msg_id != second.msg_id
    assert 0 < first.msg_id < 2**63
    assert abs(int(fields(first.body)["CreateTime"]) - time.time()) < 5
    assert abs(int(first.params["timestamp"]) - time.time()) < 5


def test_cdata_terminator_and_markup_in_content_survive() -> None:
    content = "a]]>b <script>alert(1)</script> &amp;"
    push = build_push("text", OPENID, content=content, **KEYS)
    assert fields(push.body)["Content"] == content


def test_safe_mode_body_is_only_the_envelope_and_decrypts_to_the_message() -> None:
    push = build_push("text", OPENID, content="复诊时间是什么时候？", mode="safe", **KEYS)
    p = push.params
    assert p["encrypt_type"] == "aes"
    check_signature(SANDBOX_TOKEN, p["signature"], p["timestamp"], p["nonce"])

    outer = fields(push.body)
    assert set(outer) == {"ToUserName", "Encrypt"}
    assert "复诊" not in push.body.decode()

    crypto = WeChatCrypto(SANDBOX_TOKEN, SANDBOX_AES_KEY, SANDBOX_APPID)
    inner = crypto.decrypt_message(push.body.decode(), p["msg_signature"], p["timestamp"], p["nonce"])
    assert inner == push.plaintext
    assert fields(inner)["Content"] == "复诊时间是什么时候？"
    assert fields(inner)["MsgId"] == str(push.msg_id)
    with pytest.raises(InvalidSignatureException):
        crypto.decrypt_message(push.body.decode(), p["signature"], p["timestamp"], p["nonce"])


def test_compat_mode_carries_plaintext_and_encrypted_copies() -> None:
    push = build_push("voice", OPENID, recognition="我头疼", mode="compat", **KEYS)
    p = push.params
    outer = fields(push.body)
    assert outer["Recognition"] == "我头疼"
    assert outer["MsgType"] == "voice"
    assert outer["Encrypt"]

    crypto = WeChatCrypto(SANDBOX_TOKEN, SANDBOX_AES_KEY, SANDBOX_APPID)
    inner = fields(crypto.decrypt_message(push.body.decode(), p["msg_signature"], p["timestamp"], p["nonce"]))
    assert inner == {k: v for k, v in outer.items() if k != "Encrypt"}


def test_encryption_is_bound_to_the_app_id() -> None:
    push = build_push("text", OPENID, content="hi", mode="safe", **KEYS)
    p = push.params
    other = WeChatCrypto(SANDBOX_TOKEN, SANDBOX_AES_KEY, "wx_other_app")
    with pytest.raises(InvalidAppIdException):
        other.decrypt_message(push.body.decode(), p["msg_signature"], p["timestamp"], p["nonce"])


def test_voice_without_recognition_has_no_recognition_field() -> None:
    body = fields(build_push("voice", OPENID, **KEYS).body)
    assert list(body) == ["ToUserName", "FromUserName", "CreateTime", "MsgType", "MediaId", "Format", "MsgId"]
    assert body["Format"] == "amr"
    assert len(body["MediaId"]) == 64


def test_image_push() -> None:
    push = build_push("image", OPENID, media_id="media-1", pic_url="http://example.org/p.jpg", **KEYS)
    body = fields(push.body)
    assert body["MsgType"] == "image"
    assert body["PicUrl"] == "http://example.org/p.jpg"
    assert body["MediaId"] == "media-1"
    assert body["MsgId"] == str(push.msg_id)
    default = fields(build_push("image", OPENID, **KEYS).body)
    assert default["PicUrl"].startswith("http://") and default["MediaId"]


@pytest.mark.parametrize("event", ["subscribe", "unsubscribe"])
def test_events_have_no_msg_id(event: str) -> None:
    push = build_push(event, OPENID, msg_id=42, mode="safe", **KEYS)  # type: ignore[arg-type]
    assert push.msg_id is None
    inner = fields(push.plaintext)
    assert inner["MsgType"] == "event"
    assert inner["Event"] == event
    assert "MsgId" not in inner


def test_fixed_timestamp_and_nonce_make_pushes_reproducible() -> None:
    kwargs = {"content": "x", "msg_id": 7, "create_time": 1, "timestamp": "1700000000", "nonce": "123456"}
    assert build_push("text", OPENID, **kwargs, **KEYS) == build_push("text", OPENID, **kwargs, **KEYS)


def test_encrypted_modes_need_the_aes_key() -> None:
    with pytest.raises(ValueError, match="aes_key"):
        build_push("text", OPENID, content="hi", mode="safe", token=SANDBOX_TOKEN, appid=SANDBOX_APPID)
    with pytest.raises(ValueError, match="openid"):
        build_push("text", "", content="hi", **KEYS)


def test_verification_params_sign_the_handshake() -> None:
    params = verification_params(SANDBOX_TOKEN, "echo-123")
    assert params["echostr"] == "echo-123"
    check_signature(SANDBOX_TOKEN, params["signature"], params["timestamp"], params["nonce"])
    with pytest.raises(InvalidSignatureException):
        check_signature(SANDBOX_TOKEN, params["signature"], params["timestamp"], params["nonce"] + "0")
