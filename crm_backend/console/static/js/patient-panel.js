/* The right-hand column: the patient's 360 view (GET /patients/{id}/360): who they are (sex, age,
 * masked phone, ID and card with an audited reveal for roles that may), their WeChat identities with
 * consent and who manages them, their 就诊人, chats, bookings and post-operative follow-up. */

import { api, errorText } from "./api.js";
import { $, el, toast } from "./dom.js";
import { followupRecord } from "./followup-record.js";
import { formatTime, same } from "./format.js";
import { CONVERSATION_STATUS, RELATIONSHIP } from "./labels.js";
import { state } from "./state.js";

const SEX = { M: "男", F: "女" };
const CONSENT = { granted: "已同意", declined: "未同意", unanswered: "未答复" };
const APPOINTMENT_STATUS = { booked: "已预约", cancelled: "已取消", completed: "已就诊" };
const HALF_DAY = { am: "上午", pm: "下午" };
/** Who may see each protected value in full (POST /patients/{id}/reveal answers 403 to the rest). */
const REVEAL_ROLES = {
  phone: ["nurse", "supervisor", "admin"],
  card_number: ["nurse", "supervisor", "admin"],
  id_number: ["admin"],
};
const FIELD_NAME = { phone: "电话", id_number: "证件号", card_number: "就诊卡" };

function section(title, ...children) {
  const node = el("div", "p-section");
  node.append(el("h4", "", title), ...children);
  return node;
}

function list(entries, renderEntry, emptyText) {
  if (!entries.length) return el("div", "p-empty", emptyText);
  const ul = el("ul", "p-list");
  ul.append(...entries.map(renderEntry));
  return ul;
}

/** Whole years from an ISO birth date to today (the browser's day). */
export function ageOf(birthDate) {
  if (!birthDate) return null;
  const [y, m, d] = birthDate.split("-").map(Number);
  const today = new Date();
  let age = today.getFullYear() - y;
  if (today.getMonth() + 1 < m || (today.getMonth() + 1 === m && today.getDate() < d)) age -= 1;
  return age >= 0 ? age : null;
}

function who(person) {
  const parts = [];
  if (person.sex) parts.push(SEX[person.sex] || person.sex);
  const age = ageOf(person.birth_date);
  if (age !== null) parts.push(age + "岁");
  return parts.join(" · ");
}

function mayReveal(field) {
  return state.me !== null && REVEAL_ROLES[field].includes(state.me.role);
}

/** One protected value, masked, with a 显示 button that asks the server (audited) for the full one. */
function protectedLine(patientId, field, shown, masked) {
  const row = el("div", "p-field");
  row.dataset.field = field;
  row.append(el("span", "p-label", FIELD_NAME[field]));
  const value = el("span", "mono p-value", shown === null ? "未登记" : shown);
  row.append(value);
  if (shown !== null && masked && mayReveal(field)) {
    const button = el("button", "btn small p-reveal", "显示");
    button.type = "button";
    button.title = "显示完整" + FIELD_NAME[field] + "（将记入审计日志）";
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const answer = await api("POST", "/patients/" + encodeURIComponent(patientId) + "/reveal", { field });
        value.textContent = answer.value === null ? "未登记" : answer.value;
        button.remove();
      } catch (error) {
        button.disabled = false;
        toast("无法显示：" + errorText(error), "error");
      }
    });
    row.append(button);
  }
  return row;
}

function identityEntry(identity) {
  const li = el("li");
  const line = el("div");
  line.append(el("span", "mono", identity.openid_masked));
  line.append(el("span", "pill" + (identity.subscribed ? " ok" : ""), identity.subscribed ? "已关注" : "未关注"));
  const consent = identity.consent.status;
  const pill = el("span", "pill consent " + consent + (consent === "granted" ? " ok" : ""),
    "健康信息授权：" + CONSENT[consent]);
  if (identity.consent.decided_at) pill.title = "决定于 " + formatTime(identity.consent.decided_at);
  line.append(pill);
  li.append(line);
  const holder = identity.relationship === "self"
    ? "本人的微信"
    : "由 " + (identity.holder.label || "患者 " + identity.holder.id) + " 管理（关系：" +
      (RELATIONSHIP[identity.relationship] || identity.relationship) + "）";
  li.append(el("div", "sub", holder + " · 公众号 " + identity.app_id));
  return li;
}

function dependantEntry(dependant) {
  const li = el("li");
  li.dataset.patientId = dependant.id;
  const line = el("div", "", dependant.label);
  line.append(el("span", "pill", RELATIONSHIP[dependant.relationship] || dependant.relationship));
  li.append(line);
  const details = [who(dependant)];
  if (dependant.phone !== null) details.push("电话 " + dependant.phone);
  if (dependant.id_number !== null) details.push("证件号 " + dependant.id_number);
  li.append(el("div", "sub mono", details.filter(Boolean).join(" · ")));
  return li;
}

