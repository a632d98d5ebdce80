/* The follow-up report page (nurses and clinicians: their teams; supervisors and admins: all):
 * 出院患者随访比例, response by channel, red flag to first contact, flag rates, lost to follow-up, per
 * team and plan over hospital days, and the same figures as a CSV file for Excel
 * (GET /reports/followup, /reports/followup.csv; docs/CONSOLE_API.md). */

import { API, api, errorText } from "./api.js";
import { $, el, fillTable, toast } from "./dom.js";
import { hospitalDate } from "./format.js";
import { STOP_REASON } from "./followup-record.js";
import { formatSpan } from "./report.js";
import { isSupervisor, state } from "./state.js";

const DEFAULT_DAYS = 30;
const COLUMNS = 18;
/** Roles that read the report (the server answers 403 to the rest). */
export const READERS = ["nurse", "clinician", "supervisor", "admin"];

export function mayReadFollowupReport() {
  return state.me !== null && READERS.includes(state.me.role);
}

/** A 0–1 share as "57.1%", a dash without a figure. */
export function percent(share) {
  return share === null || share === undefined ? "—" : (share * 100).toFixed(1) + "%";
}

function channelRate(figures, channel) {
  const row = figures.response.channels.find((c) => c.channel === channel);
  return row ? percent(row.rate) : "—";
}

function stops(lost) {
  if (!lost.stopped) return "0";
  const reasons = lost.stopped_by_reason.filter((r) => r.count > 0)
    .map((r) => (STOP_REASON[r.reason] || r.reason) + " " + r.count);
  return lost.stopped + "（" + reasons.join("、") + "）";
}

function figureCells(f) {
  const flags = f.flags;
  return [
    f.coverage.discharged, f.coverage.followed_up, percent(f.coverage.rate),
    f.response.due, percent(f.response.rate),
    channelRate(f, "chat"), channelRate(f, "page"), channelRate(f, "phone"),
    f.flag_contact.flagged, formatSpan(f.flag_contact.median_seconds), formatSpan(f.flag_contact.p90_seconds),
    f.flag_contact.without_contact,
    [flags.green_share, flags.amber_share, flags.red_share, flags.emergency_share].map(percent).join(" / "),
    f.lost_to_followup.lost, percent(f.lost_to_followup.rate), stops(f.lost_to_followup),
  ].map((value, i) => el("td", i === 12 || i === 15 ? "" : "num", value));
}

function reportRow(kind, name, figures) {
  const tr = el("tr", "report-" + kind);
  tr.append(el("td", "", { total: "合计", team: "团队", plan: "随访计划" }[kind]), el("td", "", name), ...figureCells(figures));
  return tr;
}

/** Table rows of a FollowupReport: the total, then each team, then each plan. */
export function followupReportRows(report) {
  if (report.total.coverage.discharged === 0 && report.total.response.due === 0) return [];
  return [
    reportRow("total", "", report.total),
    ...report.teams.map((row) => reportRow("team", row.team.name, row)),
    ...report.plans.map((row) => reportRow("plan", row.plan.name, row)),
  ];
}

/** The headline: 出院患者随访比例 with its counts. */
export function coverageText(coverage) {
  if (coverage.rate === null) return "出院患者随访比例：所选日期内无登记出院患者";
  return "出院患者随访比例：" + percent(coverage.rate) + "（" + coverage.followed_up + " / " + coverage.discharged + "）";
}

function fillTeams() {
  const select = $("fr-team");
  const teams = isSupervisor() ? state.directory.teams : state.me.teams;
  const chosen = select.value;
  const options = [el("option", "", isSupervisor() ? "全部团队" : "我的全部团队")];
  options[0].value = "";
  for (const team of teams) {
    const option = el("option", "", team.name);
    option.value = team.id;
    options.push(option);
  }
  select.replaceChildren(...options);
  select.value = teams.some((t) => String(t.id) === chosen) ? chosen : "";
}

/** The plans the unfiltered report names become the plan filter's choices. */
function fillPlans(report) {
  if (report.plan_id !== null) return;
  const select = $("fr-plan");
  const chosen = select.value;
  const all = el("option", "", "全部随访计划");
  all.value = "";
  select.replaceChildren(all, ...report.plans.map((row) => {
    const option = el("option", "", row.plan.name);
    option.value = row.plan.id;
    return option;
  }));
  select.value = chosen;
}

/** The chosen days (the last thirty by default), team and plan, as query parameters. */
function query() {
  const { from, to, team, plan } = $("followup-report-form").elements;
  if (!to.value) to.value = hospitalDate();
  if (!from.value) from.value = hospitalDate(Date.now(), 1 - DEFAULT_DAYS);
  const params = new URLSearchParams({ from: from.value, to: to.value });
  if (team.value) params.set("team_id", team.value);
  if (plan.value) params.set("plan_id", plan.value);
  return params;
}

/** The download link always names what the form shows. */
function linkCsv() {
  const params = query();
  $("followup-report-csv").href = API + "/reports/followup.csv?" + params.toString();
  return params;
}

export async function loadFollowupReport(event) {
  if (event) event.preventDefault();
  fillTeams();
  const params = linkCsv();
  let report;
  try {
    report = await api("GET", "/reports/followup?" + params.toString());
  } catch (error) {
    toast("随访报表加载失败：" + errorText(error), "error");
    return;
  }
  fillPlans(report);
  $("followup-coverage").textContent = coverageText(report.total.coverage);
  fillTable("followup-report-table", followupReportRows(report), "所选日期内没有出院随访或到期随访", COLUMNS);
}

export function wireFollowupReport() {
  $("followup-report-form").addEventListener("submit", loadFollowupReport);
  $("followup-report-form").addEventListener("change", linkCsv);
}

/** After log-in or out: the team choices belong to whoever is logged in. */
export function resetFollowupReport() {
  $("fr-team").replaceChildren();
  $("fr-plan").replaceChildren();
  $("followup-coverage").textContent = "";
}
