/* The console WebSocket: live events (docs/CONSOLE_API.md, "Real time"), reconnecting with ?since=. */

import { API, api } from "./api.js";
import { renderMessages, updateComposerState, upsertMessage, upsertNote } from "./conversation.js";
import { $, toast } from "./dom.js";
import { PRIORITY, reasonText } from "./labels.js";
import { onLabelEvent } from "./labels-ui.js";
import { loadQueues, renderQueues, upsertItem } from "./queues.js";
import { loadWindow } from "./reply-window.js";
import { setMe } from "./session.js";
import { state } from "./state.js";
import { notePresence } from "./transfer.js";
import { noteTyping, renderTyping, stoppedTyping } from "./typing.js";

const RECONNECT_MAX_MS = 30000;

function setConnection(stateName, label) {
  $("conn").dataset.state = stateName;
  $("conn-label").textContent = label;
}

export function connect() {
  if (state.me === null) return;
  clearTimeout(state.reconnectTimer);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let url = scheme + "//" + location.host + API + "/ws";
  if (state.lastEventId !== null) url += "?since=" + encodeURIComponent(state.lastEventId);
  setConnection("connecting", state.wsAttempts ? "重新连接中…" : "连接中…");
  let ws;
  try {
    ws = new WebSocket(url);
  } catch (_) {
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  ws.addEventListener("open", () => {
    if (state.ws !== ws) return;
    state.wsOpenedAt = Date.now();
    setConnection("open", "实时连接");
    // Whatever happened while we were away: replayed events arrive on the socket, and the queue
    // is refetched as a whole so nothing depends on the replay alone.
    loadQueues();
  });
  ws.addEventListener("message", (message) => {
    if (state.ws !== ws) return;
    handleEvent(JSON.parse(message.data));
  });
  ws.addEventListener("close", () => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (state.me === null) return;
    if (state.wsOpenedAt && Date.now() - state.wsOpenedAt > 10000) state.wsAttempts = 0;
    state.wsOpenedAt = 0;
    scheduleReconnect();
  });
}

/** Closes the socket for good (logging out). */
export function disconnect() {
  clearTimeout(state.reconnectTimer);
  if (state.ws !== null) {
    const ws = state.ws;
    state.ws = null;
    ws.close(1000, "logout");
  }
}

function scheduleReconnect() {
  if (state.me === null) return;
  const attempt = state.wsAttempts;
  state.wsAttempts += 1;
  const base = Math.min(RECONNECT_MAX_MS, 1000 * 2 ** attempt);
  const delay = Math.round(base * (0.6 + Math.random() * 0.4));
  setConnection("closed", "已断开，" + Math.ceil(delay / 1000) + " 秒后重连");
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(async () => {
    if (state.me === null) return;
    if (state.wsAttempts >= 2) {
      // A refused handshake looks like any other failure: ask whether the session still exists.
      try { await api("GET", "/me"); } catch (_) { if (state.me === null) return; }
    }
    connect();
  }, delay);
}

/** Apply one console event. Exposed for tests. */
export function handleEvent(event) {
  state.lastEventId = event.id;
  if (state.me === null) return;
  switch (event.type) {
    case "escalation.created":
    case "escalation.updated":
      onEscalation(event.type, event.escalation);
      break;
    case "message.created":
    case "message.updated":
      onMessage(event.conversation_id, event.message);
      break;
    case "note.created":
      onNote(event.conversation_id, event.note);
      break;
    case "typing":
      noteTyping(event.conversation_id, event.who);
      break;
    case "presence":
      onPresence(event);
      break;
    case "conversation.labels":
    case "label.created":
      onLabelEvent(event);
      break;
    default: // "ready" after a replay, and types this page does not show
      break;
  }
}

function onEscalation(type, item) {
  const previous = upsertItem(item);
  if (type === "escalation.created" && previous === undefined && state.items.has(item.escalation_id)) {
    toast("新的转人工会话（" + PRIORITY[item.priority] + "）：" + item.patient.label + " · " + reasonText(item.reason));
  }
}

function onMessage(conversationId, message) {
  const view = state.current;
  if (view !== null && view.conversation.id === conversationId) {
    upsertMessage(view, message);
    stoppedTyping(conversationId, message);
    const mine = message.sender_type === "agent" && message.agent !== null && message.agent.id === state.me.id;
    renderMessages(mine);
    renderTyping();
    if (message.sender_type === "patient") refreshWindow(conversationId); // a new 48 hours
  } else if (message.sender_type === "patient") {
    const known = [...state.items.values()].some((i) => i.conversation_id === conversationId);
    if (known) {
      state.unread.add(conversationId);
      renderQueues();
    }
  }
}

function onNote(conversationId, note) {
  const view = state.current;
  if (view === null || view.conversation.id !== conversationId) return;
  upsertNote(view, note);
  renderMessages(false);
}

/** {"staff_id", "display_name", "presence"}: someone went online, away or offline. */
function onPresence(event) {
  notePresence(event.staff_id, event.presence);
  if (event.staff_id === state.me.id && event.presence !== state.me.presence) {
    setMe({ ...state.me, presence: event.presence });
  }
}

function refreshWindow(conversationId) {
  loadWindow(conversationId).then(() => {
    if (state.current !== null && state.current.conversation.id === conversationId) updateComposerState();
  });
}