function appointmentEntry(appointment) {
  const li = el("li");
  const line = el("div", "", appointment.date + " " + (HALF_DAY[appointment.half_day] || appointment.half_day) +
    " " + appointment.department + " " + appointment.doctor);
  line.append(el("span", "pill", APPOINTMENT_STATUS[appointment.status] || appointment.status));
  li.append(line);
  return li;
}

function conversationList(conversations, currentConversationId, openConversation) {
  const entry = (conversation) => {
    const li = el("li");
    li.dataset.conversationId = conversation.id;
    const current = same(conversation.id, currentConversationId);
    const line = el("div", "", "会话 #" + conversation.id);
    line.append(el("span", "pill" + (current ? " ok" : ""), current ? "当前" : CONVERSATION_STATUS[conversation.status]));
    li.append(line);
    li.append(el("div", "sub", "开始 " + formatTime(conversation.started_at) +
      " · 最后消息 " + formatTime(conversation.last_message_at)));
    if (!current) {
      li.classList.add("link");
      li.title = "查看该会话";
      li.addEventListener("click", () => openConversation(conversation.id));
    }
    return li;
  };
  return list(conversations, entry, "无");
}

function head(label, patientId, subline) {
  const node = el("div", "p-head");
  node.append(el("div", "avatar", Array.from(label)[0] || "患"));
  const names = el("div");
  names.append(el("div", "p-name", label), el("div", "p-sub", subline || "患者 ID " + patientId));
  node.append(names);
  return node;
}

/** The 360 view of docs/CONSOLE_API.md. Exposed for tests; every value goes in as text. */
export function render360(view, currentConversationId, openConversation = () => {}) {
  const patient = view.patient;
  const root = el("div", "patient-inner p360");
  root.dataset.patientId = patient.id;
  root.append(head(patient.label, patient.id, [who(patient), "患者 ID " + patient.id].filter(Boolean).join(" · ")));

  root.append(section("身份信息",
    protectedLine(patient.id, "phone", patient.phone, patient.masked.phone),
    protectedLine(patient.id, "id_number", patient.id_number, patient.masked.id_number),
    protectedLine(patient.id, "card_number", patient.card_number, patient.masked.card_number)));
  root.append(section("微信身份与授权", list(view.identities, identityEntry, "无微信身份")));

  // The 就诊人 this patient's WeChat account books for: themself once registered, then family.
  const registered = view.identities.some((i) => i.relationship === "self") && patient.name !== null;
  const dependants = registered
    ? [{ ...patient, relationship: "self" }, ...view.managed_patients]
    : view.managed_patients;
  root.append(section("就诊人", list(dependants, dependantEntry, "暂无就诊人")));
  root.append(section("历史会话", conversationList(view.conversations, currentConversationId, openConversation)));
  root.append(section("预约", list(view.appointments, appointmentEntry, "暂无预约")));
  // null: this role does not read clinical answers (only care staff do).
  if (view.followups !== null) {
    const followups = section("术后随访", followupRecord(view.followups));
    followups.classList.add("p-followup");
    root.append(followups);
  }
  return root;
}

/** The conversation's own panel (PatientPanel), shown when the 360 view cannot be read. */
export function renderPatientPanel(patient, currentConversationId, openConversation = () => {}) {
  const root = el("div", "patient-inner");
  root.append(head(patient.label, patient.id));
  root.append(section("微信身份", list(patient.identities, (identity) => {
    const li = el("li");
    const line = el("div");
    line.append(el("span", "mono", identity.openid_masked));
    line.append(el("span", "pill" + (identity.subscribed ? " ok" : ""), identity.subscribed ? "已关注" : "未关注"));
    li.append(line, el("div", "sub", "公众号 " + identity.app_id));
    return li;
  }, "无")));
  root.append(section("就诊人", list(patient.dependants, dependantEntry, "暂无就诊人")));
  root.append(section("历史会话", conversationList(patient.conversations, currentConversationId, openConversation)));
  root.append(section("预约", list(patient.records.appointments, (appointment) => {
    const li = el("li");
    const line = el("div", "", appointment.label);
    line.append(el("span", "pill", appointment.status));
    li.append(line);
    return li;
  }, "暂无预约")));
  return root;
}

let shownFor = 0; // the latest request wins when staff click quickly

/** Fetches the 360 view (audited as patient.view) into the right-hand column. */
export async function showPatient(patientId, currentConversationId, openConversation, fallback = null) {
  const ticket = ++shownFor;
  const panel = $("patient-panel");
  try {
    const view = await api("GET", "/patients/" + encodeURIComponent(patientId) + "/360");
    if (ticket !== shownFor) return;
    panel.replaceChildren(render360(view, currentConversationId, openConversation));
  } catch (error) {
    if (ticket !== shownFor) return;
    panel.replaceChildren(fallback !== null
      ? renderPatientPanel(fallback, currentConversationId, openConversation)
      : el("div", "empty-state small", "患者信息加载失败：" + errorText(error)));
  }
}
