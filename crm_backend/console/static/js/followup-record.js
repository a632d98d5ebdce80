/* The 360 view's follow-up section: each enrolment (plan, version, status, team, doctor), its check-ins
 * by day with the worst flag, and each question's answers over time as a small table, with an inline
 * SVG sparkline for numbers and scales (pain by day). No chart library: SVG elements made one by one,
 * every value as text or an attribute, never markup. */

import { el } from "./dom.js";

export const ENROLMENT_STATUS = { active: "随访中", paused: "已暂停", stopped: "已停止", completed: "已完成" };
export const STOP_REASON = { readmitted: "再入院", deceased: "死亡", opted_out: "患者退出", other: "其他" };
export const CHECKIN_STATUS = {
  scheduled: "未到期", claimed: "发送中", started: "已发送", answered: "已答复", missed: "未答复", skipped: "未发送",
};
export const CHANNEL = { chat: "微信", page: "问卷页", phone: "电话" };
export const FLAG = { green: "绿色", amber: "黄色", red: "红色", emergency: "急症" };

const SVG = "http://www.w3.org/2000/svg";
const SPARK = { width: 120, height: 30, pad: 4 };

/** "2026-09-02" as "9月2日". */
export function shortDate(isoDate) {
  const [, m, d] = String(isoDate).split("-").map(Number);
  return m + "月" + d + "日";
}

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

/** An inline SVG line of a numeric series on its fixed scale (0–10 for pain), a dot per answer coloured
 * by its flag; its label reads the values for screen readers and on hover. */
export function sparkline(series) {
  const { width, height, pad } = SPARK;
  const points = series.points;
  const low = series.low ?? Math.min(...points.map((p) => p.value));
  const high = series.high ?? Math.max(...points.map((p) => p.value));
  const span = high - low || 1;
  const x = (i) => (points.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (points.length - 1));
  const y = (v) => pad + ((high - Math.min(Math.max(v, low), high)) * (height - 2 * pad)) / span;
  const words = points.map((p) => "第" + p.day + "天 " + p.shown).join("，");
  const root = svg("svg", {
    class: "fu-spark", viewBox: "0 0 " + width + " " + height, width, height, role: "img", "aria-label": words,
  });
  const title = svg("title", {});
  title.textContent = series.text + "：" + words;
  root.append(title);
  root.append(svg("polyline", {
    class: "fu-spark-line", fill: "none",
    points: points.map((p, i) => x(i).toFixed(1) + "," + y(p.value).toFixed(1)).join(" "),
  }));
  points.forEach((p, i) => {
    root.append(svg("circle", { class: "fu-dot flag-" + p.flag, cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: 2.6 }));
  });
  return root;
}

function flagPill(flag) {
  return flag ? el("span", "pill fu-flag flag-" + flag, FLAG[flag] || flag) : el("span", "fu-none", "—");
}

function checkinTable(checkins) {
  const table = el("table", "fu-table fu-checkins");
  const head = el("tr");
  head.append(el("th", "", "随访"), el("th", "", "日期"), el("th", "", "状态"), el("th", "", "预警"));
  table.append(el("thead"));
  table.tHead.append(head);
  const body = el("tbody");
  for (const checkin of checkins) {
    const tr = el("tr");
    tr.dataset.day = checkin.day;
    const status = (CHECKIN_STATUS[checkin.status] || checkin.status) +
      (checkin.status === "answered" && checkin.channel ? "（" + (CHANNEL[checkin.channel] || checkin.channel) + "）" : "");
    const flag = el("td");
    flag.append(flagPill(checkin.worst_flag));
    tr.append(el("td", "", "第" + checkin.day + "天"), el("td", "", shortDate(checkin.due_date)), el("td", "", status), flag);
    body.append(tr);
  }
  table.append(body);
  return table;
}

/** Questions down, check-in days across; a numeric question gets its sparkline under its text. */
function answerTable(series) {
  const days = [...new Set(series.flatMap((s) => s.points.map((p) => p.day)))].sort((a, b) => a - b);
  const table = el("table", "fu-table fu-answers");
  const head = el("tr");
  head.append(el("th", "", "问题"), ...days.map((day) => el("th", "num", "第" + day + "天")));
  table.append(el("thead"));
  table.tHead.append(head);
  const body = el("tbody");
  for (const line of series) {
    const tr = el("tr");
    tr.dataset.question = line.question;
    const question = el("td", "fu-question", line.text);
    if (line.low !== null && line.points.length > 1) question.append(sparkline(line));
    tr.append(question);
    for (const day of days) {
      const point = line.points.find((p) => p.day === day);
      const cell = el("td", "num" + (point ? " flag-" + point.flag : ""), point ? point.shown : "");
      if (point) {
        cell.dataset.day = day;
        cell.title = shortDate(point.date) + " · " + (CHANNEL[point.channel] || point.channel) + " · " + (FLAG[point.flag] || point.flag);
      }
      tr.append(cell);
    }
    body.append(tr);
  }
  table.append(body);
  return table;
}

function enrolmentBlock(enrolment) {
  const node = el("div", "fu-enrolment");
  node.dataset.enrolmentId = enrolment.id;
  const line = el("div", "fu-plan", enrolment.plan_name + " · 第" + enrolment.version + "版");
  const status = ENROLMENT_STATUS[enrolment.status] || enrolment.status;
  const reason = enrolment.stop_reason ? "（" + (STOP_REASON[enrolment.stop_reason] || enrolment.stop_reason) + "）" : "";
  line.append(el("span", "pill" + (enrolment.status === "active" ? " ok" : ""), status + reason));
  if (enrolment.lost_to_followup) line.append(el("span", "pill fu-lost", "失访"));
  node.append(line);
  const details = ["团队 " + enrolment.team];
  if (enrolment.attending_doctor) details.push("主管医生 " + enrolment.attending_doctor);
  details.push("出院 " + enrolment.discharged_on);
  node.append(el("div", "sub", details.join(" · ")));
  if (enrolment.checkins.length) node.append(checkinTable(enrolment.checkins));
  node.append(enrolment.answers.length ? answerTable(enrolment.answers) : el("div", "p-empty", "尚无答复"));
  return node;
}

/** The section's content: one block per enrolment, newest first, or a line saying there is none. */
export function followupRecord(followups) {
  if (!followups || !followups.length) return el("div", "p-empty", "未登记术后随访");
  const node = el("div", "fu-record");
  node.append(...followups.map(enrolmentBlock));
  return node;
}
