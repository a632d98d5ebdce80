/* The complaints report page (the complaints office, supervisors, admins and department liaisons, who
 * read their departments' figures): complaints and praise
 * by department, category and month, on-time rate, first response, reopen rate and satisfaction over
 * hospital days, and the same figures as a CSV file for Excel
 * (GET /reports/complaints, /reports/complaints.csv; docs/CONSOLE_API.md). */

import { API, api, errorText } from "./api.js";
import { $, el, fillTable, toast } from "./dom.js";
import { hospitalDate } from "./format.js";
import { percent } from "./followup-report.js";
import { state } from "./state.js";

const DEFAULT_DAYS = 90;
const COLUMNS = 15;
/** Roles that read the report; department liaisons (any role) read it too, asked of the server. */
export const READERS = ["complaints_office", "supervisor", "admin"];
const GROUPS = [["by_department", "科室"], ["by_category", "类别"], ["by_month", "月份"]];
const reader = { liaison: false };

export function mayReadComplaintsReport() {
  return state.me !== null && (READERS.includes(state.me.role) || reader.liaison);
}

/** Whether the signed-in staff member is a department's liaison (GET /complaints/scope), who reads
 * the report for their departments; shows the tab when so. Once per sign-in. */
export async function checkComplaintsReport() {
  reader.liaison = false;
  if (state.me === null || READERS.includes(state.me.role)) return;
  try {
    reader.liaison = (await api("GET", "/complaints/scope")).liaison_of.length > 0;
  } catch (_) {
    return; // the tab stays hidden; the 投诉工作台 still lists their cases
  }
  $("tab-complaints-report").hidden = !mayReadComplaintsReport();
}

export function resetComplaintsReport() {
  reader.liaison = false;
}

function hours(value) {
  return value === null || value === undefined ? "—" : value.toFixed(1) + " 小时";
}

function figureCells(f) {
  return [
    f.complaints, f.praise, f.answered, f.on_time + " / " + f.due, percent(f.on_time_rate),
    hours(f.first_response_hours_median), hours(f.first_response_hours_p90),
    f.reopened, percent(f.reopen_rate), f.rated,
    f.satisfaction_average === null ? "—" : f.satisfaction_average.toFixed(2), percent(f.satisfied_share),
    f.referred,
  ].map((value) => el("td", "num", String(value)));
}

function row(kind, name, figures) {
  const tr = el("tr", "report-" + (kind === "合计" ? "total" : "group"));
  tr.append(el("td", "", kind), el("td", "", name), ...figureCells(figures));
  return tr;
}

/** Table rows of a ComplaintReport: the total, then each department, category and month. */
export function complaintReportRows(report) {
  if (report.total.complaints === 0 && report.total.praise === 0) return [];
  const rows = [row("合计", report.date_from + " 至 " + report.date_to, report.total)];
  for (const [key, title] of GROUPS) rows.push(...report[key].map((group) => row(title, group.label, group)));
  return rows;
}

function query() {
  const { from, to } = $("complaints-report-form").elements;
  if (!to.value) to.value = hospitalDate();
  if (!from.value) from.value = hospitalDate(Date.now(), 1 - DEFAULT_DAYS);
  return new URLSearchParams({ from: from.value, to: to.value });
}

/** The download link always names what the form shows. */
function linkCsv() {
  const params = query();
  $("complaints-report-csv").href = API + "/reports/complaints.csv?" + params.toString();
  return params;
}

export async function loadComplaintsReport(event) {
  if (event) event.preventDefault();
  const params = linkCsv();
  let report;
  try {
    report = await api("GET", "/reports/complaints?" + params.toString());
  } catch (error) {
    toast("投诉报表加载失败：" + errorText(error), "error");
    return;
  }
  fillTable("complaints-report-table", complaintReportRows(report), "所选日期内没有受理的投诉或表扬", COLUMNS);
}

export function wireComplaintsReport() {
  $("complaints-report-form").addEventListener("submit", loadComplaintsReport);
  $("complaints-report-form").addEventListener("change", linkCsv);
}
