/* 随访计划: the post-operative follow-up plans. Nurses read them; clinicians, supervisors and admins
 * change them (each save is a new version, enrolled patients keep theirs), deactivate them, and move
 * them in and out as FHIR R4B. A version's questions and thresholds are shown as a nurse reads them.
 * Clinical content: clinicians confirm every threshold and piece of advice before patients see it. */

import { api, errorText, API } from "./api.js";
import { $, el, toast } from "./dom.js";
import { formatTime } from "./format.js";
import { blankPlan, clearProblems, formDefinition, openForm, showProblems } from "./followup-plan-form.js";
import { state } from "./state.js";

const READERS = ["nurse", "clinician", "supervisor", "admin"];
const WRITERS = ["clinician", "supervisor", "admin"];
export const FLAG = {
  green: "绿色", amber: "黄色 · 24 小时内护士联系", red: "红色 · 护士马上联系", emergency: "急症 · 120 / 急诊",
};
const TYPE = {
  scale: "评分", yes_no: "是 / 否", number: "数值", single_choice: "单选", multiple_choice: "多选", free_text: "文字",
};
const ANCHOR = { discharge: "出院日", surgery: "手术日" };

let plans = [];
let current = null;      // PlanRead on screen
let shownVersion = null; // the version number on screen
let editorMode = "form";  // "form" or "json": the last one chosen, for power users who prefer JSON

export function mayReadPlans() { return state.me !== null && READERS.includes(state.me.role); }
export function mayWritePlans() { return state.me !== null && WRITERS.includes(state.me.role); }

function number(value) { return String(value); }

/** A flag rule as words: "≥ 38.5 °C", "回答“是”", "选“流脓”或“渗液”". */
export function ruleText(rule, question) {
  const unit = question.unit ? " " + question.unit : "";
  if (rule.at_least !== null && rule.at_least !== undefined && rule.at_most !== null && rule.at_most !== undefined) {
    return number(rule.at_least) + "–" + number(rule.at_most) + unit;
  }
  if (rule.at_least !== null && rule.at_least !== undefined) return "≥ " + number(rule.at_least) + unit;
  if (rule.at_most !== null && rule.at_most !== undefined) return "≤ " + number(rule.at_most) + unit;
  if (rule.equals !== null && rule.equals !== undefined) return "回答“" + (rule.equals ? "是" : "否") + "”";
  const texts = rule.any_of.map((code) => {
    const choice = question.choices.find((c) => c.code === code);
    return "“" + (choice ? choice.text : code) + "”";
  });
  return "选" + texts.join("或");
}

function conditionText(condition, questions) {
  const earlier = questions.find((q) => q.code === condition.question);
  const name = earlier ? "“" + earlier.text.slice(0, 16) + (earlier.text.length > 16 ? "…" : "") + "”" : condition.question;
  if (condition.equals !== null && condition.equals !== undefined) return "仅当 " + name + " 答“" + (condition.equals ? "是" : "否") + "”时问";
  if (condition.at_least !== null && condition.at_least !== undefined) return "仅当 " + name + " ≥ " + number(condition.at_least) + " 时问";
  const texts = condition.any_of.map((code) => {
    const choice = earlier ? earlier.choices.find((c) => c.code === code) : undefined;
    return choice ? choice.text : code;
  });
  return "仅当 " + name + " 选“" + texts.join("”或“") + "”时问";
}

function answersText(question) {
  if (question.type === "number" || question.type === "scale") {
    const low = question.minimum ?? 0;
    const high = question.maximum ?? 10;
    return number(low) + "–" + number(high) + (question.unit ? " " + question.unit : "");
  }
  if (question.choices.length) return question.choices.map((c, i) => (i + 1) + ". " + c.text).join("  ");
  return question.type === "yes_no" ? "是 / 否" : "自由填写（危急征象筛查会读）";
}

