/* 随访工作台: the follow-up work lists (GET /followups/worklists/{kind}), one check-in's questions,
 * answers, sends and calls (GET /followups/checkins/{id}), and the phone call form
 * (POST /followups/checkins/{id}/calls), and its answers as FHIR (GET /followups/checkins/{id}/fhir). Enrolments
 * are js/followup-enrolments.js. The call form is drawn from the question list the server
 * sends and posts the values typed; the server checks them and decides the outcome. No clinical rule
 * lives here. Nurses, clinicians, supervisors and admins; every read is audited by the server. */

import { api, ApiError, errorText } from "./api.js";
import { $, el, toast } from "./dom.js";
import { loadEnrolments, wireEnrolments } from "./followup-enrolments.js";
import { formatTime, same } from "./format.js";
import { state } from "./state.js";

const FOLLOWERS = ["nurse", "clinician", "supervisor", "admin"];
export const LISTS = [
  ["phone", "电话随访"],
  ["flagged", "预警待联系"],
  ["due_today", "今日到期"],
  ["overdue", "逾期未答"],
  ["missed", "已错过"],
];
const FLAG = { green: "正常", amber: "黄色预警", red: "红色预警", emergency: "急症" };
const FLAG_CLASS = { green: "normal", amber: "high", red: "urgent", emergency: "urgent" };
const STATUS = {
  scheduled: "未到时间", claimed: "发送中", started: "已发送待回复", answered: "已回复",
  missed: "已错过", skipped: "未发送",
};
const CHANNEL = { chat: "聊天", page: "问卷页面", phone: "电话" };
const SEND_KIND = { start_chat: "聊天发起", template: "模板消息", reminder: "提醒" };
const SEND_STATUS = { queued: "排队中", sent: "已发送", failed: "失败" };

const view = { list: "phone", items: [], checkinId: null, detail: null };

export function mayFollowUp() {
  return state.me !== null && FOLLOWERS.includes(state.me.role);
}

function flagBadge(flag) {
  if (!flag) return el("span", "p-empty", "—");
  const badge = el("span", "badge " + (FLAG_CLASS[flag] || "normal"), FLAG[flag] || flag);
  badge.dataset.flag = flag;
  return badge;
}

function cell(content) {
  const td = el("td");
  if (content instanceof Node) td.append(content);
  else td.textContent = content === null || content === undefined ? "" : String(content);
  return td;
}

function itemRow(item) {
  const tr = el("tr", "followup-row");
  tr.dataset.checkinId = item.id;
  tr.tabIndex = 0;
  const calls = item.calls ? item.calls + " 次" + (item.last_call_reached === false ? "（未接通）" : "") : "";
  tr.append(
    cell(item.patient_name),
    cell(item.phone || ""),
    cell(item.plan_name + " · 第 " + item.day + " 天"),
    cell(item.team_name),
    cell(STATUS[item.status] || item.status),
    cell(flagBadge(item.worst_flag)),
    cell(item.reply_by ? formatTime(item.reply_by) : formatTime(item.due_at)),
    cell(calls),
  );
  tr.addEventListener("click", () => openCheckin(item.id));
  tr.addEventListener("keydown", (event) => { if (event.key === "Enter") openCheckin(item.id); });
  return tr;
}

