/* A case's timeline as staff read it: every change of state, assignment, note, message to the
 * patient, what the patient added or replied, deadline flags and escalations, oldest first
 * (TimelineEntry of docs/CONSOLE_API.md). */

import { el } from "./dom.js";
import { formatTime } from "./format.js";
import { CASE_CATEGORY, CASE_STATUS, MSG_TYPE, REFERRAL } from "./labels.js";

const ACTOR = { bot: "机器人", patient: "患者", system: "系统" };
const DELIVERY = { chat: "微信客服消息", template: "模板消息", not_sent: "未送达" };

function statusTitle(entry) {
  const data = entry.data || {};
  const to = CASE_STATUS[entry.to_status] || entry.to_status;
  if (data.department) return "分派至 " + data.department;
  if (data.referral) return "转出：" + (REFERRAL[data.referral] || data.referral);
  if (entry.to_status === "answered") return "答复患者 · 状态改为" + to;
  return "状态：" + (CASE_STATUS[entry.from_status] || entry.from_status || "—") + " → " + to;
}

function patientReply(entry) {
  const data = entry.data || {};
  return data.satisfaction ? "患者回复 · 满意度 " + data.satisfaction + " 分" : "患者回复";
}

/** What one entry is, in a few words. */
export function entryTitle(entry) {
  const data = entry.data || {};
  switch (entry.kind) {
    case "registered":
      return "受理登记 · 答复期限 " + (data.due_on || "") + (data.working_days ? "（" + data.working_days + " 个工作日）" : "");
    case "status": return statusTitle(entry);
    case "assignment": return "分派" + (data.department ? " 至 " + data.department : "");
    case "note": return "内部备注（患者不可见）";
    case "message": return "发给患者 · " + (DELIVERY[data.delivery] || data.delivery || "");
    case "answer": return "答复患者";
    case "patient_added": return "患者补充" + (data.msg_type ? " " + (MSG_TYPE[data.msg_type] || data.msg_type) : "");
    case "patient_reply": return patientReply(entry);
    case "flag": return data.flag === "overdue" ? "已逾期" : "临近答复期限";
    case "escalated": return "紧急上报";
    case "category":
      return "类别：" + (CASE_CATEGORY[data.from] || data.from || "未分类") + " → " + (CASE_CATEGORY[data.to] || data.to);
    default: return entry.kind;
  }
}

function entryItem(entry) {
  const li = el("li", "complaint-entry " + entry.kind);
  li.dataset.kind = entry.kind;
  if (entry.to_status) li.dataset.toStatus = entry.to_status;
  const head = el("div", "complaint-entry-head");
  head.append(
    el("b", "complaint-entry-title", entryTitle(entry)),
    el("span", "sub", formatTime(entry.at) + " · " + (ACTOR[entry.actor] || entry.actor)),
  );
  li.append(head);
  if (entry.text) li.append(el("div", "complaint-entry-text", entry.text));
  return li;
}

export function renderTimeline(entries) {
  const list = el("ol", "complaint-timeline");
  list.append(...entries.map(entryItem));
  if (!entries.length) list.append(el("li", "p-empty", "暂无记录"));
  return list;
}
