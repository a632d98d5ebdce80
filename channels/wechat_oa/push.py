"""Turn the bytes WeChat pushes into a flat, validated dict; refuse anything hostile or malformed."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

#: WeChat's pushes are flat; the deepest events (menu pickers) nest one level more.
_MAX_FIELD_CHARS = 8192


class PushRejected(Exception):
    """A push we refuse; `status_code` is what the webhook answers."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


def parse_xml(body: bytes | str) -> dict[str, str]:
    """Parse with DTDs and entities forbidden: a DOCTYPE alone is reason enough to refuse."""
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise PushRejected(400, f"forbidden XML construct: {type(exc).__name__}") from exc
    except (ParseError, ValueError) as exc:
        raise PushRejected(400, f"malformed XML: {exc}") from exc
    if root.tag != "xml":
        raise PushRejected(400, "root element must be <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if len(child):
            # Nested structures (menu picker results) are kept as their leaf values, prefixed.
            for leaf in child.iter():
                if leaf is not child and not len(leaf):
                    fields[f"{child.tag}.{leaf.tag}"] = (leaf.text or "").strip()
            continue
        text = child.text or ""
        if len(text) > _MAX_FIELD_CHARS:
            raise PushRejected(400, f"field {child.tag} too long")
        fields[child.tag] = text
    return fields


_BIGINT_MAX = 2**63 - 1


def _bigint(value: str) -> int | None:
    """An ASCII number that fits the database's BIGINT, else None: `isdigit` also accepts "²",
    which `int` refuses, and other scripts' digits, which `int` reads; WeChat's ids are 64-bit."""
    raw = value.strip()
    if not raw or len(raw) > 19 or not raw.isascii() or not raw.isdigit():
        return None
    number = int(raw)
    return number if number <= _BIGINT_MAX else None


@dataclass(frozen=True)
class WeChatPush:
    """A decrypted push from the official account; field names are WeChat's own."""

    fields: dict[str, str]

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> WeChatPush:
        for required in ("FromUserName", "CreateTime", "MsgType"):
            if not fields.get(required, "").strip():
                raise PushRejected(400, f"missing {required}")
        openid = fields["FromUserName"].strip()
        if len(openid) > 128 or not openid.isprintable():
            raise PushRejected(400, "invalid FromUserName")
        if _bigint(fields["CreateTime"]) is None:
            raise PushRejected(400, "CreateTime must be a number of at most 19 digits")
        msg_type = fields["MsgType"].strip().lower()
        if msg_type != "event" and _bigint(fields.get("MsgId", "")) is None:
            raise PushRejected(400, "messages must carry a MsgId of at most 19 digits")
        if msg_type == "event" and fields.get("MsgId", "").strip() and _bigint(fields["MsgId"]) is None:
            raise PushRejected(400, "MsgId must be a number of at most 19 digits")
        if msg_type == "event" and not fields.get("Event", "").strip():
            raise PushRejected(400, "events must carry an Event")
        return cls(fields)

    @property
    def openid(self) -> str:
        return self.fields["FromUserName"].strip()

    @property
    def create_time(self) -> int:
        return int(self.fields["CreateTime"])

    @property
    def msg_type(self) -> str:
        return self.fields["MsgType"].strip().lower()

    @property
    def event(self) -> str | None:
        return self.fields["Event"].strip().lower() if self.msg_type == "event" else None

    @property
    def msg_id(self) -> int | None:
        return _bigint(self.fields.get("MsgId", ""))

    def dedupe_key(self, app_id: str) -> str:
        """MsgId identifies a message; events have none, so WeChat's advice is sender + CreateTime.

        The event name is added so that two different events in the same second are both kept.
        """
        if self.msg_id is not None:
            return f"msg:{app_id}:{self.msg_id}"
        return f"evt:{app_id}:{self.openid}:{self.create_time}:{self.event}"
