/* The audit log page (supervisors and admins): read only, newest first. */

import { api, errorText } from "./api.js";
import { $, el, fillTable, toast } from "./dom.js";
import { formatDateTime } from "./format.js";

function auditRow(entry) {
  const tr = el("tr");
  const ua = el("td", "ua", entry.user_agent ?? "");
  ua.title = entry.user_agent ?? "";
  tr.append(
    el("td", "", formatDateTime(entry.at)),
    el("td", "", (entry.staff_username ?? "") + (entry.staff_id === null ? "" : " #" + entry.staff_id)),
    el("td", "mono", entry.action),
    el("td", "", entry.object_type + (entry.object_id ? " #" + entry.object_id : "")),
    el("td", "", entry.patient_id ?? ""),
    el("td", "mono", entry.ip ?? ""),
    ua,
  );
  return tr;
}

export async function loadAudit(event) {
  if (event) event.preventDefault();
  const data = new FormData($("audit-form"));
  const params = new URLSearchParams();
  for (const key of ["patient_id", "staff_id", "limit"]) {
    const value = String(data.get(key)).trim();
    if (value) params.set(key, value);
  }
  let entries;
  try {
    entries = await api("GET", "/audit?" + params.toString());
  } catch (error) {
    toast("审计日志加载失败：" + errorText(error), "error");
    return;
  }
  fillTable("audit-table", entries.map(auditRow), "没有记录", 7);
}
