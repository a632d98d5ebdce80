/* One case of the 投诉工作台: the whole record (GET /complaints/{number}, audited by the server on every
 * view), its timeline, and the actions its state allows the caller: the server's `next_states` decide
 * assigning, investigating, answering, referring and closing; writing to the patient is the office's
 * while the case is open. A refusal (403, 409, 422) changes nothing and is shown in Chinese; after a
 * 409 the case is read again so the page shows its real state. */

import { api } from "./api.js";
import {
  CASE_CHANGED, caseErrorText, deadlineText, flagBadge, isOffice, offices, statusTag,
} from "./complaints-common.js";
import { renderTimeline } from "./complaints-timeline.js";
import { $, confirmDialog, el, toast } from "./dom.js";
import { formatTime } from "./format.js";
import { CASE_CATEGORY, CASE_KIND, REFERRAL } from "./labels.js";

const view = { number: null, detail: null, loads: 0 };

const DELIVERED = {
  chat: "已通过微信客服消息发送给患者（在 48 小时会话窗口内）。",
  template: "患者不在 48 小时会话窗口内，已通过模板消息发送。",
  not_sent: "未能通过微信送达（患者没有关联微信，或已超出 48 小时会话窗口且无法使用模板消息），请电话联系患者。",
};
const ASKED = "机器人随后会询问患者是否接受处理结果及满意度（1–5 分）。";

function path(suffix) {
  return "/complaints/" + encodeURIComponent(view.number) + (suffix || "");
}

function say(text, kind) {
  const box = $("complaint-msg");
  if (!box) {
    if (text) toast(text, kind);
    return;
  }
  box.textContent = text;
  box.className = "form-msg" + (kind ? " " + kind : "");
}

function option(value, text) {
  return new Option(text, value === null ? "" : String(value));
}

function fact(list, label, value) {
  list.append(el("dt", "", label));
  const dd = el("dd", "", value === null || value === undefined || value === "" ? "—" : value);
  list.append(dd);
  return dd;
}

function reported(c) {
  const list = el("dl", "kv complaint-facts");
  fact(list, "患者", c.patient.name || c.patient_label);
  fact(list, "事情经过", c.what).classList.add("complaint-what");
  fact(list, "发生时间", [c.when_text, c.when_date].filter(Boolean).join(" · "));
  fact(list, "科室/病区", [c.where_department, c.where_ward].filter(Boolean).join(" · "));
  fact(list, "涉及人员", c.who);
  fact(list, "患者诉求", c.wish);
  return list;
}

function deadlineFact(c) {
  let text = deadlineText(c) + (c.several_departments ? "（涉及多个科室，10 个工作日）" : "（5 个工作日）");
  if (!c.official_calendar) text += "；当年法定节假日未收录，按周一至周五计算";
  return text;
}

function patientOpinion(c) {
  if (c.accepted === null && c.satisfaction === null) return "";
  const parts = [];
  if (c.accepted !== null) parts.push(c.accepted ? "接受处理结果" : "不接受处理结果");
  if (c.satisfaction !== null) parts.push("满意度 " + c.satisfaction + " 分");
  return parts.join(" · ");
}

function handling(c) {
  const list = el("dl", "kv complaint-facts");
  fact(list, "受理", formatTime(c.registered_at) + " · " + (c.registered_by === "bot" ? "机器人（微信）" : c.registered_by));
  fact(list, "答复期限", deadlineFact(c)).classList.add("complaint-due");
  fact(list, "处理科室", c.department ? c.department.name : "未分派");
  fact(list, "联络员", c.liaison ? c.liaison.display_name : "");
  fact(list, "类别", c.category ? CASE_CATEGORY[c.category] || c.category : "未分类");
  fact(list, "首次回应", c.first_response_at ? formatTime(c.first_response_at) : "尚未回应");
  if (c.answer) fact(list, "答复内容", c.answer).classList.add("complaint-answer");
  fact(list, "患者意见", patientOpinion(c));
  if (c.reopen_count) fact(list, "重新处理", c.reopen_count + " 次");
  if (c.referral) fact(list, "转出", REFERRAL[c.referral] || c.referral);
  if (c.closed_at) fact(list, "办结", formatTime(c.closed_at));
  return list;
}

function section(title, ...content) {
  const box = el("div", "complaint-section");
  box.append(el("h4", "", title), ...content);
  return box;
}

