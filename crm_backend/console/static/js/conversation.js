/* The middle column: one conversation's messages and notes, the composer, resolving. */

import { api, errorText } from "./api.js";
import { $, confirmDialog, el, toast } from "./dom.js";
import { dayLabel, formatTime, parseTime, same } from "./format.js";
import { CONVERSATION_STATUS, ESCALATION_STATUS, MSG_TYPE, PRIORITY, SENDER, reasonText } from "./labels.js";
import { renderConversationLabels } from "./labels-ui.js";
import { showPatient } from "./patient-panel.js";
import { renderQueues, upsertItem } from "./queues.js";
import { forgetWindow, loadWindow, startMessage, windowOf, windowRefusal } from "./reply-window.js";
import { state } from "./state.js";
import { loadTriageDecisions } from "./triage-decisions.js";
import { renderTyping } from "./typing.js";

export function closeConversation() {
  state.current = null;
  state.currentId = null;
  $("conv-empty").hidden = false;
  $("conv-body").hidden = true;
  $("patient-panel").replaceChildren(el("div", "empty-state small", "选择会话后显示患者信息"));
  forgetWindow();
}

export async function openConversation(conversationId) {
  const switching = !same(state.currentId, conversationId);
  state.currentId = conversationId;
  state.unread.delete(conversationId);
  for (const node of $("queue-list").querySelectorAll(".qitem")) {
    node.classList.toggle("selected", same(node.dataset.conversationId, conversationId));
  }
  let view;
  try {
    view = await api("GET", "/conversations/" + encodeURIComponent(conversationId));
  } catch (error) {
    if (same(state.currentId, conversationId)) toast("会话加载失败：" + errorText(error), "error");
    return;
  }
  if (!same(state.currentId, conversationId)) return; // the user moved on meanwhile
  state.current = view;
  $("conv-empty").hidden = true;
  $("conv-body").hidden = false;
  if (switching) {
    $("reply").value = "";
    setMode("reply");
    $("canned").hidden = true;
  }
  renderConversationHeader();
  renderConversationLabels();
  loadTriageDecisions(conversationId);
  renderMessages(true);
  updateComposerState();
  renderTyping();
  showPatient(view.patient.id, view.conversation.id, openConversation, view.patient);
  if (switching) forgetWindow();
  loadWindow(conversationId).then(() => { if (same(state.currentId, conversationId)) updateComposerState(); });
  renderQueues();
  if (switching) $("reply").focus();
}

/** A newer QueueItem for the conversation on screen (claimed, transferred, resolved...). */
export function refreshConversationEscalation(item) {
  state.current.escalation = item;
  renderConversationHeader();
  updateComposerState();
}

function patientLabel() {
  return state.current === null ? "患者" : state.current.patient.label;
}

function renderConversationHeader() {
  const view = state.current;
  const esc = view.escalation;
  $("conv-patient").textContent = patientLabel();
  const status = $("conv-status");
  if (esc !== null) {
    status.textContent = ESCALATION_STATUS[esc.status];
    status.className = "status-tag " + esc.status;
  } else {
    status.textContent = CONVERSATION_STATUS[view.conversation.status];
    status.className = "status-tag";
  }
  const open = esc !== null && esc.status !== "resolved";
  $("conv-claim").hidden = !(open && esc.status === "queued");
  $("conv-transfer").disabled = !open;
  $("conv-resolve").disabled = !open;

  const banner = $("conv-reason");
  banner.hidden = esc === null;
  if (esc !== null) {
    banner.replaceChildren(
      el("span", "badge " + esc.priority, PRIORITY[esc.priority]),
      el("span", "label", "转人工原因"),
      el("span", "reason", reasonText(esc.reason) || "（未注明）"),
      el("span", "label", "· " + esc.team.name),
      el("span", "label", "· " + (esc.assigned_to === null ? "未分配" : "处理人：" + esc.assigned_to.display_name)),
      el("span", "label", "· " + formatTime(esc.created_at) + " 转入"),
    );
    banner.title = "转人工原因：" + reasonText(esc.reason); // full text on hover when it is cut short
    if (esc.summary) {
      // What the patient said that raised it (a safety risk in a complaint nobody confirmed yet).
      banner.append(el("div", "summary", "患者原话：" + esc.summary));
      banner.title += "\n患者原话：" + esc.summary;
    }
  }
}

/** What a message says; other types than text are named, e.g. [图片]. */
export function messageText(message) {
  if (message.msg_type === "text") return message.content;
  const label = MSG_TYPE[message.msg_type] || "[" + message.msg_type + "]";
  return message.content ? label + " " + message.content : label;
}

