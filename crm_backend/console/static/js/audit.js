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
  await loadAnchor();
}

/* The latest entry's id and hash: written down elsewhere, it lets a later check find a cut-off log. */
async function loadAnchor() {
  let anchor;
  try {
    anchor = await api("GET", "/audit/anchor");
  } catch {
    $("audit-anchor-value").textContent = "—";
    return;
  }
  $("audit-anchor-value").textContent = `#${anchor.entry_id} ${anchor.entry_hash}（${formatDateTime(anchor.at)}）`;
}

const PROBLEMS = {
  content_changed: "条目内容被改动",
  link_broken: "链接断开（条目缺失或被改写）",
  tail_missing: "末尾条目被删除",
  anchor_mismatch: "与锚点不符",
  anchor_not_found: "找不到锚点条目（日志被截断）",
};

export async function verifyAudit() {
  const result = $("audit-verify-result");
  result.className = "hint";
  result.textContent = "校验中…";
  let report;
  try {
    report = await api("GET", "/audit/verify");
  } catch (error) {
    result.className = "hint error";
    result.textContent = "校验失败：" + errorText(error);
    return;
  }
  if (report.ok) {
    result.textContent = `完整：已校验 ${report.checked} 条，至 #${report.last_id}`;
  } else {
    const where = report.broken.entry_id === null ? "" : `条目 #${report.broken.entry_id}：`;
    result.className = "hint error";
    result.textContent = `已被篡改，${where}${PROBLEMS[report.broken.problem] ?? report.broken.problem}`;
  }
  await loadAnchor();
}
