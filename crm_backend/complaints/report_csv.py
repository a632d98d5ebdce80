"""The complaints report as a CSV file Excel opens as it is (UTF-8 with a byte order mark, names that
look like formulas quoted, as the other reports)."""

from __future__ import annotations

import csv
import io

from crm_backend.complaints.report import ComplaintFigures, ComplaintReport
from crm_backend.spreadsheet import safe_cell

HEADER = [
    "分组",
    "名称",
    "投诉",
    "表扬",
    "已答复",
    "应答复",
    "按期答复",
    "按期答复率",
    "首次回应中位数(小时)",
    "首次回应P90(小时)",
    "重新处理",
    "重新处理率",
    "评价数",
    "平均满意度(1-5)",
    "满意率(4-5分)",
    "转调解/鉴定/诉讼",
]
GROUPS = (("by_department", "科室"), ("by_category", "类别"), ("by_month", "月份"))


def _percent(share: float | None) -> str:
    return "" if share is None else f"{share * 100:.1f}%"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _numbers(f: ComplaintFigures) -> list[str]:
    return [
        str(f.complaints),
        str(f.praise),
        str(f.answered),
        str(f.due),
        str(f.on_time),
        _percent(f.on_time_rate),
        _number(f.first_response_hours_median),
        _number(f.first_response_hours_p90),
        str(f.reopened),
        _percent(f.reopen_rate),
        str(f.rated),
        _number(f.satisfaction_average),
        _percent(f.satisfied_share),
        str(f.referred),
    ]


def complaint_report_csv(report: ComplaintReport) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerow(
        ["合计", f"{report.date_from.isoformat()} 至 {report.date_to.isoformat()}", *_numbers(report.total)]
    )
    for attribute, title in GROUPS:
        for group in getattr(report, attribute):
            writer.writerow([title, safe_cell(group.label), *_numbers(group)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def csv_filename(report: ComplaintReport) -> str:
    return f"complaints-report_{report.date_from.isoformat()}_{report.date_to.isoformat()}.csv"