function renderList() {
  const body = $("followup-table").tBodies[0];
  for (const tab of document.querySelectorAll("#followup-tabs .queue-tab")) {
    tab.classList.toggle("active", tab.dataset.list === view.list);
  }
  $("followup-when").textContent = view.list === "flagged" || view.list === "phone" ? "应联系时间 / 到期" : "到期时间";
  if (!view.items.length) {
    const td = el("td", "p-empty", "没有需要处理的随访");
    td.colSpan = 8;
    const tr = el("tr");
    tr.append(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(...view.items.map(itemRow));
}

export async function loadFollowups() {
  if (!mayFollowUp()) return;
  try {
    view.items = await api("GET", "/followups/worklists/" + view.list);
  } catch (error) {
    toast("随访列表加载失败：" + errorText(error), "error");
    view.items = [];
  }
  renderList();
  loadEnrolments();
}

function fact(label, value) {
  const row = el("div", "followup-fact");
  row.append(el("span", "hint", label + "："));
  if (value instanceof Node) row.append(value);
  else row.append(el("span", "", value === null || value === undefined || value === "" ? "—" : String(value)));
  return row;
}

async function revealPhone(patientId, slot) {
  try {
    // The patient record's audited reveal: the enrolment's team may open the patient.
    const { value } = await api("POST", "/patients/" + encodeURIComponent(patientId) + "/reveal", { field: "phone" });
    slot.textContent = value || "未登记";
  } catch (error) {
    toast(errorText(error), "error");
  }
}

function answersTable(detail) {
  const table = el("table", "table");
  const head = el("tr");
  for (const title of ["问题", "回答", "预警", "渠道", "时间"]) head.append(el("th", "", title));
  table.append(el("thead"), el("tbody"));
  table.tHead.append(head);
  for (const question of detail.questions) {
    const tr = el("tr");
    tr.dataset.question = question.code;
    const text = el("div", "", question.text);
    const cellQ = el("td");
    cellQ.append(text);
    if (question.condition) cellQ.append(el("div", "hint", question.condition));
    const answer = question.answer;
    tr.append(
      cellQ,
      cell(answer ? answer.shown + (answer.counts ? "" : "（已不计入）") : "未答"),
      cell(answer ? flagBadge(answer.flag) : ""),
      cell(answer ? CHANNEL[answer.channel] || answer.channel : ""),
      cell(answer ? formatTime(answer.answered_at) : ""),
    );
    table.tBodies[0].append(tr);
  }
  return table;
}

function historyList(detail) {
  const list = el("ul", "p-list followup-history");
  for (const send of detail.sends) {
    list.append(el("li", "", formatTime(send.created_at) + " " + (SEND_KIND[send.kind] || send.kind) + " · "
      + (SEND_STATUS[send.status] || send.status) + (send.error ? "（" + send.error + "）" : "")));
  }
  for (const call of detail.calls) {
    list.append(el("li", "followup-call", formatTime(call.created_at) + " " + call.staff_name + " 电话"
      + (call.reached ? "已接通" : "未接通") + (call.note ? "：" + call.note : "")));
  }
  if (!list.children.length) list.append(el("li", "p-empty", "暂无发送或通话记录"));
  return list;
}

/** One question of the call form, drawn from the server's question; returns [element, read()]
 * where read() gives the value to send, or undefined when the nurse left it empty. */
function questionField(question) {
  const wrap = el("label", "followup-question");
  wrap.dataset.question = question.code;
  const title = el("span", "", question.text + (question.unit ? "（" + question.unit + "）" : ""));
  wrap.append(title);
  if (question.condition) wrap.append(el("span", "hint", question.condition));
  let read;
  if (question.type === "multiple_choice") {
    const asked = el("input");
    asked.type = "checkbox";
    asked.name = question.code + "__asked";
    const boxes = question.choices.map((choice) => {
      const box = el("input");
      box.type = "checkbox";
      box.value = choice.code;
      box.addEventListener("change", () => { if (box.checked) asked.checked = true; });
      const line = el("span", "followup-choice");
      line.append(box, el("span", "", choice.text));
      return [line, box];
    });
    const askedLine = el("span", "followup-choice");
    askedLine.append(asked, el("span", "", "已问（都没有也勾选）"));
    wrap.append(...boxes.map(([line]) => line), askedLine);
    read = () => (asked.checked ? boxes.filter(([, box]) => box.checked).map(([, box]) => box.value) : undefined);
  } else if (["scale", "yes_no", "single_choice"].includes(question.type)) {
    const select = el("select");
    select.name = question.code;
    const options = [["", "（未问）"]];
    if (question.type === "scale") for (let n = 0; n <= 10; n += 1) options.push([String(n), n + " 分"]);
    if (question.type === "yes_no") options.push(["true", "是"], ["false", "否"]);
    if (question.type === "single_choice") for (const c of question.choices) options.push([c.code, c.text]);
    for (const [value, text] of options) {
      const option = el("option", "", text);
      option.value = value;
      select.append(option);
    }
    wrap.append(select);
    read = () => {
      if (select.value === "") return undefined;
      if (question.type === "scale") return Number(select.value);
      if (question.type === "yes_no") return select.value === "true";
      return select.value;
    };
  } else if (question.type === "number") {
    const input = el("input");
    input.name = question.code;
    input.inputMode = "decimal";
    input.placeholder = question.hint;
    wrap.append(input);
    read = () => {
      const text = input.value.trim();
      if (text === "") return undefined;
      return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text; // the server says what it needs
    };
  } else {
    const area = el("textarea");
    area.name = question.code;
    area.rows = 2;
    area.maxLength = 1000;
    wrap.append(area);
    read = () => (area.value.trim() === "" ? undefined : area.value);
  }
  wrap.append(el("span", "form-msg error followup-question-error"));
  return [wrap, read];
}

function callForm(detail) {
  const form = el("form", "card form followup-call-form");
  form.id = "followup-call-form";
  form.append(el("h3", "", "记录电话随访"));
  const reached = el("fieldset");
  reached.append(el("legend", "", "是否接通"));
  for (const [value, text] of [["true", "已接通"], ["false", "未接通"]]) {
    const radio = el("input");
    radio.type = "radio";
    radio.name = "reached";
    radio.value = value;
    const line = el("label", "followup-choice");
    line.append(radio, el("span", "", text));
    reached.append(line);
  }
  const note = el("label", "", "通话记录");
  const noteArea = el("textarea");
  noteArea.name = "note";
  noteArea.rows = 2;
  noteArea.maxLength = 1000;
  note.append(noteArea);
  form.append(reached, note);
  const fields = [];
  if (detail.answerable_by_phone) {
    form.append(el("p", "hint", "接通后可按问卷逐题询问并填写；未问的题留空。"));
    for (const question of detail.questions) {
      const [wrap, read] = questionField(question);
      fields.push([question.code, read, wrap]);
      form.append(wrap);
    }
  }
  const msg = el("p", "form-msg");
  msg.id = "followup-call-msg";
  msg.setAttribute("role", "status");
  const submit = el("button", "btn primary", "保存通话记录");
  submit.type = "submit";
  form.append(msg, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const choice = form.querySelector("input[name=reached]:checked");
    if (choice === null) {
      msg.textContent = "请选择是否接通";
      msg.className = "form-msg error";
      return;
    }
    const answers = {};
    for (const [code, read] of fields) {
      const value = read();
      if (value !== undefined) answers[code] = value;
    }
    for (const [, , wrap] of fields) wrap.querySelector(".followup-question-error").textContent = "";
    submit.disabled = true;
    try {
      const result = await api("POST", "/followups/checkins/" + encodeURIComponent(detail.checkin.id) + "/calls", {
        reached: choice.value === "true", note: noteArea.value.trim(), answers,
      });
      toast("已保存通话记录", "ok");
      renderDetail(result.detail, result.flag ? result : null);
      loadFollowups();
    } catch (error) {
      msg.className = "form-msg error";
      msg.textContent = callRefusal(error, fields);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** A refused call as the nurse reads it; each refused answer is also shown under its question. */
function callRefusal(error, fields) {
  if (!(error instanceof ApiError)) return errorText(error);
  if (error.status === 422 && error.errors.length) {
    for (const problem of error.errors) {
      const code = problem.loc[problem.loc.length - 1];
      const field = fields.find(([c]) => c === code);
      if (field) field[2].querySelector(".followup-question-error").textContent = problem.msg;
    }
    return "未保存：" + error.errors.map((problem) => problem.msg).join("；");
  }
  if (error.status === 422) return "未保存：填写了回答时，请选择“已接通”";
  if (error.status === 409) return "未保存：该随访已结束，只能记录通话，不能再填写回答";
  return "未保存：" + errorText(error);
}

function renderDetail(detail, outcome) {
  view.detail = detail;
  const box = $("followup-detail");
  box.hidden = false;
  const item = detail.checkin;
  const phoneSlot = el("span", "", item.phone || "未登记");
  const phone = el("span");
  phone.append(phoneSlot);
  if (item.phone && ["nurse", "supervisor", "admin"].includes(state.me.role)) {
    const reveal = el("button", "btn small", "显示号码");
    reveal.type = "button";
    reveal.id = "followup-reveal";
    reveal.addEventListener("click", () => revealPhone(item.patient_id, phoneSlot));
    phone.append(" ", reveal);
  }
  const head = el("section", "card");
  head.append(
    el("h3", "", item.patient_name + " · " + item.plan_name + " 第 " + item.day + " 天"),
    fact("电话", phone),
    fact("团队", item.team_name),
    fact("手术", detail.procedure),
    fact("主管医生", detail.attending_doctor),
    fact("出院日期", detail.discharged_on),
    fact("状态", STATUS[item.status] || item.status),
    fact("预警", flagBadge(item.worst_flag)),
    fact("应联系时间", item.reply_by ? formatTime(item.reply_by) : ""),
    fact("首次联系", item.first_contact_at ? formatTime(item.first_contact_at) : "尚未联系"),
    fact("计划版本", detail.plan_code + " v" + detail.plan_version),
  );
  if (detail.questions.some((question) => question.answer)) {
    const fhir = el("button", "btn small", "导出 FHIR");
    fhir.type = "button";
    fhir.id = "followup-fhir";
    fhir.addEventListener("click", () => exportFhir(item.id));
    head.append(fhir);
  }
  if (outcome) {
    const advice = el("div", "followup-advice", "请告知患者：" + outcome.advice);
    advice.id = "followup-advice";
    advice.dataset.flag = outcome.flag;
    head.append(advice);
  }
  const answers = el("section", "card");
  answers.append(el("h3", "", "问卷与回答"), answersTable(detail));
  const history = el("section", "card");
  history.append(el("h3", "", "发送与通话"), historyList(detail));
  box.replaceChildren(head, answers, history, callForm(detail));
  head.scrollIntoView({ block: "start" });
}

/** The answers as a FHIR QuestionnaireResponse file (GET /followups/checkins/{id}/fhir, audited). */
async function exportFhir(checkinId) {
  let resource;
  try {
    resource = await api("GET", "/followups/checkins/" + encodeURIComponent(checkinId) + "/fhir");
  } catch (error) {
    toast("导出失败：" + errorText(error), "error");
    return;
  }
  const blob = new Blob([JSON.stringify(resource, null, 2)], { type: "application/fhir+json" });
  const link = el("a");
  link.href = URL.createObjectURL(blob);
  link.download = "checkin-" + checkinId + "-fhir.json";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

export async function openCheckin(checkinId) {
  view.checkinId = checkinId;
  let detail;
  try {
    detail = await api("GET", "/followups/checkins/" + encodeURIComponent(checkinId));
  } catch (error) {
    toast(errorText(error), "error");
    return;
  }
  if (same(view.checkinId, checkinId)) renderDetail(detail, null);
}

export function wireFollowups() {
  const tabs = $("followup-tabs");
  for (const [kind, label] of LISTS) {
    const tab = el("button", "queue-tab", label);
    tab.type = "button";
    tab.dataset.list = kind;
    tab.addEventListener("click", () => { view.list = kind; loadFollowups(); });
    tabs.append(tab);
  }
  $("followup-refresh").addEventListener("click", loadFollowups);
  wireEnrolments();
}