/** One time point's questions as a table: question, answers, when to ask, flags and advice. */
export function renderTimePoint(point, anchor) {
  const section = el("section", "plan-point");
  section.append(el("h4", "", "第 " + point.day + " 天（" + (ANCHOR[anchor] || anchor) + "后） · " + String(point.hour).padStart(2, "0") + ":00"));
  const table = el("table", "table plan-questions");
  const head = el("tr");
  for (const title of ["#", "问题", "类型", "可选答案 / 范围", "提醒规则（阈值 → 级别：告诉患者）"]) head.append(el("th", "", title));
  table.append(el("thead"), el("tbody"));
  table.tHead.append(head);
  point.questionnaire.questions.forEach((question, index) => {
    const row = el("tr");
    row.dataset.question = question.code;
    const text = el("td");
    text.append(el("div", "", question.text));
    if (question.enable_when) text.append(el("div", "hint", conditionText(question.enable_when, point.questionnaire.questions)));
    const rules = el("td", "plan-rules");
    for (const rule of question.flags) {
      const line = el("div", "plan-rule flag-" + rule.flag);
      line.dataset.flag = rule.flag;
      line.append(el("span", "plan-threshold", ruleText(rule, question)), el("span", "plan-flag", " → " + (FLAG[rule.flag] || rule.flag)));
      if (rule.advice) line.append(el("div", "plan-advice", rule.advice));
      rules.append(line);
    }
    if (!question.flags.length) rules.append(el("span", "hint", question.type === "free_text" ? "由危急征象筛查判断" : "—"));
    row.append(el("td", "", String(index + 1)), text, el("td", "", TYPE[question.type] || question.type),
      el("td", "", answersText(question)), rules);
    table.tBodies[0].append(row);
  });
  section.append(table);
  return section;
}

function renderList() {
  const rows = plans.map((plan) => {
    const row = el("tr", "plan-row" + (current && current.id === plan.id ? " selected" : ""));
    row.dataset.planId = plan.id;
    row.dataset.code = plan.code;
    row.append(
      el("td", "", plan.name), el("td", "mono", plan.code), el("td", "", plan.procedures.join("、")),
      el("td", "", plan.days.map((d) => "D" + d).join(" ")), el("td", "", "v" + plan.current_version),
      el("td", plan.active ? "" : "hint", plan.active ? "使用中" : "已停用"),
    );
    row.addEventListener("click", () => openPlan(plan.id));
    return row;
  });
  if (!rows.length) {
    const td = el("td", "p-empty", "还没有随访计划");
    td.colSpan = 6;
    rows.push(el("tr"));
    rows[0].append(td);
  }
  $("plans-table").tBodies[0].replaceChildren(...rows);
}

export async function loadPlans() {
  $("plans-new").hidden = !mayWritePlans();
  $("plans-import-label").hidden = !mayWritePlans();
  try {
    plans = await api("GET", "/followup-plans");
  } catch (error) {
    toast("随访计划加载失败：" + errorText(error), "error");
    return;
  }
  renderList();
  if (current !== null) await openPlan(current.id, shownVersion);
}

async function openPlan(planId, version) {
  try {
    current = await api("GET", "/followup-plans/" + encodeURIComponent(planId));
  } catch (error) {
    toast(errorText(error), "error");
    return;
  }
  const numbers = current.versions.map((v) => v.version);
  shownVersion = numbers.includes(version) ? version : numbers[0];
  renderList();
  renderPlan();
}

function renderPlan() {
  const box = $("plan-detail");
  box.hidden = false;
  $("plan-editor").hidden = true;
  const version = current.versions.find((v) => v.version === shownVersion);
  const definition = version.definition;
  $("plan-title").textContent = current.name + (current.active ? "" : "（已停用）");
  const select = $("plan-version");
  select.replaceChildren(...current.versions.map((v) => {
    const who = v.created_by_staff_id === null ? "系统预置" : v.created_by_name || "员工 #" + v.created_by_staff_id;
    const option = el("option", "", "v" + v.version + " · " + formatTime(v.created_at) + " · " + who);
    option.value = String(v.version);
    return option;
  }));
  select.value = String(shownVersion);
  $("plan-export").href = API + "/followup-plans/" + current.id + "/versions/" + shownVersion + "/fhir";
  for (const id of ["plan-edit", "plan-toggle"]) $(id).hidden = !mayWritePlans();
  $("plan-toggle").textContent = current.active ? "停用" : "重新启用";
  $("plan-note").textContent = (definition.review_note ? definition.review_note + " " : "")
    + "阈值和建议须由临床医生确认。";
  const procedures = definition.procedures.map((p) => {
    const li = el("li");
    li.append(el("b", "", p.text));
    const extra = [...p.synonyms, ...p.codes.map((c) => "ICD-9-CM-3 " + c)];
    if (extra.length) li.append(el("span", "hint", " " + extra.join("、")));
    return li;
  });
  $("plan-procedures").replaceChildren(...procedures);
  $("plan-points").replaceChildren(...definition.time_points.map((point) => renderTimePoint(point, definition.anchor)));
}

function say(text, kind) {
  $("plan-editor-msg").textContent = text;
  $("plan-editor-msg").className = "form-msg " + (kind || "");
}

/** The editor: a form (followup-plan-form.js), or the definition as JSON for power users; saving a
 * changed plan makes its next version. */
