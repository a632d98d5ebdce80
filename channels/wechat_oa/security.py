"""Signature checks and AES decryption.

AES (compatible and safe modes) is wechatpy's, in a worker thread: it is synchronous and never runs
on the event loop. A plain-mode push needs only a SHA-1 over three short strings and the parse of a
small document, which cost less than the hand-off to a thread (docs/PERFORMANCE.md) and the GIL
contention with the loop under load, so small plain pushes are checked on the loop.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from anyio import to_thread
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

from channels.wechat_oa.push import PushRejected, parse_xml

#: Plain pushes up to this size are checked on the event loop (a text message is ~300 bytes);
#: larger ones, hostile or not, are parsed in a thread so they cannot hold the loop.
INLINE_PLAIN_BYTES = 8 * 1024


def plain_signature(token: str, timestamp: str, nonce: str) -> str:
    """WeChat's server-URL signature: SHA-1 of token, timestamp and nonce sorted and joined."""
    return hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode()).hexdigest()


class OfficialAccountKeys:
    """The secrets WeChat and we share for one official account."""

    def __init__(self, app_id: str, token: str, aes_key: str) -> None:
        self.app_id = app_id
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None

    def verify_plain(self, signature: str, timestamp: str, nonce: str) -> None:
        if not (signature and timestamp and nonce):
            raise PushRejected(403, "missing signature parameters")
        expected = plain_signature(self.token, timestamp, nonce)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise PushRejected(403, "bad signature")

    def open_push(self, params: Mapping[str, str], body: bytes) -> dict[str, str]:
        """Verify and (in compatible/safe mode) decrypt one push; returns its plaintext fields."""
        encrypted = params.get("encrypt_type", "raw").lower() == "aes"
        if not encrypted or params.get("signature"):
            self.verify_plain(
                params.get("signature", ""), params.get("timestamp", ""), params.get("nonce", "")
            )
        outer = parse_xml(body)
        if not encrypted:
            return outer
        if self.crypto is None:
            raise PushRejected(400, "encrypted push but no AES key is configured")
        if not outer.get("Encrypt"):
            raise PushRejected(400, "encrypted push without <Encrypt>")
        try:
            inner = self.crypto.decrypt_message(
                {"Encrypt": outer["Encrypt"]},
                params.get("msg_signature", ""),
                params.get("timestamp", ""),
                params.get("nonce", ""),
            )
        except InvalidSignatureException as exc:
            raise PushRejected(403, "bad msg_signature") from exc
        except InvalidAppIdException as exc:
            raise PushRejected(403, "encrypted payload is for another app id") from exc
        except Exception as exc:  # wechatpy raises bare errors for broken base64/padding
            raise PushRejected(400, "encrypted payload cannot be decrypted") from exc
        return parse_xml(inner)

    async def open_push_async(self, params: Mapping[str, str], body: bytes) -> dict[str, str]:
        if params.get("encrypt_type", "raw").lower() != "aes" and len(body) <= INLINE_PLAIN_BYTES:
            return self.open_push(params, body)
        return await to_thread.run_sync(self.open_push, dict(params), body)
