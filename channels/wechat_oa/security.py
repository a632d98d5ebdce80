"""Signature checks and AES decryption, delegated to wechatpy and kept off the event loop."""

from __future__ import annotations

from collections.abc import Mapping

from anyio import to_thread
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from channels.wechat_oa.push import PushRejected, parse_xml


class OfficialAccountKeys:
    """The secrets WeChat and we share for one official account."""

    def __init__(self, app_id: str, token: str, aes_key: str) -> None:
        self.app_id = app_id
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None

    def verify_plain(self, signature: str, timestamp: str, nonce: str) -> None:
        if not (signature and timestamp and nonce):
            raise PushRejected(403, "missing signature parameters")
        try:
            check_signature(self.token, signature, timestamp, nonce)
        except InvalidSignatureException as exc:
            raise PushRejected(403, "bad signature") from exc

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
        return await to_thread.run_sync(self.open_push, dict(params), body)

    async def verify_plain_async(self, signature: str, timestamp: str, nonce: str) -> None:
        await to_thread.run_sync(self.verify_plain, signature, timestamp, nonce)