function openEditor(mode) {
  const editor = $("plan-editor");
  editor.dataset.mode = mode;
  editor.hidden = false;
  const version = current && current.versions.find((v) => v.version === shownVersion);
  const definition = mode === "new" || !version ? blankPlan() : version.definition;
  $("plan-editor-title").textContent = mode === "new" ? "新建随访计划" : "编辑 " + current.name + "（保存为新版本）";
  openForm($("plan-form"), definition, mode === "new");
  $("plan-json").value = JSON.stringify(definition, null, 2);
  say("", "");
  showMode(editorMode);
  editor.scrollIntoView({ block: "start" });
}

function showMode(mode) {
  editorMode = mode;
  $("plan-form").hidden = mode !== "form";
  $("plan-json").hidden = mode !== "json";
  $("plan-mode-form").setAttribute("aria-pressed", String(mode === "form"));
  $("plan-mode-json").setAttribute("aria-pressed", String(mode === "json"));
  if (mode === "json") $("plan-json").focus();
}

/** Switching carries the plan across: the form's draft into JSON, or JSON (if it parses) into the form. */
function switchMode(mode) {
  if (mode === editorMode) return;
  if (mode === "json") {
    $("plan-json").value = JSON.stringify(formDefinition(), null, 2);
  } else {
    let definition;
    try {
      definition = JSON.parse($("plan-json").value);
    } catch (error) {
      say("不是有效的 JSON，无法切换到表单：" + error.message, "error");
      return;
    }
    openForm($("plan-form"), definition, $("plan-editor").dataset.mode === "new");
  }
  say("", "");
  showMode(mode);
}

async function saveEditor(event) {
  event.preventDefault();
  let definition;
  if (editorMode === "json") {
    try {
      definition = JSON.parse($("plan-json").value);
    } catch (error) {
      say("不是有效的 JSON：" + error.message, "error");
      return;
    }
  } else {
    definition = formDefinition();
  }
  const mode = $("plan-editor").dataset.mode;
  clearProblems();
  try {
    const written = mode === "new"
      ? await api("POST", "/followup-plans", definition)
      : await api("PUT", "/followup-plans/" + current.id, definition);
    toast(written.changed ? "已保存为 v" + written.plan.versions[0].version : "内容没有变化，未生成新版本", "ok");
    current = written.plan;
    shownVersion = written.plan.versions[0].version;
    await loadPlans();
  } catch (error) {
    if (error.status === 422 && error.errors.length) {
      // In the form each problem goes next to its field; in JSON the list says where.
      const unplaced = editorMode === "form" ? showProblems(error.errors) : error.errors;
      const where = (p) => (editorMode === "json" && p.loc.length ? p.loc.join(".") + "：" : "");
      say("有 " + error.errors.length + " 处需要修改" + (unplaced.length ? "：" + unplaced.map((p) => where(p) + p.msg).join("；") : "，已在下方标出。"), "error");
    } else {
      say(errorText(error), "error");
    }
  }
}

async function toggleActive() {
  const action = current.active ? "deactivate" : "activate";
  try {
    await api("POST", "/followup-plans/" + current.id + "/" + action);
    toast(current.active ? "已停用：不再接收新的入组，已入组患者照常随访" : "已重新启用", "ok");
    await loadPlans();
  } catch (error) {
    toast(errorText(error), "error");
  }
}

async function importFhir(event) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  let resource;
  try {
    resource = JSON.parse(await file.text());
  } catch (error) {
    toast("导入失败：文件不是 JSON", "error");
    return;
  }
  try {
    const written = await api("POST", "/followup-plans/import-fhir", resource);
    toast(written.changed ? "已导入：" + written.plan.name + " v" + written.plan.versions[0].version : "内容没有变化", "ok");
    current = written.plan;
    shownVersion = written.plan.versions[0].version;
    await loadPlans();
  } catch (error) {
    toast("导入失败：" + errorText(error), "error");
  }
}

export function wireFollowupPlans() {
  $("plan-version").addEventListener("change", () => { shownVersion = Number($("plan-version").value); renderPlan(); });
  $("plan-edit").addEventListener("click", () => openEditor("edit"));
  $("plans-new").addEventListener("click", () => openEditor("new"));
  $("plan-toggle").addEventListener("click", toggleActive);
  $("plan-editor").addEventListener("submit", saveEditor);
  $("plan-editor-cancel").addEventListener("click", () => { $("plan-editor").hidden = true; });
  $("plan-mode-form").addEventListener("click", () => switchMode("form"));
  $("plan-mode-json").addEventListener("click", () => switchMode("json"));
  $("plans-import").addEventListener("change", importFhir);
}

export function resetFollowupPlans() {
  plans = [];
  current = null;
  shownVersion = null;
}
