/* 随访工作台 · 入组: the enrolments of the caller's teams (GET /followups/enrolments?status=), enrolling
 * one patient (patient search GET /patients?query=, plans GET /followup-plans, POST
 * /followups/enrolments), pause / resume / stop with a reason (POST /followups/enrolments/{id}/...),
 * and a CSV file of enrolments (POST /followups/enrolments/csv: all enrolled, or none and a list of
 * bad rows, shown here in Chinese). The server checks everything and audits every read. */

import { api, errorText } from "./api.js";
import { $, el, toast } from "./dom.js";
import { isSupervisor, state } from "./state.js";

export const ENROLMENT_STATUS = { active: "进行中", paused: "已暂停", stopped: "已停止", completed: "已完成" };
export const STOP_REASONS = [
  ["readmitted", "再次入院"], ["deceased", "死亡"], ["opted_out", "患者拒绝"], ["other", "其他"],
];
const STOP_TEXT = Object.fromEntries(STOP_REASONS);

const view = { status: "", plans: [], patient: null, stopping: null };

function teams() {
  const all = isSupervisor() && state.directory.teams.length ? state.directory.teams : state.me.teams;
  return all || [];
}

function teamName(id) {
  const team = [...(state.me.teams || []), ...state.directory.teams].find((t) => t.id === id);
  return team ? team.name : "团队 " + id;
}

function planName(code) {
  const plan = view.plans.find((p) => p.code === code);
  return plan ? plan.name : code;
}

function option(value, text) {
  const node = el("option", "", text);
  node.value = value;
  return node;
}

function cell(text) {
  return el("td", "", text === null || text === undefined ? "" : String(text));
}

function actionButton(text, action, enrolment) {
  const button = el("button", "btn small", text);
  button.type = "button";
  button.dataset.action = action;
  button.addEventListener("click", () => act(action, enrolment));
  return button;
}

function enrolmentRow(enrolment) {
  const tr = el("tr", "enrolment-row");
  tr.dataset.enrolmentId = enrolment.id;
  const dates = enrolment.anchor_date === enrolment.discharged_on
    ? enrolment.anchor_date : enrolment.anchor_date + " / 出院 " + enrolment.discharged_on;
  const actions = el("td", "enrolment-actions");
  if (enrolment.status === "active") actions.append(actionButton("暂停", "pause", enrolment));
  if (enrolment.status === "paused") actions.append(actionButton("恢复", "resume", enrolment));
  if (enrolment.status === "active" || enrolment.status === "paused") {
    actions.append(" ", actionButton("停止", "stop", enrolment));
  }
  const status = el("td", "enrolment-status", ENROLMENT_STATUS[enrolment.status] || enrolment.status);
  if (enrolment.lost_to_followup) status.append(el("span", "pill fu-lost", "失访"));
  tr.append(
    cell(enrolment.patient_name || "患者 " + enrolment.patient_id),
    cell(planName(enrolment.plan_code) + " v" + enrolment.plan_version),
    cell(dates),
    cell(teamName(enrolment.team_id)),
    cell(enrolment.attending_doctor || "—"),
    status,
    el("td", "enrolment-stop-reason", enrolment.stop_reason ? STOP_TEXT[enrolment.stop_reason] || enrolment.stop_reason : ""),
    actions,
  );
  return tr;
}

