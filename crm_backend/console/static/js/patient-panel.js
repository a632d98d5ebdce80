/* The right-hand column: who the patient is, their WeChat identities, 就诊人, chats and bookings. */

import { el } from "./dom.js";
import { formatTime, same } from "./format.js";
import { CONVERSATION_STATUS, RELATIONSHIP } from "./labels.js";

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

function identityEntry(identity) {
  const li = el("li");
  const line = el("div");
  line.append(el("span", "mono", identity.openid_masked));
  line.append(el("span", "pill" + (identity.subscribed ? " ok" : ""), identity.subscribed ? "已关注" : "未关注"));
  li.append(line, el("div", "sub", "公众号 " + identity.app_id));
  return li;
}

function dependantEntry(dependant) {
  const li = el("li");
  const line = el("div", "", dependant.label);
  line.append(el("span", "pill", RELATIONSHIP[dependant.relationship] || dependant.relationship));
  li.append(line);
  const details = [];
  if (dependant.phone !== null) details.push("电话 " + dependant.phone);
  if (dependant.id_number !== null) details.push("证件号 " + dependant.id_number);
  if (details.length) li.append(el("div", "sub mono", details.join(" · ")));
  return li;
}

function appointmentEntry(appointment) {
  const li = el("li");
  const line = el("div", "", appointment.label);
  line.append(el("span", "pill", appointment.status));
  li.append(line);
  return li;
}

/** The patient panel (PatientPanel of docs/CONSOLE_API.md). Exposed for tests; text only. */
export function renderPatientPanel(patient, currentConversationId, openConversation = () => {}) {
  const root = el("div", "patient-inner");
  const head = el("div", "p-head");
  head.append(el("div", "avatar", Array.from(patient.label)[0] || "患"));
  const names = el("div");
  names.append(el("div", "p-name", patient.label), el("div", "p-sub", "患者 ID " + patient.id));
  head.append(names);
  root.append(head);

  root.append(section("微信身份", list(patient.identities, identityEntry, "无")));
  root.append(section("就诊人", list(patient.dependants, dependantEntry, "暂无就诊人")));

  const conversationEntry = (conversation) => {
    const li = el("li");
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
  root.append(section("历史会话", list(patient.conversations, conversationEntry, "无")));
  root.append(section("预约", list(patient.records.appointments, appointmentEntry, "暂无预约")));
  return root;
}
