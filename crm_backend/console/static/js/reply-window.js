/* WeChat's customer-service window for the conversation on screen (GET /conversations/{id}/window):
 * when it closes (local time with the day) and how many of its 5 messages are left; starting a
 * message in a chat staff do not hold yet (POST /conversations/{id}/start-message). The server
 * refuses outside the window with 409; this module words why, in Chinese. */

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { parseTime, same } from "./format.js";

const WEEKDAY = ["周日", "周一", "周二", "周三", "周四", "周五", "周六"];
let current = null; // {conversationId, window}

function pad(n) { return String(n).padStart(2, "0"); }

/** "12月6日（周日）14:20" in the browser's time zone: the day is always named. */
export function formatClosing(iso) {
  const t = parseTime(iso);
  if (t === null) return "";
  const d = new Date(t);
  return (d.getMonth() + 1) + "月" + d.getDate() + "日（" + WEEKDAY[d.getDay()] + "）" +
    pad(d.getHours()) + ":" + pad(d.getMinutes());
}

/** Why nothing can be sent now, as staff read it; "" while the window is open. */
export function windowRefusal(window) {
  switch (window.state) {
    case "open": return "";
    case "expired":
      return "已超过微信 48 小时回复时限（窗口已于 " + formatClosing(window.closes_at) +
        " 关闭），患者再次发消息后才能回复";
    case "used_up":
      return "患者上次发消息后已发送 " + window.sent + "/" + window.limit + " 条，微信不允许再发，请等待患者回复";
    case "never_opened": return "患者从未发过消息，微信不允许主动发送客服消息";
    case "unsubscribed": return "患者已取消关注公众号，消息无法送达";
    default: return "当前无法向患者发送消息";
  }
}

export function renderWindow() {
  const box = $("conv-window");
  if (current === null) {
    box.hidden = true;
    return;
  }
  const window = current.window;
  box.hidden = false;
  box.className = "reply-window " + window.state;
  box.dataset.state = window.state;
  if (window.state === "open") {
    box.replaceChildren(
      el("span", "label", "微信回复窗口"),
      el("span", "closes", formatClosing(window.closes_at) + " 关闭"),
      el("span", "remaining", "剩余 " + window.remaining + "/" + window.limit + " 条"),
    );
  } else {
    box.replaceChildren(el("span", "refusal", windowRefusal(window)));
  }
}

/** Fetches the window of `conversationId`; forgets it (and hides the indicator) if it cannot. */
export async function loadWindow(conversationId) {
  try {
    const window = await api("GET", "/conversations/" + encodeURIComponent(conversationId) + "/window");
    current = { conversationId, window };
  } catch (_) {
    current = null;
  }
  renderWindow();
  return current === null ? null : current.window;
}

export function forgetWindow() {
  current = null;
  renderWindow();
}

/** The window of the conversation on screen, if known. */
export function windowOf(conversationId) {
  return current !== null && same(current.conversationId, conversationId) ? current.window : null;
}

/** Starts a message from a chat staff do not hold; answers {conversation_id, message}. */
export function startMessage(conversationId, text) {
  return api("POST", "/conversations/" + encodeURIComponent(conversationId) + "/start-message", { text });
}
