"""Build the HTTP requests WeChat sends to an official account's server URL, byte for byte.

The simulator, the tests and the benchmark all push through here, so the webhook only ever sees
what real WeChat would send: same query string, same XML layout, same signatures and encryption.
Synchronous on purpose (wechatpy's crypto is); async callers should run it in a worker thread.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Literal

from defusedxml.ElementTree import fromstring
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

PushKind = Literal["text", "voice", "image", "subscribe", "unsubscribe"]
PushMode = Literal["plain", "compat", "safe"]

#: The Content-Type WeChat's push requests carry.
PUSH_CONTENT_TYPE = "text/xml"
#: Official-account original ids look like this; WeChat puts it in <ToUserName>.
DEFAULT_TO_USER = "gh_carebridge"

_MEDIA_ID_ALPHABET = string.ascii_letters + string.digits + "_-"


@dataclass(frozen=True)
class Push:
    """One push request: POST `body` to the webhook with `params` as its query string."""

    params: dict[str, str]
    body: bytes
    #: The plaintext XML the webhook must end up with after verifying (and decrypting) the push.
    plaintext: str
    #: WeChat's MsgId for messages; events carry none.
    msg_id: int | None = None
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": PUSH_CONTENT_TYPE})


def sign(*parts: str) -> str:
    """WeChat's signature: sha1 over the sorted, concatenated parts."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA; XML's way out is to close and reopen the section.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _random_media_id() -> str:
    return "".join(secrets.choice(_MEDIA_ID_ALPHABET) for _ in range(64))


def _nonce() -> str:
    # WeChat's nonces are decimal numbers.
    return str(secrets.randbelow(9_000_000_000) + 1_000_000_000)


def _plaintext_fields(
    kind: PushKind,
    openid: str,
    to_user: str,
    create_time: int,
    content: str,
    recognition: str | None,
    pic_url: str | None,
    media_id: str | None,
    msg_id: int | None,
) -> list[tuple[str, str]]:
    """The child elements of <xml>, in WeChat's order; values already serialised."""
    head = [
        ("ToUserName", _cdata(to_user)),
        ("FromUserName", _cdata(openid)),
        ("CreateTime", str(create_time)),
    ]
    if kind == "text":
        return [*head, ("MsgType", _cdata("text")), ("Content", _cdata(content)), ("MsgId", str(msg_id))]
    if kind == "voice":
        fields = [
            *head,
            ("MsgType", _cdata("voice")),
            ("MediaId", _cdata(media_id or _random_media_id())),
            ("Format", _cdata("amr")),
        ]
        if recognition is not None:
            fields.append(("Recognition", _cdata(recognition)))
        return [*fields, ("MsgId", str(msg_id))]
    if kind == "image":
        media = media_id or _random_media_id()
        url = pic_url or f"http://mmbiz.qpic.cn/mmbiz_jpg/{media[:32]}/0"
        return [
            *head,
            ("MsgType", _cdata("image")),
            ("PicUrl", _cdata(url)),
            ("MsgId", str(msg_id)),
            ("MediaId", _cdata(media)),
        ]
    if kind in ("subscribe", "unsubscribe"):
        return [*head, ("MsgType", _cdata("event")), ("Event", _cdata(kind))]
    raise ValueError(f"unknown push kind: {kind!r}")


def _render(fields: list[tuple[str, str]]) -> str:
    return "<xml>" + "".join(f"<{name}>{value}</{name}>" for name, value in fields) + "</xml>"


def build_push(
    kind: PushKind,
    openid: str,
    *,
    content: str = "",
    recognition: str | None = None,
    pic_url: str | None = None,
    media_id: str | None = None,
    msg_id: int | None = None,
    create_time: int | None = None,
    mode: PushMode = "plain",
    token: str,
    appid: str | None = None,
    aes_key: str | None = None,
    to_user: str = DEFAULT_TO_USER,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> Push:
    """Build the push WeChat would send when `openid` does `kind` to the official account.

    `recognition` is the speech-to-text WeChat adds to voice messages (omitted when None, as when the
    account has recognition switched off). `appid` and `aes_key` are needed in compat and safe mode.
    `timestamp`/`nonce` default to fresh values, like WeChat's; pass them for reproducible output.
    """
    if not openid:
        raise ValueError("openid must not be empty")
    now = int(time.time())
    if create_time is None:
        create_time = now
    is_message = kind in ("text", "voice", "image")
    if is_message and msg_id is None:
        msg_id = secrets.randbits(63) or 1
    if not is_message:
        msg_id = None
    fields = _plaintext_fields(
        kind, openid, to_user, create_time, content, recognition, pic_url, media_id, msg_id
    )
    plaintext = _render(fields)

    timestamp = timestamp or str(now)
    nonce = nonce or _nonce()
    params = {
        "signature": sign(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": openid,
    }
    if mode == "plain":
        return Push(params=params, body=plaintext.encode("utf-8"), plaintext=plaintext, msg_id=msg_id)
    if mode not in ("compat", "safe"):
        raise ValueError(f"unknown push mode: {mode!r}")
    if not appid or not aes_key:
        raise ValueError(f"{mode} mode needs appid and aes_key")

    envelope = fromstring(WeChatCrypto(token, aes_key, appid).encrypt_message(plaintext, nonce, timestamp))
    encrypt = envelope.findtext("Encrypt") or ""
    params |= {"encrypt_type": "aes", "msg_signature": envelope.findtext("MsgSignature") or ""}
    if mode == "safe":
        outer = [("ToUserName", _cdata(to_user)), ("Encrypt", _cdata(encrypt))]
    else:
        outer = [*fields, ("Encrypt", _cdata(encrypt))]
    return Push(params=params, body=_render(outer).encode("utf-8"), plaintext=plaintext, msg_id=msg_id)


def verification_params(
    token: str, echostr: str, *, timestamp: str | None = None, nonce: str | None = None
) -> dict[str, str]:
    """Query string of WeChat's GET handshake when the server URL is saved; the webhook echoes `echostr`."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or _nonce()
    return {
        "signature": sign(token, timestamp, nonce),
        "echostr": echostr,
        "timestamp": timestamp,
        "nonce": nonce,
    }
