"""The follow-up report as a CSV file that Excel opens as it is: UTF-8 with a byte order mark (or
Chinese comes out garbled), and no cell that a spreadsheet would run as a formula (team and plan
names are staff input)."""

from __future__ import annotations

import csv
import io

from crm_backend.followups.models import CheckinChannel, StopReason
from crm_backend.followups.report import FollowupFigures, FollowupReport
from crm_backend.spreadsheet import safe_cell

CHANNEL_NAMES = {
    CheckinChannel.chat: "微信对话",
    CheckinChannel.page: "问卷页面",
    CheckinChannel.phone: "电话",
}
STOP_NAMES = {
    StopReason.readmitted: "再入院",
    StopReason.deceased: "死亡",
    StopReason.opted_out: "患者退出",
    StopReason.other: "其他",
}
HEADER = [
    "范围",
    "名称",
    "出院人数(已登记随访)",
    "已随访人数",
    "出院患者随访比例",
    "到期随访次数",
    "未发送",
    "等待答复",
    "已应答",
    "未应答",
    "应答率",
    *(f"{name}应答率" for name in CHANNEL_NAMES.values()),
    "红色/急症预警",
    "已联系",
    "尚未联系",
    "首次联系中位数(分钟)",
    "首次联系P90(分钟)",
    "已答随访",
    "绿色",
    "黄色",
    "红色",
    "急症",
    "失访人数",
    "失访率",
    "已停止",
    *(f"停止:{name}" for name in STOP_NAMES.values()),
]
NOTE = (
    "说明：出院人数为医院信息系统或工作人员登记随访的出院患者（未登记的出院患者系统无从知晓，不计入）；"
    "同一次住院多次联系只计一次。随访次数按到期日统计，应答率不含未发送和仍在答复期内的随访。"
)


def _percent(share: float | None) -> str:
    return "" if share is None else f"{share * 100:.1f}%"


def _minutes(seconds: int | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def _numbers(figures: FollowupFigures) -> list[str]:
    coverage, response, contact, flags, lost = (
        figures.coverage,
        figures.response,
        figures.flag_contact,
        figures.flags,
        figures.lost_to_followup,
    )
    channels = {row.channel: row for row in response.channels}
    stops = {row.reason: row.count for row in lost.stopped_by_reason}
    return [
        str(coverage.discharged),
        str(coverage.followed_up),
        _percent(coverage.rate),
        str(response.due),
        str(response.skipped),
        str(response.awaiting),
        str(response.responded),
        str(response.unanswered),
        _percent(response.rate),
        *(_percent(channels[channel].rate) for channel in CHANNEL_NAMES),
        str(contact.flagged),
        str(contact.contacted),
        str(contact.without_contact),
        _minutes(contact.median_seconds),
        _minutes(contact.p90_seconds),
        str(flags.answered),
        _percent(flags.green_share),
        _percent(flags.amber_share),
        _percent(flags.red_share),
        _percent(flags.emergency_share),
        str(lost.lost),
        _percent(lost.rate),
        str(lost.stopped),
        *(str(stops.get(reason, 0)) for reason in STOP_NAMES),
    ]


def followup_report_csv(report: FollowupReport) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerow(["合计", "", *_numbers(report.total)])
    for team in report.teams:
        writer.writerow(["团队", safe_cell(team.team.name), *_numbers(team)])
    for plan in report.plans:
        writer.writerow(["随访计划", safe_cell(plan.plan.name), *_numbers(plan)])
    writer.writerow([])
    writer.writerow([NOTE])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def csv_filename(report: FollowupReport) -> str:
    return f"followup-report_{report.date_from.isoformat()}_{report.date_to.isoformat()}.csv"
