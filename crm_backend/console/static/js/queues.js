/* The queue column: open escalations per team, live timers and SLA countdowns, claiming. */

import { api, errorText } from "./api.js";
import { openConversation, refreshConversationEscalation } from "./conversation.js";
import { $, el, toast } from "./dom.js";
import { formatDuration, formatTime, parseTime, same } from "./format.js";
import { PRIORITY, PRIORITY_RANK, reasonText } from "./labels.js";
import { labelChips, passesLabelFilter } from "./labels-ui.js";
import { TITLE } from "./session.js";
import { isSupervisor, serverNow, state } from "./state.js";

const SLA_WARN_SECONDS = 60;
/** Further off than this (a chat that came in while nobody is on duty), the due time is shown, not a countdown. */
const SLA_COUNTDOWN_SECONDS = 3600;

function waitingSeconds(item) {
  const end = item.first_response_at === null ? serverNow() : parseTime(item.first_response_at);
  return Math.max(0, (end - parseTime(item.created_at)) / 1000);
}

/** {text, cls, breached} of the SLA tag: countdown, breached (red), or met. */
export function slaInfo(item) {
  if (item.first_response_at !== null) {
    return item.sla_breached
      ? { text: "超时后响应", cls: "sla breached", breached: true }
      : { text: "已响应", cls: "sla met", breached: false };
  }
  const left = (parseTime(item.sla_due_at) - serverNow()) / 1000;
  if (left <= 0 || item.sla_breached) return { text: "超时 " + formatDuration(left), cls: "sla breached", breached: true };
  if (left > SLA_COUNTDOWN_SECONDS) return { text: "SLA " + formatTime(item.sla_due_at) + " 到期", cls: "sla", breached: false };
  return { text: "SLA " + formatDuration(left), cls: left <= SLA_WARN_SECONDS ? "sla warn" : "sla", breached: false };
}

function sortItems(items) {
  return items.sort((a, b) =>
    PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || parseTime(a.created_at) - parseTime(b.created_at));
}

function visibleTeam(team) {
  return isSupervisor() || state.me.teams.some((t) => t.id === team.id);
}

function noteTeam(team) {
  if (!state.teams.some((t) => t.id === team.id)) state.teams.push(team);
}

export async function loadQueues() {
  if (state.me === null) return;
  const asked = Date.now();
  let groups;
  state.queueLoads += 1;
  try {
    groups = await api("GET", "/queues");
  } catch (error) {
    state.queueLoads -= 1;
    if (state.queueLoads === 0) state.liveDuringLoad = [];
    if (error.status !== 401) toast("队列加载失败：" + errorText(error), "error");
    return;
  }
  state.queueLoads -= 1;
  const answered = Date.now();
  const offsets = [];
  state.items.clear();
  state.teams = [];
  for (const group of groups) {
    noteTeam(group.team);
    for (const item of group.items) {
      state.items.set(item.escalation_id, item);
      if (item.first_response_at === null) {
        offsets.push(parseTime(item.created_at) + item.waiting_seconds * 1000 - (asked + answered) / 2);
      }
    }
  }
  // Events that came while the answer was on its way are not lost under it: applied again, in order.
  const live = state.liveDuringLoad;
  if (state.queueLoads === 0) state.liveDuringLoad = [];
  for (const item of live) keepItem(item);
  if (offsets.length) {
    offsets.sort((a, b) => a - b);
    const median = offsets[Math.floor(offsets.length / 2)];
    // Only correct real skew; sub-second noise from whole-second waiting times is ignored.
    state.clockOffset = Math.abs(median) > 1500 ? median : 0;
  }
  renderQueues();
  $("queue-list").dataset.loadedAt = String(answered); // lets tests know the first load is in
  if (state.current !== null && state.current.escalation !== null) {
    const fresh = state.items.get(state.current.escalation.escalation_id);
    if (fresh) refreshConversationEscalation(fresh);
  }
}

function keepItem(item) {
  if (item.status === "resolved" || !visibleTeam(item.team)) {
    state.items.delete(item.escalation_id);
  } else {
    noteTeam(item.team);
    state.items.set(item.escalation_id, item);
  }
}

/** Takes a QueueItem (from an event or an answer); answers the one it replaces, if any. */
export function upsertItem(item) {
  const previous = state.items.get(item.escalation_id);
  if (state.queueLoads > 0) state.liveDuringLoad.push(item);
  keepItem(item);
  if (state.current !== null && state.current.conversation.id === item.conversation_id) {
    refreshConversationEscalation(item);
  }
  renderQueues();
  return previous;
}

function itemsForTab(tab) {
  const all = [...state.items.values()].filter(passesLabelFilter);
  if (tab === "all") return sortItems(all);
  if (tab === "mine") return sortItems(all.filter((i) => i.assigned_to !== null && i.assigned_to.id === state.me.id));
  return sortItems(all.filter((i) => same(i.team.id, tab)));
}