export async function loadEnrolments() {
  const body = $("enrolment-table").tBodies[0];
  let items;
  try {
    if (!view.plans.length) view.plans = await api("GET", "/followup-plans");
    const query = view.status ? "?status=" + encodeURIComponent(view.status) : "";
    items = await api("GET", "/followups/enrolments" + query);
  } catch (error) {
    toast("入组列表加载失败：" + errorText(error), "error");
    items = [];
  }
  fillPlans();
  if (!items.length) {
    const td = el("td", "p-empty", "没有入组记录");
    td.colSpan = 8;
    const tr = el("tr");
    tr.append(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(...items.map(enrolmentRow));
}

async function act(action, enrolment) {
  if (action === "stop") {
    view.stopping = enrolment;
    const form = $("enrolment-stop-form");
    form.hidden = false;
    form.reset();
    $("enrolment-stop-who").textContent = (enrolment.patient_name || "患者 " + enrolment.patient_id)
      + " · " + planName(enrolment.plan_code);
    $("enrolment-stop-msg").textContent = "";
    $("enrolment-stop-reason").focus();
    return;
  }
  try {
    await api("POST", "/followups/enrolments/" + encodeURIComponent(enrolment.id) + "/" + action);
    toast(action === "pause" ? "已暂停随访" : "已恢复随访", "ok");
  } catch (error) {
    toast(errorText(error), "error");
  }
  loadEnrolments();
}

async function submitStop(event) {
  event.preventDefault();
  const enrolment = view.stopping;
  const msg = $("enrolment-stop-msg");
  const reason = $("enrolment-stop-reason").value;
  if (enrolment === null) return;
  if (!reason) {
    msg.className = "form-msg error";
    msg.textContent = "请选择停止原因";
    return;
  }
  try {
    await api("POST", "/followups/enrolments/" + encodeURIComponent(enrolment.id) + "/stop", {
      reason, note: $("enrolment-stop-note").value.trim(),
    });
  } catch (error) {
    msg.className = "form-msg error";
    msg.textContent = "未停止：" + errorText(error);
    return;
  }
  view.stopping = null;
  $("enrolment-stop-form").hidden = true;
  toast("已停止随访", "ok");
  loadEnrolments();
}

function fillPlans() {
  const select = $("enrol-plan");
  const chosen = select.value;
  select.replaceChildren(option("", "请选择随访计划"),
    ...view.plans.filter((p) => p.active).map((p) => option(p.code, p.name)));
  select.value = chosen;
}

function fillTeams() {
  const select = $("enrol-team");
  const mine = teams();
  select.replaceChildren(...(mine.length === 1 ? [] : [option("", "请选择团队")]),
    ...mine.map((t) => option(String(t.id), t.name)));
}

async function findPatient(event) {
  event.preventDefault();
  const query = $("enrol-patient-query").value.trim();
  const list = $("enrol-patient-results");
  if (!query) return;
  let patients;
  try {
    patients = await api("GET", "/patients?query=" + encodeURIComponent(query));
  } catch (error) {
    list.replaceChildren(el("li", "p-empty", "搜索失败：" + errorText(error)));
    return;
  }
  if (!patients.length) {
    list.replaceChildren(el("li", "p-empty", "未找到匹配的患者"));
    return;
  }
  list.replaceChildren(...patients.map((patient) => {
    const li = el("li", "link", patient.label + (patient.phone ? " · " + patient.phone : ""));
    li.dataset.patientId = patient.id;
    li.tabIndex = 0;
    const pick = () => {
      view.patient = patient;
      $("enrol-patient-chosen").textContent = "已选择：" + patient.label;
      list.replaceChildren();
    };
    li.addEventListener("click", pick);
    li.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(); });
    return li;
  }));
}

async function submitEnrol(event) {
  event.preventDefault();
  const msg = $("enrol-msg");
  msg.className = "form-msg error";
  const plan = $("enrol-plan").value;
  const anchor = $("enrol-anchor").value;
  const team = $("enrol-team").value;
  const missing = [];
  if (view.patient === null) missing.push("患者");
  if (!plan) missing.push("随访计划");
  if (!anchor) missing.push("手术/出院日期");
  if (!team) missing.push("团队");
  if (missing.length) {
    msg.textContent = "请填写：" + missing.join("、");
    return;
  }
  try {
    await api("POST", "/followups/enrolments", {
      patient_id: view.patient.id, plan_code: plan, anchor_date: anchor, team_id: Number(team),
      attending_doctor: $("enrol-doctor").value.trim(),
    });
  } catch (error) {
    const said = error.status === 409 ? "该患者已在此计划中（同一日期），如需重新入组请先停止原来的"
      : (error.status === 403 || error.status === 422) && typeof error.detail === "string" ? problemText(error.detail)
      : errorText(error);
    msg.textContent = "未入组：" + said;
    return;
  }
  msg.className = "form-msg ok";
  msg.textContent = "已入组：" + view.patient.label;
  view.patient = null;
  $("enrol-form").reset();
  $("enrol-patient-chosen").textContent = "";
  loadEnrolments();
}

