/* Searching conversations by their words (GET /conversation-search): the top bar's search field
 * and a dialog of results; a result opens its conversation. */

import { api, errorText } from "./api.js";
import { openConversation } from "./conversation.js";
import { $, el } from "./dom.js";
import { formatTime } from "./format.js";
import { SENDER } from "./labels.js";

/** One result: who, when, and the words found, marked, inside their context (all textContent). */
export function renderSearchHit(hit) {
  const node = el("button", "search-hit");
  node.type = "button";
  node.dataset.conversationId = hit.conversation_id;
  const head = el("div", "search-hit-head");
  head.append(
    el("b", "", hit.patient.label),
    el("span", "pill", SENDER[hit.sender_type] || hit.sender_type),
    el("span", "search-hit-time", formatTime(hit.created_at)),
  );
  const text = el("div", "search-hit-text");
  const start = hit.match_start;
  const end = start + hit.match_length;
  text.append(
    document.createTextNode(hit.snippet.slice(0, start)),
    el("mark", "", hit.snippet.slice(start, end)),
    document.createTextNode(hit.snippet.slice(end)),
  );
  node.append(head, text);
  node.addEventListener("click", () => {
    $("search-dialog").close();
    openConversation(hit.conversation_id);
  });
  return node;
}

async function search(event) {
  event.preventDefault();
  const words = $("conv-search-q").value.trim();
  if (!words) return;
  const list = $("search-results");
  $("search-words").textContent = words;
  list.replaceChildren(el("p", "search-empty", "搜索中…"));
  if (!$("search-dialog").open) $("search-dialog").showModal();
  let hits;
  try {
    hits = await api("GET", "/conversation-search?q=" + encodeURIComponent(words));
  } catch (error) {
    list.replaceChildren(el("p", "search-empty error", "搜索失败：" + errorText(error)));
    return;
  }
  list.replaceChildren(...(hits.length ? hits.map(renderSearchHit) : [el("p", "search-empty", "没有找到包含这些文字的消息")]));
}

export function wireSearch() {
  $("conv-search").addEventListener("submit", search);
  $("search-close").addEventListener("click", () => $("search-dialog").close());
}
