"""The service report as a CSV file that Excel opens as it is: UTF-8 with a byte order mark (or
Chinese comes out garbled), and no cell that a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io

from crm_backend.escalations.report import ServiceFigures, ServiceReport
from crm_backend.spreadsheet import safe_cell

HEADER = [
    "范围",
    "团队",
    "坐席",
    "会话数",
    "已响应",
    "已解决",
    "超出SLA",
    "评价数",
    "平均满意度(1-5)",
    "满意率(4-5分)",
    "平均首次响应(分钟,工作时间)",
    "平均解决时长(分钟,工作时间)",
]


def _minutes(seconds: int | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def _numbers(figures: ServiceFigures) -> list[str]:
    return [
        str(figures.escalations),
        str(figures.responded),
        str(figures.resolved),
        str(figures.sla_breached),
        str(figures.rated),
        "" if figures.csat_average is None else f"{figures.csat_average:.2f}",
        "" if figures.csat_satisfied_share is None else f"{figures.csat_satisfied_share * 100:.1f}%",
        _minutes(figures.response_seconds_average),
        _minutes(figures.resolution_seconds_average),
    ]


def service_report_csv(report: ServiceReport) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerow(["合计", "", "", *_numbers(report.total)])
    for team in report.teams:
        writer.writerow(["团队", safe_cell(team.team.name), "", *_numbers(team)])
    for agent in report.agents:
        teams = "、".join(t.name for t in agent.teams)
        writer.writerow(["坐席", safe_cell(teams), safe_cell(agent.agent.display_name), *_numbers(agent)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def csv_filename(report: ServiceReport) -> str:
    return f"service-report_{report.date_from.isoformat()}_{report.date_to.isoformat()}.csv"