function deliveryErrorText(error) {
  const text = error === null ? "" : error;
  if (/45015|48|out of time|time limit/i.test(text)) return text + "（已超过 48 小时回复时限，患者再次发消息后才能回复）";
  if (/45047|limit/i.test(text)) return text + "（回复条数已达上限，请等待患者回复）";
  return text;
}

function deliveryTag(message) {
  switch (message.delivery_status) {
    case "failed":
    case "undeliverable": {
      const detail = deliveryErrorText(message.delivery_error);
      return el("span", "delivery failed", "发送失败" + (detail ? "：" + detail : ""));
    }
    case "sent": return el("span", "delivery sent", "已发送");
    case "pending":
    case "sending": return el("span", "delivery pending", "发送中…");
    default: return null;
  }
}

/** One chat bubble. Exposed for tests; the message content goes in as text only. */
export function renderMessage(message) {
  const sender = message.sender_type;
  const failed = message.delivery_status === "failed" || message.delivery_status === "undeliverable";
  const node = el("div", "msg " + sender + (failed ? " failed" : ""));
  node.dataset.messageId = message.id;
  let who = SENDER[sender];
  if (sender === "agent" && message.agent !== null) who = message.agent.display_name;
  else if (sender === "patient") who = patientLabel();
  node.append(el("div", "who", who));
  node.append(el("div", "bubble", messageText(message)));
  const flags = message.red_flags || [];
  if (flags.length) {
    // Red flags the screen found (the patient was told to call 120): read this first.
    node.classList.add("urgent");
    node.append(el("div", "urgent-mark", "⚠ 危急征象：" + flags.join("、")));
  }
  const meta = el("div", "meta");
  meta.append(el("span", "time", formatTime(message.created_at)));
  if (sender === "agent") {
    const tag = deliveryTag(message);
    if (tag !== null) meta.append(tag);
  }
  node.append(meta);
  return node;
}

/** One internal note (yellow). Exposed for tests. */
export function renderNote(note) {
  const node = el("div", "note");
  node.dataset.noteId = note.id;
  node.append(el("div", "who", "内部备注 · " + note.author.display_name + " · " + formatTime(note.created_at)));
  node.append(el("div", "text", note.text));
  return node;
}

const byId = (a, b) => a.id - b.id;

/**
 * Messages in the server's order (ids), notes placed among them by time. Message times cannot order
 * the messages themselves: a patient's time is WeChat's whole second, so it can be earlier than the
 * answer to their previous message.
 */
function timeline(view) {
  const messages = [...view.messages].sort(byId);
  const notes = view.notes
    .map((n) => ({ at: parseTime(n.created_at), kind: "note", data: n }))
    .sort((a, b) => a.at - b.at || byId(a.data, b.data));
  const entries = [];
  let latest = 0;
  let next = 0;
  for (const message of messages) {
    const at = parseTime(message.created_at);
    latest = Math.max(latest, at);
    while (next < notes.length && notes[next].at < latest) entries.push(notes[next++]);
    entries.push({ at, kind: "message", data: message });
  }
  return entries.concat(notes.slice(next));
}

export function renderMessages(forceBottom) {
  const view = state.current;
  if (view === null) return;
  const box = $("messages");
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const nodes = [];
  let lastDay = null;
  for (const entry of timeline(view)) {
    const day = dayLabel(entry.data.created_at);
    if (day !== lastDay) {
      nodes.push(el("div", "day", day));
      lastDay = day;
    }
    nodes.push(entry.kind === "message" ? renderMessage(entry.data) : renderNote(entry.data));
  }
  if (!nodes.length) nodes.push(el("div", "queue-empty", "暂无消息"));
  const column = el("div", "messages-col");
  column.append(...nodes);
  box.replaceChildren(column);
  if (forceBottom || nearBottom) box.scrollTop = box.scrollHeight;
}

/** Adds a message (kept in id order) or replaces the copy with its id; answers whether it was new. */
export function upsertMessage(view, message) {
  const index = view.messages.findIndex((m) => m.id === message.id);
  if (index < 0) {
    view.messages.push(message);
    view.messages.sort(byId);
    return true;
  }
  const known = view.messages[index];
  // Copies of a message arrive out of order (the POST answer after the live delivery update):
  // delivery only moves forward, so an older "pending" copy never hides "sent" or an error.
  const stale = message.delivery_status === "pending" && known.delivery_status !== "pending";
  view.messages[index] = stale
    ? { ...message, delivery_status: known.delivery_status, delivery_error: known.delivery_error }
    : message;
  return false;
}

