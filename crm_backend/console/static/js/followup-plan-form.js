/* The plan editor as a form (随访计划 → 编辑): a clinician changes a plan's time points, questions,
 * choices, flag rules and conditions in fields, not JSON. The form edits a draft that has exactly
 * the shape of the API's PlanDefinition; the server stays the one place that validates, and its 422
 * problems (Chinese, with `loc` paths in the definition) are shown at the field whose `data-loc`
 * they name. Questions and whole time points copy forward: plans repeat questions across days. */

import { el } from "./dom.js";

const TYPES = [
  ["scale", "评分 0–10"], ["yes_no", "是否"], ["number", "数值"],
  ["single_choice", "单选"], ["multiple_choice", "多选"], ["free_text", "文字"],
];
const LEVELS = [["amber", "黄 · 24 小时内联系"], ["red", "红 · 马上联系"], ["emergency", "急症 · 120 / 急诊"]];
const CHOICE_TYPES = ["single_choice", "multiple_choice"];
const NUMERIC_TYPES = ["scale", "number"];

let draft = null;
let root = null;
let newPlan = false;
let problemCount = 0;

/** An empty plan for 新建计划. */
export function blankPlan() {
  return {
    code: "", name: "", anchor: "discharge",
    procedures: [{ text: "", synonyms: [], codes: [] }],
    time_points: [{ day: 1, hour: 10, questionnaire: { questions: [] } }],
    review_note: "",
  };
}

/** Shows `definition` (a deep copy is edited) in `container`; `isNew`: the plan code may be set. */
export function openForm(container, definition, isNew) {
  root = container;
  newPlan = isNew;
  draft = structuredClone(definition);
  render();
}

/** The definition as the form holds it now, for saving or for the JSON editor. */
export function formDefinition() { return structuredClone(draft); }

const clone = (value) => structuredClone(value);
const words = (text) => text.split(/[,，、;；]/).map((w) => w.trim()).filter(Boolean);
const questionsOf = (point) => point.questionnaire.questions;

