/* "正在输入…": telling colleagues this staff member is typing, and showing who else is. */

import { api } from "./api.js";
import { $ } from "./dom.js";
import { same } from "./format.js";
import { state } from "./state.js";

const TYPING_SEND_INTERVAL_MS = 3000;
const TYPING_SHOW_MS = 6000;

/** Called on input in the reply box; at most one request every few seconds. */
export function sendTyping() {
  const view = state.current;
  if (view === null || state.mode !== "reply" || !$("reply").value.trim()) return;
  const id = view.conversation.id;
  const now = Date.now();
  if (state.lastTyping.id === id && now - state.lastTyping.at < TYPING_SEND_INTERVAL_MS) return;
  state.lastTyping = { id, at: now };
  api("POST", "/conversations/" + encodeURIComponent(id) + "/typing").catch(() => { /* best effort */ });
}

function typingKey(who) {
  return who.kind === "patient" ? "patient" : "staff:" + who.id;
}

/** A typing event: {"conversation_id", "who": {"kind": "agent"|"patient", "id"?, "display_name"?}}. */
export function noteTyping(conversationId, who) {
  if (who.kind === "agent" && state.me !== null && who.id === state.me.id) return;
  const label = who.kind === "patient" ? "患者正在输入…" : who.display_name + " 正在输入…";
  const people = state.typing.get(conversationId) || new Map();
  people.set(typingKey(who), { label, until: Date.now() + TYPING_SHOW_MS });
  state.typing.set(conversationId, people);
  renderTyping();
}

/** Whoever just sent a message has stopped typing. */
export function stoppedTyping(conversationId, message) {
  const people = state.typing.get(conversationId);
  if (!people) return;
  if (message.sender_type === "patient") people.delete("patient");
  else if (message.agent !== null) people.delete(typingKey({ kind: "agent", id: message.agent.id }));
}

export function renderTyping() {
  const box = $("typing");
  if (state.current === null) { box.textContent = ""; return; }
  const now = Date.now();
  const labels = [];
  for (const [conversationId, people] of state.typing) {
    for (const [who, entry] of people) if (entry.until < now) people.delete(who);
    if (!people.size) { state.typing.delete(conversationId); continue; }
    if (same(conversationId, state.current.conversation.id)) for (const entry of people.values()) labels.push(entry.label);
  }
  box.textContent = labels.join("  ");
}