export function upsertNote(view, note) {
  if (!view.notes.some((n) => n.id === note.id)) view.notes.push(note);
}

export function updateComposerState() {
  const view = state.current;
  if (view === null) return;
  const esc = view.escalation;
  const hint = $("composer-hint");
  hint.className = "hint";
  let canReply = true;
  const window = windowOf(view.conversation.id);
  const closed = window !== null && window.state !== "open";
  const holding = esc !== null && esc.status !== "resolved";
  if (state.mode === "reply") {
    if (closed) {
      canReply = false;
      hint.textContent = windowRefusal(window);
      hint.className = "hint error";
    } else if (!holding) {
      // A chat staff do not hold: a message may be started inside WeChat's window.
      canReply = window !== null;
      hint.textContent = (esc === null ? "该会话未转人工" : "会话已解决，机器人已重新接管") +
        (canReply ? "：可主动发起消息，发送后由您接待该患者" : "");
    } else if (esc.assigned_to === null) {
      hint.textContent = "尚未领取：建议先领取再回复";
    } else if (state.me !== null && esc.assigned_to.id !== state.me.id) {
      hint.textContent = "当前由 " + esc.assigned_to.display_name + " 处理";
    } else {
      hint.textContent = "Enter 发送 · Shift+Enter 换行";
    }
  } else {
    hint.textContent = "内部备注仅同事可见，不会发送给患者";
  }
  $("reply").disabled = !canReply;
  $("send").disabled = !canReply;
  $("send").textContent = state.mode === "note" ? "添加备注" : (holding ? "发送" : "发起消息");
  $("composer").classList.toggle("disabled", !canReply);
}

export function setMode(mode) {
  state.mode = mode;
  for (const button of document.querySelectorAll(".composer .mode")) {
    button.classList.toggle("active", button.dataset.mode === mode);
  }
  $("composer").classList.toggle("note-mode", mode === "note");
  $("reply").placeholder = mode === "note" ? "写一条内部备注（仅同事可见）" : "输入回复，Enter 发送，Shift+Enter 换行";
  updateComposerState();
}

/** Sends the reply box as a message to the patient, or stores it as a note. */
export async function send() {
  const view = state.current;
  const textarea = $("reply");
  const text = textarea.value;
  if (view === null || !text.trim() || $("send").disabled) return;
  const path = "/conversations/" + encodeURIComponent(view.conversation.id);
  const mode = state.mode;
  $("send").disabled = true;
  textarea.value = "";
  let failure = "";
  try {
    if (mode === "note") {
      const note = await api("POST", path + "/notes", { text });
      upsertNote(view, note);
    } else if (view.escalation === null || view.escalation.status === "resolved") {
      const started = await startMessage(view.conversation.id, text);
      state.lastTyping = { id: null, at: 0 };
      await openConversation(started.conversation_id); // staff hold the chat now
      return;
    } else {
      const message = await api("POST", path + "/messages", { text });
      upsertMessage(view, message);
      state.lastTyping = { id: null, at: 0 };
      loadWindow(view.conversation.id).then(() => { if (state.current === view) updateComposerState(); });
    }
    if (state.current === view) renderMessages(true);
  } catch (error) {
    if (!textarea.value) textarea.value = text; // give the text back so nothing typed is lost
    // A 409 on a message is usually WeChat's window: say why in the staff's words.
    const window = error.status === 409 && mode === "reply" ? await loadWindow(view.conversation.id) : null;
    failure = (window !== null && windowRefusal(window)) ||
      (mode === "note" ? "备注保存失败：" : "发送失败：") + errorText(error);
  } finally {
    $("send").disabled = false;
    updateComposerState();
    if (failure && state.current === view) {
      $("composer-hint").textContent = failure;
      $("composer-hint").className = "hint error";
    }
    if (state.current === view && !$("send").disabled) textarea.focus();
  }
}

export async function resolveCurrent() {
  const view = state.current;
  if (view === null || view.escalation === null) return;
  const ok = await confirmDialog("解决会话", "确认已解决？机器人将重新接管该会话，并请患者为本次服务评分（1–5 分）。");
  if (!ok) return;
  try {
    upsertItem(await api("POST", "/conversations/" + encodeURIComponent(view.conversation.id) + "/resolve"));
    toast("会话已解决", "ok");
  } catch (error) {
    toast(errorText(error), "error");
  }
}
