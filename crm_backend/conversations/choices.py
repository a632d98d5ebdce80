"""WeChat text messages have no buttons: we number the options and map the patient's digit back."""

from __future__ import annotations

import json
import re

from redis.asyncio import Redis

from crm_backend.conversations.bot_gateway import BotReply, Button

CHOICE_TTL_SECONDS = 24 * 3600
_NUMBER = re.compile(r"^\s*(?:第\s*)?([0-9０-９]{1,2})\s*(?:个|项|号)?\s*[.。、]?\s*$")


def render(reply: BotReply) -> str:
    if not reply.buttons:
        return reply.text
    lines = [reply.text] if reply.text else []
    lines += [f"{i}. {button.title}" for i, button in enumerate(reply.buttons, start=1)]
    lines.append("（请回复数字选择）")
    return "\n".join(lines)


def parse_number(text: str) -> int | None:
    match = _NUMBER.match(text)
    if not match:
        return None
    # Full-width digits are common from Chinese input methods.
    return int(match.group(1).translate(str.maketrans("０１２３４５６７８９", "0123456789")))


class ChoiceMemory:
    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self.redis = redis
        self.prefix = key_prefix

    def _key(self, conversation_id: int) -> str:
        return f"{self.prefix}:choices:{conversation_id}"

    async def remember(self, conversation_id: int, buttons: list[Button]) -> None:
        if buttons:
            data = json.dumps([[b.title, b.payload] for b in buttons], ensure_ascii=False)
            await self.redis.set(self._key(conversation_id), data, ex=CHOICE_TTL_SECONDS)
        else:
            await self.redis.delete(self._key(conversation_id))

    async def offered(self, conversation_id: int) -> list[Button]:
        raw = await self.redis.get(self._key(conversation_id))
        return [Button(title, payload) for title, payload in json.loads(raw)] if raw else []

    async def forget(self, conversation_id: int) -> None:
        await self.redis.delete(self._key(conversation_id))