function render() {
  const c = view.detail;
  const card = $("complaint-case");
  const head = el("div", "card-head");
  const title = el("h3", "", CASE_KIND[c.kind] + " " + c.case_number);
  const refresh = el("button", "btn small", "刷新");
  refresh.type = "button";
  refresh.addEventListener("click", () => openCase(c.case_number));
  const close = el("button", "btn small ghost", "关闭");
  close.type = "button";
  close.addEventListener("click", resetCase);
  head.append(title, statusTag(c.status));
  const badge = flagBadge(c.flag);
  if (badge) head.append(badge);
  head.append(el("div", "grow"), refresh, close);
  const nodes = [head, el("p", "hint", "案件详情含患者反映的全部内容，每次查看都会记入审计日志。")];
  if (c.safety_risk) nodes.push(el("p", "complaint-alert", "涉及患者安全风险：已紧急上报，请优先处理。"));
  const grid = el("div", "complaint-grid");
  grid.append(section("患者反映", reported(c)), section("处理情况", handling(c)));
  const form = el("div", "complaint-action-form");
  form.id = "complaint-action-form";
  const msg = el("p", "form-msg");
  msg.id = "complaint-msg";
  msg.setAttribute("role", "status");
  nodes.push(grid, actionBar(c), form, msg, section("处理记录", renderTimeline(c.timeline)));
  card.replaceChildren(...nodes);
  card.hidden = false;
}

/* -- actions ----------------------------------------------------------------------------------- */

/** Sends one change; on success shows the case as it is now, on a refusal says why (and after a 409
 * reads the case again). Answers the server's reply, or null when it was refused. */
async function act(method, suffix, body, done) {
  const buttons = $("complaint-case").querySelectorAll("button");
  for (const button of buttons) button.disabled = true;
  try {
    const reply = await api(method, path(suffix), body);
    view.detail = reply.case || reply;
    render();
    say(done(reply), "ok");
    $("complaints-view").dispatchEvent(new Event(CASE_CHANGED));
    return reply;
  } catch (error) {
    for (const button of buttons) button.disabled = false;
    const text = caseErrorText(error);
    if (error.status === 409) {
      await openCase(view.number);
      $("complaints-view").dispatchEvent(new Event(CASE_CHANGED));
    }
    say(text, "error");
    return null;
  }
}

function button(text, action, className) {
  const node = el("button", "btn small " + (className || ""), text);
  node.type = "button";
  node.dataset.action = action;
  return node;
}

function textArea(name, placeholder, rows) {
  const area = el("textarea");
  area.name = name;
  area.rows = rows || 4;
  area.maxLength = 4000;
  area.placeholder = placeholder;
  return area;
}

/** An inline form in the case card: `fields` then a submit button; `submit(form)` sends it. */
function showForm(action, title, fields, submitText, submit) {
  const form = el("form", "form complaint-form");
  form.dataset.action = action;
  form.append(el("h4", "", title), ...fields);
  const send = el("button", "btn primary", submitText);
  send.type = "submit";
  const cancel = button("取消", "cancel", "ghost");
  cancel.addEventListener("click", () => form.remove());
  const actions = el("div", "complaint-form-actions");
  actions.append(send, cancel);
  form.append(actions);
  form.addEventListener("submit", (event) => { event.preventDefault(); submit(form); });
  $("complaint-action-form").replaceChildren(form);
  say("");
  const first = form.querySelector("select, textarea, input");
  if (first) first.focus();
}

function labelled(text, control) {
  const label = el("label", "", text);
  label.append(control);
  return label;
}

function fillLiaisons(select, departments, departmentId) {
  const entry = departments.find((d) => String(d.department.id) === departmentId);
  const liaisons = entry ? entry.liaisons : [];
  select.replaceChildren(option(null, liaisons.length ? "（科室联络员共同处理）" : "（该科室尚未设置联络员）"));
  for (const liaison of liaisons) select.append(option(liaison.id, liaison.display_name));
  if (view.detail.liaison) select.value = String(view.detail.liaison.id);
}

async function assignForm() {
  let departments;
  try {
    departments = await offices();
  } catch (error) {
    say("科室列表加载失败：" + caseErrorText(error), "error");
    return;
  }
  const c = view.detail;
  const department = el("select");
  department.name = "department_id";
  department.required = true;
  department.append(option(null, "请选择科室"));
  for (const d of departments) department.append(option(d.department.id, d.department.name));
  if (c.department) department.value = String(c.department.id);
  const liaison = el("select");
  liaison.name = "liaison_staff_id";
  fillLiaisons(liaison, departments, department.value);
  department.addEventListener("change", () => fillLiaisons(liaison, departments, department.value));
  const category = el("select");
  category.name = "category";
  category.append(option(null, "（未分类）"));
  for (const [code, text] of Object.entries(CASE_CATEGORY)) category.append(option(code, text));
  category.value = c.category || "";
  const several = el("input");
  several.type = "checkbox";
  several.name = "several_departments";
  several.checked = c.several_departments;
  const severalLabel = el("label", "complaint-check");
  severalLabel.append(several, el("span", "", "涉及多个科室（答复期限为受理后 10 个工作日）"));
  const note = el("input");
  note.name = "note";
  note.maxLength = 2000;
  note.placeholder = "交办说明（选填，仅内部可见）";
  showForm("assign", c.department ? "改派" : "分派", [
    labelled("处理科室", department), labelled("联络员", liaison), labelled("类别", category), severalLabel,
    labelled("说明", note),
  ], c.department ? "改派" : "分派", () => act("POST", "/assign", {
    department_id: Number(department.value),
    liaison_staff_id: liaison.value ? Number(liaison.value) : null,
    category: category.value || null,
    several_departments: several.checked,
    note: note.value.trim() || null,
  }, (done) => "已分派至" + done.department.name + (done.liaison ? "，联络员 " + done.liaison.display_name : "")));
}

