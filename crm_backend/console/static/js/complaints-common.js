/* What the complaints workspace's modules share: who counts as the office, the departments with their
 * liaisons, a case's deadline and state as staff read them, and the API's refusals in Chinese. */

import { api, ApiError, errorText } from "./api.js";
import { el } from "./dom.js";
import { hospitalDate } from "./format.js";
import { CASE_FLAG, CASE_STATUS } from "./labels.js";
import { state } from "./state.js";

/** Roles that see, assign and answer every case (crm_backend/complaints/access.py). */
const OFFICE_ROLES = ["complaints_office", "supervisor", "admin"];
/** Fired on #complaints-view when a case changed, so the list shows its new state. */
export const CASE_CHANGED = "complaint-changed";
const cache = { offices: null };

export function isOffice() {
  return state.me !== null && OFFICE_ROLES.includes(state.me.role);
}

/** Every department with its liaisons (the office only), read once until something changes them. */
export async function offices() {
  if (!isOffice()) return [];
  if (cache.offices === null) cache.offices = await api("GET", "/complaints/liaisons/departments");
  return cache.offices;
}

export function resetOffices() {
  cache.offices = null;
}

function dayText(isoDate) {
  const [year, month, day] = isoDate.split("-").map(Number);
  const md = month + "月" + day + "日";
  return String(year) === hospitalDate().slice(0, 4) ? md : year + "年" + md;
}

function daysBetween(fromIso, toIso) {
  return Math.round((Date.parse(toIso) - Date.parse(fromIso)) / 86400000);
}

/** "10月9日 · 剩 2 个工作日", "今天到期", "已逾期 3 天"; the date alone once the case is answered or
 * closed. Working days come from the server (China's official calendar). */
export function deadlineText(item, today = hospitalDate()) {
  const due = dayText(item.due_on);
  if (item.working_days_left === null || item.working_days_left === undefined) return due;
  if (item.flag === "overdue") return due + " · 已逾期 " + Math.max(daysBetween(item.due_on, today), 1) + " 天";
  if (item.working_days_left === 0) return due + " · 今天到期";
  return due + " · 剩 " + item.working_days_left + " 个工作日";
}

export function flagBadge(flag) {
  if (!flag) return null;
  const badge = el("span", "badge complaint-flag " + (flag === "overdue" ? "urgent" : "high"), CASE_FLAG[flag] || flag);
  badge.dataset.flag = flag;
  return badge;
}

export function statusTag(status) {
  const tag = el("span", "status-tag complaint-status " + status, CASE_STATUS[status] || status);
  tag.dataset.status = status;
  return tag;
}

/** The server's refusals of input it could not take, in words (its sentences are for developers). */
const INPUT_REFUSALS = {
  "no such department": "所选科室不存在",
  "that staff member is not a liaison of the department": "所选人员不是该科室的投诉联络员",
  "unknown or inactive staff member": "所选人员不存在或已停用",
};

/** A refusal as staff read it; nothing was changed by a refused request. */
export function caseErrorText(error) {
  if (!(error instanceof ApiError)) return errorText(error);
  switch (error.status) {
    case 400: return "填写的内容不符合要求，请检查后重试（未做任何更改）";
    case 403: return "没有权限：此操作只能由投诉办处理，或该案件不在您的处理范围内（未做任何更改）";
    case 404: return "未找到该案件";
    case 409: return "案件状态已变化，当前状态下不能执行此操作（未做任何更改），已显示最新状态";
    case 422: return (INPUT_REFUSALS[error.detail] || "填写的内容有误") + "（未做任何更改）";
    default: return errorText(error);
  }
}
