/* The service report page (supervisors and admins): CSAT, response and resolution times per team and
 * agent over hospital days, and the same figures as a CSV file for Excel. */

import { API, api, errorText } from "./api.js";
import { $, el, fillTable, toast } from "./dom.js";
import { hospitalDate } from "./format.js";

const DEFAULT_DAYS = 7;
const COLUMNS = 12;

/** Staffed seconds as "3 分 20 秒" / "1 小时 5 分"; a dash without a figure. */
export function formatSpan(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return s + " 秒";
  if (s < 3600) return Math.floor(s / 60) + " 分" + (s % 60 ? " " + (s % 60) + " 秒" : "");
  return Math.floor(s / 3600) + " 小时 " + Math.floor((s % 3600) / 60) + " 分";
}

function figureCells(row) {
  return [
    row.escalations, row.responded, row.resolved, row.sla_breached, row.rated,
    row.csat_average === null ? "—" : row.csat_average.toFixed(2),
    row.csat_satisfied_share === null ? "—" : (row.csat_satisfied_share * 100).toFixed(1) + "%",
    formatSpan(row.response_seconds_average),
    formatSpan(row.resolution_seconds_average),
  ].map((value) => el("td", "num", value));
}

function reportRow(kind, team, agent, figures) {
  const tr = el("tr", "report-" + kind);
  tr.append(el("td", "", { total: "合计", team: "团队", agent: "坐席" }[kind]), el("td", "", team), el("td", "", agent),
    ...figureCells(figures));
  return tr;
}

/** Table rows of a ServiceReport (docs/CONSOLE_API.md). */
export function reportRows(report) {
  if (report.total.escalations === 0) return [];
  return [
    reportRow("total", "", "", report.total),
    ...report.teams.map((row) => reportRow("team", row.team.name, "", row)),
    ...report.agents.map((row) => reportRow("agent", row.teams.map((t) => t.name).join("、"), row.agent.display_name, row)),
  ];
}

/** The chosen hospital days (the last seven by default), as query parameters. */
function range() {
  const { from, to } = $("report-form").elements;
  if (!to.value) to.value = hospitalDate();
  if (!from.value) from.value = hospitalDate(Date.now(), 1 - DEFAULT_DAYS);
  return new URLSearchParams({ from: from.value, to: to.value });
}

/** The download link always names the days on screen in the form. */
function linkCsv() {
  const params = range();
  $("report-csv").href = API + "/reports/service.csv?" + params.toString();
  return params;
}

export async function loadReport(event) {
  if (event) event.preventDefault();
  const params = linkCsv();
  let report;
  try {
    report = await api("GET", "/reports/service?" + params.toString());
  } catch (error) {
    toast("服务报表加载失败：" + errorText(error), "error");
    return;
  }
  fillTable("report-table", reportRows(report), "所选日期内没有转人工会话", COLUMNS);
}

export function wireReport() {
  $("report-form").addEventListener("submit", loadReport);
  $("report-form").addEventListener("change", linkCsv);
}