function noteForm() {
  const text = textArea("text", "写给同事的处理记录，患者看不到");
  showForm("note", "添加内部备注", [text], "保存备注", () => {
    if (!text.value.trim()) return say("请填写备注内容", "error");
    return act("POST", "/notes", { text: text.value }, () => "备注已保存");
  });
}

function writeForm(answer) {
  const c = view.detail;
  const text = textArea("text", answer ? "写给患者的处理结果" : "告诉患者目前的处理进展", 6);
  const hint = answer
    ? "答复将发送给患者：在 48 小时会话窗口内以微信客服消息发送，窗口外以模板消息发送。" + (c.kind === "praise" ? "表扬答复后即办结。" : ASKED)
    : "进展消息只能在患者 48 小时会话窗口内以微信客服消息发送，窗口外不会发出。";
  showForm(answer ? "answer" : "message", answer ? "答复患者" : "发送进展消息", [text, el("p", "hint", hint)],
    answer ? "发送答复" : "发送消息", async () => {
      if (!text.value.trim()) return say("请填写要发给患者的内容", "error");
      if (answer && !(await confirmDialog("发送答复", "确认将答复发送给患者？发送后案件状态将改为已答复。"))) return null;
      return act("POST", answer ? "/answer" : "/messages", { text: text.value },
        (reply) => (answer ? "答复已记录。" : "") + DELIVERED[reply.delivery]
          + (answer && reply.delivery !== "not_sent" && c.kind === "complaint" ? ASKED : ""));
    });
}

function referForm() {
  const to = el("select");
  to.name = "to";
  for (const [code, text] of Object.entries(REFERRAL)) to.append(option(code, text));
  const note = el("input");
  note.name = "note";
  note.maxLength = 2000;
  note.placeholder = "说明（选填）";
  showForm("refer", "转出（结束院内处理）", [labelled("转至", to), labelled("说明", note)], "转出", async () => {
    const where = REFERRAL[to.value];
    if (!(await confirmDialog("转出案件", "确认转入" + where + "？转出后院内不再处理此案件。"))) return null;
    return act("POST", "/referral", { to: to.value, note: note.value.trim() || null }, () => "已转入" + where);
  });
}

async function move(to, question, done) {
  if (question && !(await confirmDialog(question[0], question[1]))) return;
  await act("POST", "/transition", { to }, () => done);
}

/** The buttons the case's state and the caller's role allow; nothing else is offered. */
function actionBar(c) {
  const bar = el("div", "complaint-actions");
  const next = c.next_states;
  const offer = (text, action, handler, className) => {
    const node = button(text, action, className);
    node.addEventListener("click", handler);
    bar.append(node);
  };
  if (next.includes("assigned")) offer(c.department ? "改派" : "分派", "assign", assignForm, "primary");
  if (next.includes("investigating")) offer("开始调查", "investigate", () => move("investigating", null, "已开始调查"));
  if (next.includes("answered")) offer("答复患者", "answer", () => writeForm(true), "primary");
  if (isOffice() && !["closed", "referred"].includes(c.status)) offer("发送进展消息", "message", () => writeForm(false));
  offer("添加备注", "note", noteForm);
  if (next.includes("referred")) offer("转出", "refer", referForm);
  if (next.includes("closed")) {
    const praise = c.kind === "praise";
    offer(praise ? "关闭表扬" : "办结", "close", () => move("closed",
      [praise ? "关闭表扬" : "办结案件", praise ? "确认关闭此表扬？" : "确认办结此案件？办结后不能再处理。"], "已办结"));
  }
  return bar;
}

/* -- opening and closing ----------------------------------------------------------------------- */

export async function openCase(number) {
  const load = ++view.loads;
  let detail;
  try {
    detail = await api("GET", "/complaints/" + encodeURIComponent(number));
  } catch (error) {
    if (load === view.loads) say(caseErrorText(error), "error");
    return;
  }
  if (load !== view.loads) return;
  view.number = number;
  view.detail = detail;
  render();
  for (const row of document.querySelectorAll("#complaints-table tr.complaint-row")) {
    row.classList.toggle("selected", row.dataset.case === number);
  }
  $("complaint-case").scrollIntoView({ block: "nearest" });
}

export function resetCase() {
  view.number = null;
  view.detail = null;
  $("complaint-case").replaceChildren();
  $("complaint-case").hidden = true;
}
