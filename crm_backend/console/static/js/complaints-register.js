/* 登记投诉 (首诉负责制: whoever receives a complaint registers it and answers for it): a small form
 * that registers a complaint or praise (POST /complaints), from the chat on screen (its patient, its
 * conversation: the answer goes back there) or, for the complaints office in the 投诉工作台, for a
 * patient found by the patient search. Then it shows the case number and the deadline; a refusal is
 * said in Chinese and registers nothing. */

import { api, ApiError, errorText } from "./api.js";
import { CASE_CHANGED, deadlineText } from "./complaints-common.js";
import { $, el, toast } from "./dom.js";
import { findPatients, notFoundText, patientEntry } from "./patient-search.js";

/** Who the case is for: {patientId, conversationId (null: the patient's own WeChat), label}. */
const form = { target: null, departments: null, registered: null };

/** Department names for 科室, read once (any staff may read them). */
async function fillDepartments() {
  if (form.departments === null) form.departments = await api("GET", "/complaints/departments");
  const select = $("complaint-register-form").elements.where_department;
  select.replaceChildren(new Option("（未填写）", ""));
  for (const department of form.departments) select.append(new Option(department.name, department.name));
}

function say(text, kind) {
  const msg = $("complaint-register-msg");
  msg.textContent = text;
  msg.className = "form-msg" + (kind ? " " + kind : "");
}

/** A refusal in the words of the one registering; nothing was registered. */
export function registerErrorText(error) {
  if (!(error instanceof ApiError)) return errorText(error);
  switch (error.status) {
    case 400: return "填写的内容不符合要求，请检查后重试（未登记）";
    case 403: return "没有权限为该患者登记投诉（未登记）";
    case 404: return "未找到该患者或会话，可能已被删除（未登记）";
    case 409: return "患者或会话的状态已变化，请刷新后重试（未登记）";
    case 422: return "该会话不是患者本人或其就诊人账号的会话，答复无法送达，不能登记到此会话（未登记）";
    default: return "登记失败：" + errorText(error) + "（未登记）";
  }
}

function choose(target) {
  form.target = target;
  $("complaint-register-patient").textContent = target === null ? "" : "· " + target.label;
  $("complaint-register-submit").disabled = target === null;
}

function reset() {
  $("complaint-register-form").reset();
  $("complaint-register-patients").replaceChildren();
  $("complaint-register-fields").hidden = false;
  $("complaint-register-submit").hidden = false;
  $("complaint-register-cancel").textContent = "取消";
  form.registered = null;
  say("");
}

/** Opens the form for `target`, or (null) with the patient search first. */
export async function openRegister(target) {
  reset();
  choose(target);
  $("complaint-register-find").hidden = target !== null;
  $("complaint-register-dialog").showModal();
  try {
    await fillDepartments();
  } catch (error) {
    say("科室列表加载失败，可不填科室：" + errorText(error), "error");
  }
}

/** The chat on screen: its patient, registered into that conversation. */
export function openRegisterForChat(view) {
  if (view === null) return;
  openRegister({ patientId: view.patient.id, conversationId: view.conversation.id, label: view.patient.label });
}

async function searchPatients() {
  const query = $("complaint-register-form").elements.patient_query.value.trim();
  const list = $("complaint-register-patients");
  if (!query) return;
  let patients;
  try {
    patients = await findPatients(query);
  } catch (error) {
    list.replaceChildren(el("li", "p-empty", "搜索失败：" + errorText(error)));
    return;
  }
  if (!patients.length) {
    list.replaceChildren(el("li", "p-empty", notFoundText()));
    return;
  }
  list.replaceChildren(...patients.map((patient) => {
    const li = patientEntry(patient);
    li.addEventListener("click", () => {
      for (const node of list.querySelectorAll("li")) node.classList.toggle("selected", node === li);
      choose({ patientId: patient.id, conversationId: null, label: patient.label });
    });
    return li;
  }));
}

function body() {
  const f = $("complaint-register-form").elements;
  const optional = (input) => input.value.trim() || null;
  const intake = {
    kind: f.kind.value,
    what: f.what.value.trim(),
    when_text: f.when_text.value.trim(),
    where_department: f.where_department.value || null,
    where_ward: optional(f.where_ward),
    who: optional(f.who),
    wish: optional(f.wish),
    safety_risk: f.safety_risk.checked,
  };
  const target = form.target;
  return {
    patient_id: target.patientId,
    ...(target.conversationId === null ? {} : { conversation_id: target.conversationId }),
    intake,
    several_departments: f.several_departments.checked,
  };
}

function showRegistered(detail) {
  form.registered = detail;
  $("complaint-register-fields").hidden = true;
  $("complaint-register-find").hidden = true;
  $("complaint-register-submit").hidden = true;
  $("complaint-register-cancel").textContent = "关闭";
  const msg = $("complaint-register-msg");
  msg.className = "form-msg ok complaint-register-done";
  const number = el("b", "mono", detail.case_number);
  number.id = "complaint-register-number";
  msg.replaceChildren(
    "已登记，编号 ", number,
    "。答复期限：", el("span", "complaint-register-due", deadlineText(detail)),
    detail.safety_risk ? "。已按安全风险转投诉办紧急处理。" : "。",
  );
  // The 投诉工作台's list, when it is on screen, shows the new case (it reads the list when opened).
  if (!$("complaints-view").hidden) $("complaints-view").dispatchEvent(new Event(CASE_CHANGED));
}

async function submit(event) {
  event.preventDefault();
  if (form.target === null || form.registered !== null) return;
  const payload = body();
  if (!payload.intake.what) {
    say("请填写经过", "error");
    return;
  }
  $("complaint-register-submit").disabled = true;
  say("登记中…");
  try {
    showRegistered(await api("POST", "/complaints", payload));
    toast("投诉已登记", "ok");
  } catch (error) {
    say(registerErrorText(error), "error");
  } finally {
    $("complaint-register-submit").disabled = form.target === null;
  }
}

export function resetRegister() {
  form.departments = null;
  form.target = null;
  if ($("complaint-register-dialog").open) $("complaint-register-dialog").close();
}

export function wireRegister(currentChat) {
  $("complaint-register-form").addEventListener("submit", submit);
  $("complaint-register-cancel").addEventListener("click", () => $("complaint-register-dialog").close());
  $("complaint-register-search").addEventListener("click", searchPatients);
  $("complaint-register-form").elements.patient_query.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); searchPatients(); }
  });
  $("conv-complaint").addEventListener("click", () => openRegisterForChat(currentChat()));
  $("complaints-register-open").addEventListener("click", () => openRegister(null));
}
