/* Canned replies: search, insert into the reply box, and (supervisors) add and delete. */

import { api, errorText } from "./api.js";
import { $, el, toast } from "./dom.js";
import { isSupervisor, state } from "./state.js";

export async function loadCanned() {
  try {
    state.canned = await api("GET", "/canned-replies");
  } catch (_) {
    state.canned = [];
  }
  renderCanned();
}

/** Shows the replies matching the filter; answers them, best first. */
export function renderCanned() {
  const filter = $("canned-filter").value.trim().toLowerCase();
  const matches = state.canned.filter((c) => !filter ||
    c.title.toLowerCase().includes(filter) || c.text.toLowerCase().includes(filter));
  const nodes = matches.map((reply, index) => {
    const li = el("li", index === 0 ? "active" : "");
    li.dataset.cannedId = reply.id;
    const body = el("div", "c-body");
    body.append(el("div", "c-title", reply.title), el("div", "c-text", reply.text));
    li.append(body);
    li.addEventListener("click", () => insertCanned(reply));
    if (isSupervisor()) {
      const del = el("button", "c-del", "✕");
      del.type = "button";
      del.title = "删除";
      del.addEventListener("click", (event) => { event.stopPropagation(); deleteCanned(reply); });
      li.append(del);
    }
    return li;
  });
  if (!nodes.length) nodes.push(el("li", "p-empty", state.canned.length ? "没有匹配的快捷回复" : "暂无快捷回复"));
  $("canned-list").replaceChildren(...nodes);
  return matches;
}

export function insertCanned(reply) {
  const textarea = $("reply");
  textarea.setRangeText(reply.text, textarea.selectionStart, textarea.selectionEnd, "end");
  $("canned").hidden = true;
  textarea.focus();
}

async function deleteCanned(reply) {
  try {
    await api("DELETE", "/canned-replies/" + encodeURIComponent(reply.id));
    state.canned = state.canned.filter((c) => c.id !== reply.id);
    renderCanned();
  } catch (error) {
    toast(errorText(error), "error");
  }
}

export async function addCanned(event) {
  event.preventDefault();
  const title = $("canned-title").value.trim();
  const text = $("canned-text").value.trim();
  if (!title || !text) return;
  try {
    state.canned.push(await api("POST", "/canned-replies", { title, text }));
    $("canned-title").value = "";
    $("canned-text").value = "";
    renderCanned();
  } catch (error) {
    toast(errorText(error), "error");
  }
}

export function toggleCanned(force) {
  const box = $("canned");
  box.hidden = force === undefined ? !box.hidden : !force;
  if (!box.hidden) {
    $("canned-filter").value = "";
    renderCanned();
    $("canned-filter").focus();
  }
}
