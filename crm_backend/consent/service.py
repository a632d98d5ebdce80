"""Separate consent for health information (PIPL art. 29): asked on subscribe, recorded with its notice."""

from __future__ import annotations

import enum
import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.consent.models import HEALTH_INFORMATION, ConsentRecord
from crm_backend.patients.models import WeChatIdentity

WELCOME = (
    "您好，欢迎关注！我是医院的智能助手。预约挂号、分诊咨询、术后随访和投诉建议等服务正在陆续开通，"
    "有问题可以直接发文字给我。"
)
PRIVACY_NOTICE = (
    "【个人信息保护告知（版本 {version}）】\n"
    "为了给您提供咨询和就诊服务，我们需要处理您在对话中提供的健康信息，例如症状、病史和就诊记录。"
    "健康信息属于敏感个人信息：我们只将其用于为您提供医疗服务，加密保存，只有为您服务的医护人员可以查看，"
    "您可以随时回复“撤回同意”撤回授权。"
)
CONSENT_QUESTION = "您是否同意我们为上述目的处理您的健康信息？请回复“同意”或“不同意”。"
CONSENT_GRANTED = "谢谢您的信任，已记录您的同意。请问有什么可以帮您？"
CONSENT_DECLINED = (
    "已记录您的选择。未经您同意，我们不会在对话中处理您的健康信息，智能助手暂时无法为您提供咨询。"
    "如需帮助，请拨打医院服务电话 {phone}；改变主意时，随时回复“同意”即可。"
)
CONSENT_STILL_DECLINED = (
    "您尚未同意处理健康信息，智能助手暂时无法为您服务。如需开启服务，请回复“同意”；"
    "如需帮助，请拨打医院服务电话 {phone}。"
)
CONSENT_WITHDRAWN = "已为您撤回健康信息处理授权，智能助手将不再处理您的健康信息。如需恢复，请回复“同意”。"


class ConsentAnswer(enum.Enum):
    GRANT = "grant"
    DECLINE = "decline"
    WITHDRAW = "withdraw"


_PUNCTUATION = re.compile(r"[\s。，,.!！~～、“”\"']+")
_GRANT = {"同意", "我同意", "同意的", "同意了", "好的同意", "可以", "好的", "好", "行"}
_DECLINE = {"不同意", "我不同意", "拒绝", "不可以", "不行", "不要", "不"}
_WITHDRAW = {"撤回同意", "撤回", "取消同意", "撤销同意", "撤回授权"}


def read_answer(text: str) -> ConsentAnswer | None:
    """Only short, unambiguous answers count; anything else is not taken as a decision."""
    normalized = _PUNCTUATION.sub("", text)
    if normalized in _WITHDRAW:
        return ConsentAnswer.WITHDRAW
    if normalized in _DECLINE:
        return ConsentAnswer.DECLINE
    if normalized in _GRANT:
        return ConsentAnswer.GRANT
    return None


async def current_decision(session: AsyncSession, identity_id: int) -> bool | None:
    """True granted, False declined or withdrawn, None never asked or never answered."""
    record = await session.scalar(
        select(ConsentRecord)
        .where(ConsentRecord.identity_id == identity_id, ConsentRecord.purpose == HEALTH_INFORMATION)
        .order_by(ConsentRecord.decided_at.desc(), ConsentRecord.id.desc())
        .limit(1)
    )
    return None if record is None else record.granted


async def record_decision(
    session: AsyncSession,
    identity: WeChatIdentity,
    *,
    granted: bool,
    notice_version: str,
    decided_at: datetime,
    message_id: int | None,
) -> ConsentRecord:
    record = ConsentRecord(
        identity_id=identity.id,
        patient_id=identity.patient_id,
        granted=granted,
        notice_version=notice_version,
        decided_at=decided_at,
        message_id=message_id,
    )
    session.add(record)
    return record
