// The follow-up questionnaire page: shows the one question the server gives and posts the answer.
// Which question comes next, whether an answer is allowed and what it means are decided by the
// server (crm_backend/followups/page.py); nothing here knows a plan's rules. Text goes in with
// textContent only.

const base = window.location.pathname.replace(/\/+$/, "");
const $ = (id) => document.getElementById(id);
let current = null;
let busy = false;

function el(tag, props = {}, text = "") {
  const node = document.createElement(tag);
  Object.assign(node, props);
  if (text) node.textContent = text;
  return node;
}

function setBusy(value) {
  busy = value;
  for (const button of document.querySelectorAll("button")) button.disabled = value;
}

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
}

async function call(path, options = {}) {
  let response;
  try {
    response = await fetch(base + path, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json" },
      ...options,
    });
  } catch {
    return { status: 0, body: { detail: "网络不稳定，请稍后再试" } };
  }
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  return { status: response.status, body };
}

function heading(state) {
  $("who").textContent = `${state.patient} 的术后随访`;
  $("plan").textContent = `${state.plan} · ${state.day_label}`;
}

function showDone(state) {
  heading(state);
  $("loading").hidden = true;
  $("question").hidden = true;
  $("done").hidden = false;
  $("done-message").textContent = state.message;
  const outcome = $("outcome");
  if (state.outcome) {
    outcome.className = `outcome flag-${state.outcome.flag}`;
    outcome.dataset.flag = state.outcome.flag;
    $("outcome-text").textContent = state.outcome.text;
    outcome.hidden = false;
  } else {
    outcome.hidden = true;
  }
}

function choiceButton(text, pressed, onTap) {
  const button = el("button", { type: "button", className: "choice" }, text);
  button.setAttribute("aria-pressed", pressed ? "true" : "false");
  button.addEventListener("click", onTap);
  return button;
}

function renderAnswerArea(question, next) {
  const area = $("answer-area");
  area.replaceChildren();
  next.hidden = true;
  next.textContent = "下一题";
  next.onclick = null;
  if (question.type === "scale") {
    const grid = el("div", { className: "scale" });
    for (let n = 0; n <= 10; n += 1) {
      grid.append(choiceButton(String(n), question.value === n, () => send(n)));
    }
    const ends = el("div", { className: "scale-ends" });
    ends.append(el("span", {}, "0 不痛"), el("span", {}, "10 最痛"));
    area.append(grid, ends);
  } else if (question.type === "yes_no") {
    const row = el("div", { className: "yes-no" });
    row.append(
      choiceButton("是", question.value === true, () => send(true)),
      choiceButton("否", question.value === false, () => send(false)),
    );
    area.append(row);
  } else if (question.type === "single_choice") {
    for (const choice of question.choices) {
      area.append(choiceButton(choice.text, question.value === choice.code, () => send(choice.code)));
    }
  } else if (question.type === "multiple_choice") {
    const chosen = new Set(Array.isArray(question.value) ? question.value : []);
    const boxes = [];
    const relabel = () => {
      next.textContent = boxes.some((box) => box.checked) ? "下一题" : "以上都没有";
    };
    for (const choice of question.choices) {
      const label = el("label", { className: "choice check" });
      const box = el("input", { type: "checkbox", value: choice.code, checked: chosen.has(choice.code) });
      box.addEventListener("change", relabel);
      boxes.push(box);
      label.append(box, el("span", {}, choice.text));
      area.append(label);
    }
    relabel();
    next.hidden = false;
    next.onclick = () => send(boxes.filter((box) => box.checked).map((box) => box.value));
  } else if (question.type === "number") {
    const row = el("div", { className: "number-row" });
    const input = el("input", {
      type: "text",
      inputMode: "decimal",
      id: "number-input",
      autocomplete: "off",
      value: question.value ?? "",
    });
    input.setAttribute("aria-label", question.text);
    row.append(input, el("span", { className: "unit" }, question.unit));
    area.append(row, el("p", { className: "progress" }, question.hint));
    next.hidden = false;
    const submit = () => {
      const text = input.value.trim();
      // A plain number goes as a number; anything else as typed, and the server says what it needs.
      send(/^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text);
    };
    next.onclick = submit;
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") submit();
    });
  } else {
    const box = el("textarea", { id: "text-input", maxLength: 1000, value: question.value ?? "" });
    box.setAttribute("aria-label", question.text);
    area.append(box);
    next.hidden = false;
    next.onclick = () => send(box.value);
  }
}

function show(state) {
  if (state.status !== "open") {
    showDone(state);
    return;
  }
  current = state;
  heading(state);
  $("loading").hidden = true;
  $("done").hidden = true;
  $("question").hidden = false;
  const question = state.question;
  $("progress").textContent = state.answered ? `已回答 ${state.answered} 题` : "";
  $("question-text").textContent = question.text;
  showError("");
  renderAnswerArea(question, $("next"));
  const back = $("back");
  back.hidden = !state.previous;
  back.onclick = () => load(state.previous);
  window.scrollTo(0, 0);
}

async function load(question) {
  if (busy) return;
  setBusy(true);
  const query = question ? `?question=${encodeURIComponent(question)}` : "";
  const { status, body } = await call(`/state${query}`);
  setBusy(false);
  if (status === 200) show(body);
  else failed(body);
}

function failed(body) {
  $("loading").hidden = false;
  $("question").hidden = true;
  $("loading").textContent = body.detail || "页面加载失败，请稍后再试";
}

async function send(value) {
  if (busy || !current) return;
  setBusy(true);
  const { status, body } = await call("/answers", {
    method: "POST",
    body: JSON.stringify({ question: current.question.code, value }),
  });
  setBusy(false);
  if (status === 200) show(body);
  else if (status === 409 && body.state) showDone(body.state);
  else if (status === 422 || status === 400) showError(body.detail === "invalid request" ? current.question.hint : body.detail);
  else if (status === 404 || status === 410) failed(body);
  else showError(body.detail || "网络不稳定，请稍后再试");
}

load(null);
