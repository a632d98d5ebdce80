/* Conversation labels in the console: chips on queue cards, the label bar of the open conversation
 * (add, create, remove), the queue's label filter, and the live label events.
 * (js/labels.js is something else: the words for the API's codes.) */

import { api, errorText } from "./api.js";
import { $, el, toast } from "./dom.js";
import { same } from "./format.js";
import { renderQueues } from "./queues.js";
import { state } from "./state.js";

const MAX_CHARS = 16;

/** The hospital's label set, by name, and the queue filter (a label id, or null for all). */
export const labelState = { all: [], filter: null };

function byName(a, b) { return a.name.localeCompare(b.name, "zh-CN") || a.id - b.id; }

function remember(label) {
  if (!labelState.all.some((l) => l.id === label.id)) labelState.all.push(label);
  labelState.all.sort(byName);
}

export async function loadLabels() {
  try {
    labelState.all = (await api("GET", "/labels")).sort(byName);
  } catch (error) {
    if (error.status !== 401) toast("标签加载失败：" + errorText(error), "error");
    return;
  }
  renderLabelFilter();
  renderConversationLabels();
}

export function resetLabels() {
  labelState.all = [];
  labelState.filter = null;
}

/** Chips for a queue card (or nothing when the chat has no labels). */
export function labelChips(labels) {
  const box = el("div", "label-chips");
  for (const label of labels || []) box.append(el("span", "label-chip", label.name));
  return box;
}

/** The queue's filter: true if the item carries the chosen label (or no label is chosen). */
export function passesLabelFilter(item) {
  return labelState.filter === null || (item.labels || []).some((l) => same(l.id, labelState.filter));
}

function renderLabelFilter() {
  const select = $("label-filter");
  const options = [el("option", "", "全部标签")];
  options[0].value = "";
  for (const label of labelState.all) {
    const option = el("option", "", label.name);
    option.value = String(label.id);
    options.push(option);
  }
  select.replaceChildren(...options);
  if (labelState.filter !== null && !labelState.all.some((l) => same(l.id, labelState.filter))) labelState.filter = null;
  select.value = labelState.filter === null ? "" : String(labelState.filter);
}

/** The open conversation's labels, each removable, and the field that adds one. */
export function renderConversationLabels() {
  const bar = $("conv-labels");
  if (state.current === null) { bar.replaceChildren(); return; }
  const current = state.current.labels || [];
  const chips = current.map((label) => {
    const chip = el("span", "label-chip", label.name);
    chip.dataset.labelId = label.id;
    const remove = el("button", "label-remove", "×");
    remove.type = "button";
    remove.title = "移除标签 " + label.name;
    remove.setAttribute("aria-label", "移除标签 " + label.name);
    remove.addEventListener("click", () => changeLabel("DELETE", label));
    chip.append(remove);
    return chip;
  });
  const list = el("datalist");
  list.id = "label-options";
  for (const label of labelState.all) {
    if (!current.some((l) => l.id === label.id)) list.append(Object.assign(el("option"), { value: label.name }));
  }
  const form = el("form", "label-add");
  const input = el("input");
  input.id = "label-input";
  input.setAttribute("list", "label-options");
  input.maxLength = MAX_CHARS;
  input.placeholder = "添加标签";
  input.setAttribute("aria-label", "添加标签");
  const add = el("button", "btn small", "添加");
  add.type = "submit";
  form.append(input, list, add);
  form.addEventListener("submit", (event) => { event.preventDefault(); addByName(input.value); });
  bar.replaceChildren(el("span", "label-title", "标签"), ...chips, form);
}

async function addByName(raw) {
  const name = raw.trim().replace(/\s+/g, " ");
  if (!name || state.current === null) return;
  const key = name.toLowerCase();
  let label = labelState.all.find((l) => l.name.toLowerCase() === key);
  try {
    if (label === undefined) {
      label = await api("POST", "/labels", { name });
      remember(label);
      renderLabelFilter();
    }
  } catch (error) {
    // 409: the same name written another way (full-width letters, other case) already exists.
    toast(error.status === 409 ? "已有同名标签，未重复创建" : "标签未创建：" + errorText(error), "error");
    return;
  }
  await changeLabel("PUT", label);
}

async function changeLabel(method, label) {
  const view = state.current;
  if (view === null) return;
  const path = "/conversations/" + encodeURIComponent(view.conversation.id) + "/labels/" + encodeURIComponent(label.id);
  try {
    applyLabels(await api(method, path));
  } catch (error) {
    toast((method === "PUT" ? "标签未添加：" : "标签未移除：") + errorText(error), "error");
  }
}

/** A conversation's labels changed (our answer or another console's event): queue and view follow. */
function applyLabels({ conversation_id: conversationId, labels }) {
  for (const item of state.items.values()) {
    if (same(item.conversation_id, conversationId)) item.labels = labels;
  }
  if (state.current !== null && same(state.current.conversation.id, conversationId)) {
    state.current.labels = labels;
    if (state.current.escalation !== null) state.current.escalation.labels = labels;
    renderConversationLabels();
  }
  renderQueues();
}

/** `conversation.labels` and `label.created` events. */
export function onLabelEvent(event) {
  if (event.type === "label.created") {
    remember(event.label);
    renderLabelFilter();
    renderConversationLabels();
  } else if (event.type === "conversation.labels") {
    applyLabels(event);
  }
}

export function wireLabels() {
  $("label-filter").addEventListener("change", (event) => {
    labelState.filter = event.target.value === "" ? null : Number(event.target.value);
    renderQueues();
  });
}