export function renderQueues() {
  if (state.me === null) return;
  const validTabs = new Set(["all", "mine", ...state.teams.map((t) => String(t.id))]);
  if (!validTabs.has(String(state.queueTab))) state.queueTab = "all";

  const tabButton = (key, label) => {
    const button = el("button", "queue-tab" + (String(state.queueTab) === key ? " active" : ""), label);
    button.type = "button";
    button.setAttribute("role", "tab");
    button.dataset.tab = key;
    button.append(el("span", "count", itemsForTab(key).length));
    button.addEventListener("click", () => { state.queueTab = key; renderQueues(); });
    return button;
  };
  $("queue-tabs").replaceChildren(tabButton("all", "全部"), tabButton("mine", "我的"),
    ...state.teams.map((team) => tabButton(String(team.id), team.name)));

  state.itemEls.clear();
  const nodes = [];
  const render = (item) => {
    const node = renderQueueItem(item);
    state.itemEls.set(item.escalation_id, node);
    return node;
  };
  if (state.queueTab === "all" && state.teams.length > 1) {
    for (const team of state.teams) {
      const items = itemsForTab(String(team.id));
      nodes.push(el("div", "queue-group", team.name + "（" + items.length + "）"));
      if (!items.length) nodes.push(el("div", "queue-empty", "暂无排队会话"));
      nodes.push(...items.map(render));
    }
  } else {
    const items = itemsForTab(state.queueTab);
    if (!items.length) nodes.push(el("div", "queue-empty", state.queueTab === "mine" ? "您当前没有处理中的会话" : "暂无排队会话 🎉"));
    nodes.push(...items.map(render));
  }
  $("queue-list").replaceChildren(...nodes);
  updateCounters();
}

/** One queue card. Exposed for tests; all text goes in through textContent. */
export function renderQueueItem(item) {
  const mine = state.me !== null && item.assigned_to !== null && item.assigned_to.id === state.me.id;
  const node = el("div", "qitem");
  node.dataset.escalationId = item.escalation_id;
  node.dataset.conversationId = item.conversation_id;
  node.tabIndex = 0;
  node.title = "转入 " + formatTime(item.created_at);
  node.classList.toggle("mine", mine);
  node.classList.toggle("selected", same(state.currentId, item.conversation_id));

  const top = el("div", "qitem-top");
  top.append(el("span", "badge " + item.priority, PRIORITY[item.priority]));
  top.append(el("span", "qitem-name", item.patient.label));
  if (state.unread.has(item.conversation_id)) top.append(el("span", "pill ok", "新消息"));
  if (item.status === "queued") {
    const claim = el("button", "btn small primary claim", "领取");
    claim.type = "button";
    claim.addEventListener("click", (event) => { event.stopPropagation(); claimEscalation(item); });
    top.append(claim);
  }
  node.append(top);
  node.append(el("div", "qitem-reason", reasonText(item.reason)));
  if (item.summary) node.append(el("div", "qitem-summary", item.summary));
  node.append(labelChips(item.labels));

  const meta = el("div", "qitem-meta");
  meta.append(el("span", "timer wait"), el("span", "sla"));
  const agent = item.assigned_to === null ? "未分配" : (mine ? "我" : item.assigned_to.display_name);
  const withTeam = state.queueTab === "all" || state.queueTab === "mine";
  meta.append(el("span", "qitem-agent", withTeam ? item.team.name + " · " + agent : agent));
  node.append(meta);
  updateItemTimers(node, item);

  node.addEventListener("click", () => openConversation(item.conversation_id));
  node.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target === node) openConversation(item.conversation_id);
  });
  return node;
}

function updateItemTimers(node, item) {
  const sla = node.querySelector(".sla");
  node.querySelector(".wait").textContent =
    (item.first_response_at === null ? "等待 " : "等待了 ") + formatDuration(waitingSeconds(item));
  const info = slaInfo(item);
  sla.textContent = info.text;
  sla.className = info.cls;
  node.classList.toggle("breached", info.breached);
}

function updateCounters() {
  let breached = 0;
  let queued = 0;
  for (const item of state.items.values()) {
    if (slaInfo(item).breached) breached += 1;
    if (item.status === "queued") queued += 1;
  }
  $("sla-count").textContent = String(breached);
  $("sla-counter").classList.toggle("alert", breached > 0);
  document.title = (queued ? "(" + queued + ") " : "") + TITLE;
}

export async function claimEscalation(item) {
  try {
    upsertItem(await api("POST", "/escalations/" + encodeURIComponent(item.escalation_id) + "/claim"));
    toast("已领取：" + item.patient.label, "ok");
    openConversation(item.conversation_id);
  } catch (error) {
    if (error.status === 409) {
      toast("该会话已被其他同事领取", "error");
      loadQueues();
    } else {
      toast(errorText(error), "error");
    }
  }
}

/** Once a second: waiting times, SLA countdowns and the counters move on. */
export function tickQueues() {
  for (const [key, node] of state.itemEls) {
    const item = state.items.get(key);
    if (item) updateItemTimers(node, item);
  }
  updateCounters();
}
