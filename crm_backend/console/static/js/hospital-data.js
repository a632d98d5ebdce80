/* The hospital's own data (supervisors and admins): each department's patient-facing triage
 * description and symptom terms, a box to try a question against them, and the hospital information
 * answers the bot gives patients. Clinical content: clinicians confirm what is saved here. */

import { ApiError, api, errorText } from "./api.js";
import { $, el, toast } from "./dom.js";

const FIELD = {
  description: "科室介绍", symptom_terms: "症状词", term: "症状词", weight: "权重",
  title: "标题", keywords: "关键词", answer: "回答", text: "问题",
};
const LEVEL = { urgent: "尽快就医", routine: "常规就诊", self_care: "可先自我护理" };

let departments = [];

/** One term a line: "腹痛/肚子…疼 2" (the weight after a space; 1 when left out). */
export function termsText(terms) {
  return terms.map((t) => (t.weight === 1 ? t.term : t.term + " " + t.weight)).join("\n");
}

export function parseTerms(text) {
  return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const match = line.match(/^(.*\S)\s+(\d+(?:\.\d+)?)$/);
    return match ? { term: match[1], weight: Number(match[2]) } : { term: line, weight: 1 };
  });
}

/** A refused save as staff can read it: which field (and which line), and why. */
export function refusalText(error) {
  if (!(error instanceof ApiError) || error.status !== 400 || !error.errors.length) return errorText(error);
  return "保存失败：" + error.errors.map((problem) => {
    const loc = problem.loc.filter((part) => part !== "body");
    const where = loc.map((part) => (typeof part === "number" ? "第 " + (part + 1) + " 行" : FIELD[part] || part));
    const why = problem.msg.replace(/^Value error, /, "")
      .replace(/^terms listed twice: (.*)$/, "症状词重复：$1")
      .replace(/^Input should be greater than or equal to (.*)$/, "不能小于 $1")
      .replace(/^Input should be less than or equal to (.*)$/, "不能大于 $1")
      .replace(/^String should have at least 1 character$/, "不能为空")
      .replace(/^String should have at most (\d+) characters?$/, "最多 $1 个字")
      .replace(/^List should have at least 1 item.*$/, "至少要有一项")
      .replace(/^empty alternative or part in (.*)$/, "有空的备选或片段：$1")
      .replace(/^a term has 1 to (\d+) characters$/, "每个症状词 1 到 $1 个字");
    return (where.length ? where.join(" ") + "：" : "") + why;
  }).join("；");
}

function say(id, text, kind) {
  $(id).textContent = text;
  $(id).className = "form-msg " + kind;
}

function showDepartment() {
  const department = departments.find((d) => String(d.id) === $("dept-select").value);
  const form = $("dept-form");
  form.hidden = department === undefined;
  if (department === undefined) return;
  form.elements.description.value = department.description;
  form.elements.symptom_terms.value = termsText(department.symptom_terms);
  $("dept-code").textContent = department.code + (department.aliases.length ? " · " + department.aliases.join("、") : "");
  say("dept-msg", "", "");
}

async function loadDepartments() {
  try {
    departments = await api("GET", "/departments");
  } catch (error) {
    toast("科室加载失败：" + errorText(error), "error");
    return;
  }
  const select = $("dept-select");
  const chosen = select.value;
  select.replaceChildren(...departments.map((d) => {
    const option = el("option", "", d.name);
    option.value = String(d.id);
    return option;
  }));
  if (departments.some((d) => String(d.id) === chosen)) select.value = chosen;
  showDepartment();
}

async function saveDepartment(event) {
  event.preventDefault();
  const form = event.target;
  const id = $("dept-select").value;
  const body = {
    description: form.elements.description.value.trim(),
    symptom_terms: parseTerms(form.elements.symptom_terms.value),
  };
  try {
    const saved = await api("PATCH", "/departments/" + encodeURIComponent(id), body);
    departments = departments.map((d) => (d.id === saved.id ? saved : d));
    showDepartment();
    say("dept-msg", "已保存：" + saved.name, "ok");
  } catch (error) {
    say("dept-msg", refusalText(error), "error");
  }
}

async function tryTriage(event) {
  event.preventDefault();
  const text = event.target.elements.text.value.trim();
  if (!text) return;
  let result;
  try {
    result = await api("POST", "/departments/triage-preview", { text });
  } catch (error) {
    $("triage-try-result").replaceChildren(el("p", "form-msg error", refusalText(error)));
    return;
  }
  const items = result.departments.map((d) => {
    const li = el("li");
    li.append(el("b", "", d.name), el("span", "p-sub", " 得分 " + d.score + (d.matched.length ? "，命中：" + d.matched.join("、") : "")));
    return li;
  });
  $("triage-try-result").replaceChildren(
    el("p", "", (LEVEL[result.level] || result.level) + (result.reason ? "：" + result.reason : "")),
    items.length ? el("ol", "p-list") : el("p", "p-empty", "没有推荐科室"),
  );
  if (items.length) $("triage-try-result").querySelector("ol").append(...items);
}

function infoCard(entry) {
  const form = el("form", "card form info-entry");
  form.dataset.key = entry.key;
  const field = (label, name, value, multiline) => {
    const wrap = el("label", "", label);
    const input = el(multiline ? "textarea" : "input");
    input.name = name;
    input.value = value;
    if (multiline) input.rows = 4;
    wrap.append(input);
    return wrap;
  };
  const msg = el("p", "form-msg");
  msg.setAttribute("role", "status");
  const save = el("button", "btn primary", "保存");
  save.type = "submit";
  form.append(
    el("span", "mono", entry.key),
    field("标题", "title", entry.title),
    field("关键词（用、或逗号分隔）", "keywords", entry.keywords.join("、")),
    field("回答（{service_phone} 会换成服务电话）", "answer", entry.answer, true),
    msg, save,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      title: form.elements.title.value.trim(),
      keywords: form.elements.keywords.value.split(/[、,，\n]/).map((k) => k.trim()).filter(Boolean),
      answer: form.elements.answer.value.trim(),
    };
    try {
      const saved = await api("PUT", "/hospital-info/" + encodeURIComponent(entry.key), body);
      form.replaceWith(infoCard(saved));
      toast("已保存：" + saved.title, "ok");
    } catch (error) {
      msg.textContent = refusalText(error);
      msg.className = "form-msg error";
    }
  });
  return form;
}

async function loadHospitalInfo() {
  let entries;
  try {
    entries = await api("GET", "/hospital-info");
  } catch (error) {
    toast("医院信息加载失败：" + errorText(error), "error");
    return;
  }
  $("info-list").replaceChildren(...(entries.length ? entries.map(infoCard) : [el("p", "p-empty", "暂无医院信息")]));
}

export function loadHospitalData() {
  loadDepartments();
  loadHospitalInfo();
}

export function wireHospitalData() {
  $("dept-select").addEventListener("change", showDepartment);
  $("dept-form").addEventListener("submit", saveDepartment);
  $("triage-try").addEventListener("submit", tryTriage);
}