/** A CSV problem from the server (English, for logs and the HIS) as a nurse reads it. */
const PROBLEMS = [
  [/^patient_id '?(.*?)'?: no such patient$/, (m) => "患者编号 " + m[1] + " 不存在"],
  [/^plan_code '?(.*?)'?: the plan is inactive$/, (m) => "随访计划 " + m[1] + " 已停用"],
  [/^plan_code '?(.*?)'?: no such plan$/, (m) => "随访计划 " + m[1] + " 不存在"],
  [/^anchor_date '?(.*?)'?: not a date/, (m) => "手术/出院日期 " + m[1] + " 不是日期（应为 YYYY-MM-DD）"],
  [/^discharged_on '?(.*?)'?: not a date/, (m) => "出院日期 " + m[1] + " 不是日期（应为 YYYY-MM-DD）"],
  [/^team_id '?(.*?)'?: no such team$/, (m) => "团队编号 " + m[1] + " 不存在"],
  [/^team_id (.*): you may enrol only into your own teams$/, (m) => "团队 " + m[1] + " 不是您所在的团队，不能入组"],
  [/^attending_doctor: at most (\d+) characters$/, (m) => "主管医生最多 " + m[1] + " 个字"],
  [/^the same patient, plan and anchor_date as line (\d+)$/, (m) => "与第 " + m[1] + " 行的患者、计划和日期重复"],
  [/^patient (\d+) is already enrolled in (\S+) from (\S+) \(enrolment (\d+)\)$/,
    (m) => "患者 " + m[1] + " 已于 " + m[3] + " 入组 " + m[2] + "（入组 " + m[4] + "）"],
  [/^(?:anchor_date|discharged_on) (\S+): outside (\S+) to (\S+)$/,
    (m) => "日期 " + m[1] + " 超出可随访的范围（" + m[2] + " 至 " + m[3] + "）"],
  [/^not readable as CSV/, () => "这一行无法按 CSV 读取（字段过长、含有空字符或引号不配对）"],
  [/^lines? ([\d, ]+): you may enrol only patients you may open; nothing was enrolled$/,
    (m) => "第 " + m[1].split(", ").join("、") + " 行的患者不在您可查看的范围内（或不存在），不能入组；没有入组任何患者"],
  [/^you may enrol only patients you may open$/, () => "该患者不在您可查看的范围内，不能入组"],
  [/^the file is not UTF-8 text$/, () => "文件不是 UTF-8 编码的文本"],
  [/^missing columns: (.*)$/, (m) => "缺少列：" + m[1]],
  [/^unknown columns: (.*)$/, (m) => "无法识别的列：" + m[1]],
  [/^the file has no rows$/, () => "文件没有数据行"],
  [/^at most (\d+) rows per file$/, (m) => "每个文件最多 " + m[1] + " 行"],
];

export function problemText(problem) {
  for (const [pattern, say] of PROBLEMS) {
    const match = pattern.exec(problem);
    if (match) return say(match);
  }
  return problem;
}

async function uploadCsv(event) {
  event.preventDefault();
  const box = $("enrol-csv-result");
  const file = $("enrol-csv-file").files[0];
  if (!file) {
    box.replaceChildren(el("p", "form-msg error", "请选择 CSV 文件"));
    return;
  }
  let response;
  try {
    response = await fetch("/api/console/followups/enrolments/csv", {
      method: "POST",
      headers: { "Content-Type": "text/csv", "X-CSRF-Token": state.me.csrf_token, Accept: "application/json" },
      body: await file.arrayBuffer(),
      credentials: "same-origin",
    });
  } catch (_) {
    box.replaceChildren(el("p", "form-msg error", "网络连接失败"));
    return;
  }
  const data = await response.json().catch(() => null);
  if (response.ok && data) {
    box.replaceChildren(el("p", "form-msg ok", "已全部入组：" + data.enrolled.length + " 人"));
    $("enrol-csv-form").reset();
    loadEnrolments();
    return;
  }
  if (response.status === 422 && data && Array.isArray(data.rows)) {
    const list = el("ul", "p-list enrol-csv-problems");
    for (const problem of data.file || []) list.append(el("li", "", "文件：" + problemText(problem)));
    for (const row of data.rows) {
      const li = el("li", "", "第 " + row.line + " 行：" + row.problems.map(problemText).join("；"));
      li.dataset.line = row.line;
      list.append(li);
    }
    box.replaceChildren(el("p", "form-msg error", "没有入组任何患者：请修改下列问题后重新上传整个文件"), list);
    return;
  }
  const detail = data && typeof data.detail === "string" ? "：" + problemText(data.detail) : "";
  box.replaceChildren(el("p", "form-msg error", "上传失败（" + response.status + "）" + detail));
}

export function wireEnrolments() {
  const filter = $("enrolment-status");
  filter.replaceChildren(option("", "全部状态"),
    ...Object.entries(ENROLMENT_STATUS).map(([value, text]) => option(value, text)));
  filter.addEventListener("change", () => { view.status = filter.value; loadEnrolments(); });
  $("enrol-open").addEventListener("click", () => {
    const form = $("enrol-form");
    form.hidden = !form.hidden;
    if (!form.hidden) { fillTeams(); fillPlans(); $("enrol-patient-query").focus(); }
  });
  $("enrol-csv-open").addEventListener("click", () => { $("enrol-csv-form").hidden = !$("enrol-csv-form").hidden; });
  $("enrol-patient-find").addEventListener("click", findPatient);
  $("enrol-patient-query").addEventListener("keydown", (e) => { if (e.key === "Enter") findPatient(e); });
  $("enrol-form").addEventListener("submit", submitEnrol);
  $("enrol-csv-form").addEventListener("submit", uploadCsv);
  const reason = $("enrolment-stop-reason");
  reason.replaceChildren(option("", "请选择原因"), ...STOP_REASONS.map(([value, text]) => option(value, text)));
  $("enrolment-stop-form").addEventListener("submit", submitStop);
  $("enrolment-stop-cancel").addEventListener("click", () => { $("enrolment-stop-form").hidden = true; view.stopping = null; });
}