function numberOrNull(text) {
  if (text.trim() === "") return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

function freeCode(prefix, taken) {
  for (let n = 1; ; n += 1) if (!taken.includes(prefix + n)) return prefix + n;
}

function allQuestionCodes() {
  return draft.time_points.flatMap((p) => questionsOf(p).map((q) => q.code));
}

/* ---- small builders: every input updates the draft as it is typed; structure changes re-render ---- */

function field(label, input, loc, extraClass) {
  const wrap = el("label", "pf-field" + (extraClass ? " " + extraClass : ""));
  wrap.append(el("span", "pf-label", label), input);
  if (loc) input.dataset.loc = loc;
  return wrap;
}

function textInput(value, onInput, options = {}) {
  const input = el(options.multiline ? "textarea" : "input");
  if (!options.multiline) input.type = options.type || "text";
  if (options.multiline) input.rows = 2;
  input.value = value === null || value === undefined ? "" : String(value);
  if (options.placeholder) input.placeholder = options.placeholder;
  if (options.disabled) input.disabled = true;
  if (options.type === "number") input.step = "any";
  input.addEventListener("input", () => onInput(input.value));
  return input;
}

/** A question's or choice's code: renaming it renames what refers to it (rules, conditions). */
function codeInput(value, onRename) {
  let current = value;
  return textInput(value, (v) => { onRename(current, v); current = v; });
}

function select(pairs, value, onChange) {
  const node = el("select");
  for (const [key, label] of pairs) {
    const option = el("option", "", label);
    option.value = key;
    node.append(option);
  }
  node.value = value;
  node.addEventListener("change", () => onChange(node.value));
  return node;
}

function button(text, onClick, className) {
  const node = el("button", "btn small" + (className ? " " + className : ""), text);
  node.type = "button";
  node.addEventListener("click", () => { onClick(); render(); });
  return node;
}

function checkbox(label, checked, onChange) {
  const wrap = el("label", "pf-check");
  const box = el("input");
  box.type = "checkbox";
  box.checked = checked;
  box.addEventListener("change", () => onChange(box.checked));
  wrap.append(box, el("span", "", label));
  return wrap;
}

/* ---- the plan ---- */

function render() {
  const box = el("div", "pf");
  box.dataset.loc = "";
  const head = el("div", "pf-grid");
  head.append(
    field("计划名称", textInput(draft.name, (v) => { draft.name = v; }), "name"),
    field("计划代码", textInput(draft.code, (v) => { draft.code = v; },
      { disabled: !newPlan, placeholder: "如 hernia_repair（小写英文）" }), "code"),
    field("起算日", select([["discharge", "出院日"], ["surgery", "手术日"]], draft.anchor, (v) => { draft.anchor = v; }), "anchor"),
  );
  box.append(head, renderProcedures(),
    field("审核说明（谁编写、谁确认了阈值和建议）", textInput(draft.review_note, (v) => { draft.review_note = v; }, { multiline: true }), "review_note", "pf-wide"));
  const points = el("div", "pf-points");
  points.dataset.loc = "time_points";
  draft.time_points.forEach((point, index) => points.append(renderPoint(point, index)));
  box.append(points, button("＋ 添加时间点", () => {
    const last = draft.time_points[draft.time_points.length - 1];
    draft.time_points.push({ day: last ? last.day + 1 : 1, hour: last ? last.hour : 10, questionnaire: { questions: [] } });
  }, "pf-add-point"));
  root.replaceChildren(box);
}

function renderProcedures() {
  const section = el("fieldset", "pf-procedures");
  section.dataset.loc = "procedures";
  section.append(el("legend", "", "适用手术 / 诊断"));
  draft.procedures.forEach((procedure, index) => {
    const loc = "procedures." + index;
    const row = el("div", "pf-row pf-procedure");
    row.dataset.loc = loc;
    row.append(
      field("名称", textInput(procedure.text, (v) => { procedure.text = v; }), loc + ".text"),
      field("别名（用、分隔）", textInput(procedure.synonyms.join("、"), (v) => { procedure.synonyms = words(v); }), loc + ".synonyms"),
      field("编码（ICD-9-CM-3，用、分隔）", textInput(procedure.codes.join("、"), (v) => { procedure.codes = words(v); }), loc + ".codes"),
      button("删除", () => { draft.procedures.splice(index, 1); }, "ghost"),
    );
    section.append(row);
  });
  section.append(button("＋ 添加手术", () => { draft.procedures.push({ text: "", synonyms: [], codes: [] }); }));
  return section;
}

/* ---- time points ---- */

function renderPoint(point, index) {
  const loc = "time_points." + index;
  const section = el("fieldset", "pf-point");
  section.dataset.loc = loc;
  section.dataset.point = String(index);
  const head = el("div", "pf-row pf-point-head");
  section.append(el("legend", "", "时间点 " + (index + 1)));
  head.append(
    field("第几天", textInput(point.day, (v) => { point.day = numberOrNull(v); }, { type: "number" }), loc + ".day", "pf-narrow"),
    field("几点（0–23）", textInput(point.hour, (v) => { point.hour = numberOrNull(v); }, { type: "number" }), loc + ".hour", "pf-narrow"),
    el("div", "grow"),
    button("复制整个时间点到下一个", () => copyPointForward(index)),
    button("删除时间点", () => { draft.time_points.splice(index, 1); }, "ghost"),
  );
  const questions = el("div", "pf-questions");
  questions.dataset.loc = loc + ".questionnaire.questions";
  questionsOf(point).forEach((question, qIndex) => questions.append(renderQuestion(point, index, question, qIndex)));
  section.append(head, questions, button("＋ 添加问题", () => {
    questionsOf(point).push({
      code: freeCode("q", allQuestionCodes()), text: "", type: "scale", unit: "分", minimum: null, maximum: null,
      choices: [], flags: [], enable_when: null, hint: "",
    });
  }, "pf-add-question"));
  return section;
}

/** The time point after `index`, made (one day later) when there is none. */
function nextPoint(index) {
  if (index + 1 < draft.time_points.length) return draft.time_points[index + 1];
  const point = draft.time_points[index];
  const next = { day: point.day + 1, hour: point.hour, questionnaire: { questions: [] } };
  draft.time_points.push(next);
  return next;
}

/** The whole time point again after it, a day later: the clinician sets its day and changes what differs. */
function copyPointForward(index) {
  const point = draft.time_points[index];
  const copy = clone(point);
  copy.day = point.day + 1;
  draft.time_points.splice(index + 1, 0, copy);
}

/** The question into the next time point, with its code: the same question on another day (replacing it there). */
function copyQuestionForward(pointIndex, question) {
  const next = nextPoint(pointIndex);
  const list = questionsOf(next);
  const at = list.findIndex((q) => q.code === question.code);
  if (at >= 0) list.splice(at, 1, clone(question));
  else list.push(clone(question));
}

/* ---- questions ---- */

function changeType(question, type) {
  const wasChoice = CHOICE_TYPES.includes(question.type);
  question.type = type;
  question.minimum = null;
  question.maximum = null;
  question.unit = type === "scale" ? "分" : type === "number" ? question.unit : "";
  if (!CHOICE_TYPES.includes(type)) question.choices = [];
  else if (!wasChoice || question.choices.length < 2) {
    question.choices = [{ code: "c1", text: "", synonyms: [] }, { code: "c2", text: "", synonyms: [] }];
  }
  // A rule's test depends on the type: keep its level and advice, set the test again.
  question.flags = type === "free_text" ? [] : question.flags.map((rule) => emptyRule(type, rule));
}

function emptyRule(type, from) {
  const rule = { flag: from ? from.flag : "amber", at_least: null, at_most: null, equals: null, any_of: [], advice: from ? from.advice : "" };
  if (type === "yes_no") rule.equals = true;
  return rule;
}

function renderQuestion(point, pointIndex, question, index) {
  const loc = "time_points." + pointIndex + ".questionnaire.questions." + index;
  const box = el("div", "pf-question");
  box.dataset.loc = loc;
  box.dataset.question = question.code;
  const head = el("div", "pf-row");
  head.append(
    el("span", "pf-number", String(index + 1)),
    field("问题", textInput(question.text, (v) => { question.text = v; }), loc + ".text", "pf-grow"),
    field("类型", select(TYPES, question.type, (v) => { changeType(question, v); render(); }), loc + ".type"),
    field("代码", codeInput(question.code, (old, v) => {
      question.code = v;
      box.dataset.question = v;
      for (const later of questionsOf(point)) if (later.enable_when && later.enable_when.question === old) later.enable_when.question = v;
    }), loc + ".code", "pf-code"),
  );
  const tools = el("div", "pf-row pf-tools");
  tools.append(
    button("复制到下一个时间点", () => copyQuestionForward(pointIndex, question)),
    button("上移", () => { if (index > 0) questionsOf(point).splice(index - 1, 0, ...questionsOf(point).splice(index, 1)); }, "ghost"),
    button("删除问题", () => { questionsOf(point).splice(index, 1); }, "ghost"),
  );
  box.append(head);
  if (question.type === "number") {
    const range = el("div", "pf-row");
    range.append(
      field("单位", textInput(question.unit, (v) => { question.unit = v; }, { placeholder: "如 °C" }), loc + ".unit", "pf-narrow"),
      field("最小值", textInput(question.minimum, (v) => { question.minimum = numberOrNull(v); }, { type: "number" }), loc + ".minimum", "pf-narrow"),
      field("最大值", textInput(question.maximum, (v) => { question.maximum = numberOrNull(v); }, { type: "number" }), loc + ".maximum", "pf-narrow"),
    );
    box.append(range);
  }
  if (CHOICE_TYPES.includes(question.type)) box.append(renderChoices(point, question, loc));
  box.append(renderRules(question, loc), renderCondition(point, question, index, loc),
    field("重问提示", textInput(question.hint, (v) => { question.hint = v; }, { placeholder: "患者的回答读不懂时，重问时附上的提示" }), loc + ".hint", "pf-wide"),
    tools);
  return box;
}

function renderChoices(point, question, loc) {
  const section = el("div", "pf-choices");
  section.dataset.loc = loc + ".choices";
  section.append(el("div", "pf-label", "选项"));
  question.choices.forEach((choice, index) => {
    const cloc = loc + ".choices." + index;
    const row = el("div", "pf-row pf-choice");
    row.dataset.loc = cloc;
    row.append(
      el("span", "pf-number", String(index + 1)),
      field("选项文字", textInput(choice.text, (v) => { choice.text = v; }), cloc + ".text", "pf-grow"),
      field("代码", codeInput(choice.code, (old, v) => {
        choice.code = v;
        const rename = (codes) => codes.map((c) => (c === old ? v : c));
        for (const rule of question.flags) rule.any_of = rename(rule.any_of);
        for (const later of questionsOf(point)) {
          const condition = later.enable_when;
          if (condition && condition.question === question.code) condition.any_of = rename(condition.any_of);
        }
      }), cloc + ".code", "pf-code"),
      field("患者可能的说法（用、分隔）", textInput(choice.synonyms.join("、"), (v) => { choice.synonyms = words(v); }), cloc + ".synonyms"),
      button("删除", () => {
        question.choices.splice(index, 1);
        for (const rule of question.flags) rule.any_of = rule.any_of.filter((c) => c !== choice.code);
      }, "ghost"),
    );
    section.append(row);
  });
  section.append(button("＋ 添加选项", () => {
    question.choices.push({ code: freeCode("c", question.choices.map((c) => c.code)), text: "", synonyms: [] });
  }));
  return section;
}

/* ---- flag rules: the test follows the question's type ---- */

function renderRules(question, loc) {
  const section = el("div", "pf-rules");
  section.dataset.loc = loc + ".flags";
  section.append(el("div", "pf-label", "提醒规则"));
  if (question.type === "free_text") {
    section.append(el("div", "hint", "文字回答由危急征象筛查判断，不设规则。"));
    return section;
  }
  question.flags.forEach((rule, index) => {
    const rloc = loc + ".flags." + index;
    const row = el("div", "pf-row pf-rule flag-" + rule.flag);
    row.dataset.loc = rloc;
    row.append(field("级别", select(LEVELS, rule.flag, (v) => { rule.flag = v; row.className = "pf-row pf-rule flag-" + v; }), rloc + ".flag"));
    if (NUMERIC_TYPES.includes(question.type)) {
      row.append(
        field("≥", textInput(rule.at_least, (v) => { rule.at_least = numberOrNull(v); }, { type: "number" }), rloc + ".at_least", "pf-narrow"),
        field("≤", textInput(rule.at_most, (v) => { rule.at_most = numberOrNull(v); }, { type: "number" }), rloc + ".at_most", "pf-narrow"),
      );
    } else if (question.type === "yes_no") {
      row.append(field("回答", select([["true", "是"], ["false", "否"]], String(rule.equals !== false),
        (v) => { rule.equals = v === "true"; }), rloc + ".equals"));
    } else {
      const chosen = el("div", "pf-any-of");
      chosen.dataset.loc = rloc + ".any_of";
      chosen.append(el("span", "pf-label", "选了"));
      for (const choice of question.choices) {
        chosen.append(checkbox(choice.text || choice.code, rule.any_of.includes(choice.code), (on) => {
          rule.any_of = on ? [...rule.any_of, choice.code] : rule.any_of.filter((c) => c !== choice.code);
        }));
      }
      row.append(chosen);
    }
    row.append(
      field("告诉患者（建议）", textInput(rule.advice, (v) => { rule.advice = v; }, { multiline: true }), rloc + ".advice", "pf-grow"),
      button("删除", () => { question.flags.splice(index, 1); }, "ghost"),
    );
    section.append(row);
  });
  section.append(button("＋ 添加规则", () => { question.flags.push(emptyRule(question.type)); }));
  return section;
}

/* ---- a condition: ask only when an earlier question's answer matched ---- */

function renderCondition(point, question, index, loc) {
  const section = el("div", "pf-condition");
  const cloc = loc + ".enable_when";
  section.dataset.loc = cloc;
  const earlier = questionsOf(point).slice(0, index).filter((q) => q.type !== "free_text");
  const condition = question.enable_when;
  section.append(checkbox("仅在前面某题的回答符合时才问", condition !== null && condition !== undefined, (on) => {
    question.enable_when = on && earlier.length ? conditionOn(earlier[earlier.length - 1]) : null;
    render();
  }));
  if (!condition) {
    if (!earlier.length) section.append(el("span", "hint", "（前面没有可引用的问题）"));
    return section;
  }
  const target = questionsOf(point).find((q) => q.code === condition.question);
  const row = el("div", "pf-row");
  // Options by position, not code: a code renamed while the form is open stays selectable.
  const at = earlier.findIndex((q) => q.code === condition.question);
  const options = earlier.map((q, i) => [String(i), q.text || q.code]);
  if (at < 0) options.unshift(["", "（请选择）"]);
  row.append(field("当问题", select(options, at < 0 ? "" : String(at),
    (v) => { if (v !== "") { question.enable_when = conditionOn(earlier[Number(v)]); render(); } }), cloc + ".question"));
  if (target && target.type === "yes_no") {
    row.append(field("回答", select([["true", "是"], ["false", "否"]], String(condition.equals !== false),
      (v) => { condition.equals = v === "true"; }), cloc + ".equals"));
  } else if (target && CHOICE_TYPES.includes(target.type)) {
    const chosen = el("div", "pf-any-of");
    chosen.dataset.loc = cloc + ".any_of";
    chosen.append(el("span", "pf-label", "选了"));
    for (const choice of target.choices) {
      chosen.append(checkbox(choice.text || choice.code, condition.any_of.includes(choice.code), (on) => {
        condition.any_of = on ? [...condition.any_of, choice.code] : condition.any_of.filter((c) => c !== choice.code);
      }));
    }
    row.append(chosen);
  } else {
    row.append(field("≥", textInput(condition.at_least, (v) => { condition.at_least = numberOrNull(v); }, { type: "number" }), cloc + ".at_least", "pf-narrow"));
  }
  section.append(row);
  return section;
}

function conditionOn(earlier) {
  const condition = { question: earlier.code, equals: null, any_of: [], at_least: null };
  if (earlier.type === "yes_no") condition.equals = true;
  else if (NUMERIC_TYPES.includes(earlier.type)) condition.at_least = earlier.type === "scale" ? 4 : earlier.minimum;
  return condition;
}

/* ---- the server's problems, at their fields ---- */

/** Puts each problem next to the element whose `data-loc` is its location (or the nearest enclosing
 * one); returns the problems that found no place (shown above the form by the caller). */
export function showProblems(problems) {
  clearProblems();
  const unplaced = [];
  for (const problem of problems) {
    const loc = problem.loc.map(String);
    let target = null;
    for (let length = loc.length; length >= 0 && target === null; length -= 1) {
      const key = loc.slice(0, length).join(".");
      target = root.querySelector('[data-loc="' + CSS.escape(key) + '"]');
    }
    if (target === null || target.dataset.loc === "") {
      unplaced.push(problem);
      continue;
    }
    const note = el("div", "pf-problem", problem.msg);
    note.setAttribute("role", "alert");
    target.classList.add("pf-invalid");
    if (target.matches("input, select, textarea")) {
      // After the field's label (not in it, so the field keeps its name), and read as its description.
      problemCount += 1;
      note.id = "pf-problem-" + problemCount;
      target.setAttribute("aria-invalid", "true");
      target.setAttribute("aria-describedby", note.id);
      target.closest(".pf-field").after(note);
    } else {
      target.prepend(note);
    }
  }
  const first = root.querySelector(".pf-problem");
  if (first) first.scrollIntoView({ block: "center" });
  return unplaced;
}

export function clearProblems() {
  if (root === null) return;
  for (const note of root.querySelectorAll(".pf-problem")) note.remove();
  for (const node of root.querySelectorAll(".pf-invalid")) {
    node.classList.remove("pf-invalid");
    node.removeAttribute("aria-invalid");
    node.removeAttribute("aria-describedby");
  }
}
