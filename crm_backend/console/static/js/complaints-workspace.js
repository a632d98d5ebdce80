/* 投诉工作台: the caller's complaint and praise cases (GET /complaints?status=&kind=&department_id=&flagged=),
 * as the server scopes them: every case for the complaints office, supervisors and admins, a
 * department's cases for its liaison, the cases someone registered for them. The list holds no word of
 * what the patient said (the server masks it); a case opens in js/complaints-case.js, whose every view
 * the server audits. Liaisons per department: js/complaints-liaisons.js. */

import { api } from "./api.js";
import { openCase, resetCase } from "./complaints-case.js";
import {
  CASE_CHANGED, caseErrorText, deadlineText, flagBadge, isOffice, offices, resetOffices, statusTag,
} from "./complaints-common.js";
import { resetLiaisons, toggleLiaisons } from "./complaints-liaisons.js";
import { $, el, fillTable, toast } from "./dom.js";
import { formatTime } from "./format.js";
import { CASE_CATEGORY, CASE_KIND, CASE_STATUS } from "./labels.js";

const COLUMNS = 8;
const view = { items: [], loads: 0 };

function cell(content, className) {
  const td = el("td", className || "");
  if (content instanceof Node) td.append(content);
  else td.textContent = content === null || content === undefined || content === "" ? "—" : String(content);
  return td;
}

function whoRegistered(item) {
  return item.registered_by === "bot" ? "机器人（微信）" : item.registered_by;
}

function caseRow(item) {
  const tr = el("tr", "complaint-row");
  tr.dataset.case = item.case_number;
  tr.tabIndex = 0;
  const kind = el("span", "", CASE_KIND[item.kind] || item.kind);
  const kindCell = cell(kind);
  if (item.safety_risk) kindCell.append(el("span", "badge urgent complaint-safety", "安全风险"));
  const handler = [item.department ? item.department.name : "未分派", item.liaison ? item.liaison.display_name : ""]
    .filter(Boolean).join(" · ");
  const deadline = el("td", "complaint-deadline");
  deadline.append(el("span", "", deadlineText(item)));
  const badge = flagBadge(item.flag);
  if (badge) deadline.append(" ", badge);
  tr.append(
    cell(item.case_number, "mono"),
    kindCell,
    cell(item.patient_label, "complaint-patient"),
    cell(item.category ? CASE_CATEGORY[item.category] || item.category : ""),
    cell(handler),
    cell(statusTag(item.status)),
    deadline,
    cell(formatTime(item.registered_at) + " · " + whoRegistered(item)),
  );
  tr.addEventListener("click", () => openCase(item.case_number));
  tr.addEventListener("keydown", (event) => { if (event.key === "Enter") openCase(item.case_number); });
  return tr;
}

/** The query the filters ask for; the nearing/overdue choice narrows the flagged list here. */
function query() {
  const form = $("complaints-filters").elements;
  const params = new URLSearchParams();
  for (const name of ["status", "kind", "department_id"]) if (form[name].value) params.set(name, form[name].value);
  if (form.flag.value) params.set("flagged", "true");
  return { params, flag: ["nearing", "overdue"].includes(form.flag.value) ? form.flag.value : null };
}

export async function loadComplaints() {
  const { params, flag } = query();
  const load = ++view.loads;
  let items;
  try {
    items = await api("GET", "/complaints" + (params.size ? "?" + params.toString() : ""));
  } catch (error) {
    toast("投诉列表加载失败：" + caseErrorText(error), "error");
    return;
  }
  if (load !== view.loads) return; // a newer filter's answer is on its way
  view.items = flag ? items.filter((item) => item.flag === flag) : items;
  fillTable("complaints-table", view.items.map(caseRow), "没有符合条件的投诉或表扬", COLUMNS);
  $("complaints-count").textContent = "共 " + view.items.length + " 件";
}

function fillFilters() {
  const status = $("complaints-filters").elements.status;
  status.replaceChildren(new Option("全部状态", ""));
  for (const [code, text] of Object.entries(CASE_STATUS)) status.append(new Option(text, code));
}

/** The department filter: every department for the office (from the liaison list), none for others. */
async function fillDepartments() {
  const label = $("complaints-department-filter");
  label.hidden = !isOffice();
  if (!isOffice()) return;
  const select = $("complaints-filters").elements.department_id;
  const chosen = select.value;
  select.replaceChildren(new Option("全部科室", ""));
  for (const { department } of await offices()) select.append(new Option(department.name, String(department.id)));
  select.value = chosen;
}

/** Opening the page: the list, the filters the caller may use, the office's liaison button. */
export async function showComplaints() {
  $("complaints-liaisons-open").hidden = !isOffice();
  $("complaints-register-open").hidden = !isOffice();
  await Promise.all([loadComplaints(), fillDepartments().catch(() => {})]);
}

export function resetComplaints() {
  view.items = [];
  $("complaints-table").tBodies[0].replaceChildren();
  $("complaints-filters").reset();
  resetCase();
  resetLiaisons();
  resetOffices();
}

export function wireComplaints() {
  fillFilters();
  $("complaints-filters").addEventListener("change", loadComplaints);
  $("complaints-filters").addEventListener("submit", (event) => { event.preventDefault(); loadComplaints(); });
  $("complaints-refresh").addEventListener("click", loadComplaints);
  $("complaints-liaisons-open").addEventListener("click", toggleLiaisons);
  // A case changed (js/complaints-case.js), or a refusal showed it had changed: the list follows.
  $("complaints-view").addEventListener(CASE_CHANGED, loadComplaints);
}
