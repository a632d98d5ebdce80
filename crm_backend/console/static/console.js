/* CareBridge staff console.
 *
 * Vanilla JS, no build step. Talks only to the JSON API in docs/CONSOLE_API.md and to the console
 * WebSocket. Every piece of patient or staff text is put on the page with textContent: patient
 * messages are untrusted, and nothing here ever parses data as markup.
 */
"use strict";
(() => {
  // ---------------------------------------------------------------------------------------------
  // Constants and labels
  // ---------------------------------------------------------------------------------------------
  const API = "/api/console";
  const PRIORITY = { urgent: "紧急", high: "高", normal: "普通" };
  const PRIORITY_RANK = { urgent: 0, high: 1, normal: 2 };
  const ROLE = { agent: "客服", nurse: "护士", supervisor: "主管", admin: "管理员" };
  const PRESENCE = { online: "在线", away: "离开", offline: "离线" };
  const ESCALATION_STATUS = { queued: "排队中", assigned: "处理中", resolved: "已解决" };
  const CONVERSATION_STATUS = { bot: "机器人服务", escalated: "人工处理", closed: "已结束", resolved: "已解决" };
  const SENDER = { patient: "患者", bot: "机器人", system: "系统", agent: "坐席" };
  const MSG_TYPE = {
    image: "[图片]", voice: "[语音]", video: "[视频]", shortvideo: "[小视频]", location: "[位置]",
    link: "[链接]", file: "[文件]", event: "[事件]", template: "[模板消息]", news: "[图文]",
  };
  const RECORD_LABEL = {
    appointments: "预约", triage: "分诊", followups: "随访", complaints: "投诉", consent: "授权", notes: "备注",
  };
  const FIELD_LABEL = {
    name: "姓名", relation: "关系", age: "年龄", gender: "性别", phone: "电话", department: "科室", doctor: "医生",
    at: "时间", time: "时间", date: "日期", status: "状态", created_at: "创建", updated_at: "更新", note: "备注",
    reason: "原因", result: "结果", score: "评分", id_card: "证件号", birth_date: "出生日期",
  };
  const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
  const TYPING_SEND_INTERVAL_MS = 3000;
  const TYPING_SHOW_MS = 6000;
  const SLA_WARN_SECONDS = 60;
  const RECONNECT_MAX_MS = 30000;
  const TITLE = "CareBridge 坐席工作台";

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------------------------------------
  // State
  // ---------------------------------------------------------------------------------------------
  const state = {
    me: null,
    teams: [],               // [{id, name}] in queue order
    items: new Map(),        // escalation_id -> QueueItem
    itemEls: new Map(),      // escalation_id -> rendered element (for the 1 s timer refresh)
    unread: new Set(),       // conversation ids with patient messages not yet seen
    clockOffset: 0,          // server clock minus ours, in ms
    queueTab: "all",
    view: "workspace",
    current: null,           // ConversationView on screen
    currentId: null,         // its conversation id (set before the fetch answers)
    mode: "reply",
    canned: [],
    staff: new Map(),        // staff id -> {id, display_name, presence?} seen anywhere
    adminTeams: [],
    typing: new Map(),       // conversation id -> Map(who -> {label, until})
    lastTyping: { id: null, at: 0 },
    ws: null,
    wsAttempts: 0,
    wsOpenedAt: 0,
    reconnectTimer: null,
    lastEventId: null,
    ticker: null,
    queueRefresh: null,
  };

  // ---------------------------------------------------------------------------------------------
  // Small helpers
  // ---------------------------------------------------------------------------------------------
  /** Create an element; `text` always goes in as textContent, never as markup. */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function same(a, b) {
    return a !== null && a !== undefined && b !== null && b !== undefined && String(a) === String(b);
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  /** Seconds as mm:ss (minutes keep counting past 59); negative values are shown as their absolute. */
  function formatDuration(seconds) {
    const s = Math.max(0, Math.floor(Math.abs(Number(seconds) || 0)));
    return pad(Math.floor(s / 60)) + ":" + pad(s % 60);
  }

  function parseTime(iso) {
    const t = Date.parse(iso);
    return Number.isNaN(t) ? null : t;
  }

  function formatTime(iso) {
    const t = parseTime(iso);
    if (t === null) return "";
    const d = new Date(t);
    const now = new Date();
    const hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    if (d.toDateString() === now.toDateString()) return hm;
    const md = pad(d.getMonth() + 1) + "-" + pad(d.getDate());
    return (d.getFullYear() === now.getFullYear() ? md : d.getFullYear() + "-" + md) + " " + hm;
  }

  function formatDateTime(iso) {
    const t = parseTime(iso);
    if (t === null) return "";
    const d = new Date(t);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function dayLabel(iso) {
    const t = parseTime(iso);
    if (t === null) return "";
    const d = new Date(t);
    const today = new Date();
    const yesterday = new Date(today.getTime() - 86400000);
    if (d.toDateString() === today.toDateString()) return "今天";
    if (d.toDateString() === yesterday.toDateString()) return "昨天";
    return d.getFullYear() + "年" + (d.getMonth() + 1) + "月" + d.getDate() + "日";
  }

  function serverNow() { return Date.now() + state.clockOffset; }

  function toast(text, kind) {
    const node = el("div", "toast" + (kind ? " " + kind : ""), text);
    $("toasts").append(node);
    setTimeout(() => node.remove(), kind === "error" ? 6000 : 3500);
  }

  function isSupervisor() {
    return !!state.me && (state.me.role === "supervisor" || state.me.role === "admin");
  }

  /** Escalation reasons the system writes as codes, in words; free-text reasons are shown as they are. */
  const REASONS = { patient_request: "患者要求转人工", bot_fallback: "机器人两次未能理解" };
  function reasonText(reason) {
    return REASONS[reason] || reason || "";
  }

  function isAdmin() { return !!state.me && state.me.role === "admin"; }

  function rememberStaff(person) {
    if (!person || person.id === undefined || person.id === null) return;
    const known = state.staff.get(String(person.id)) || {};
    state.staff.set(String(person.id), { ...known, ...person });
  }

  // ---------------------------------------------------------------------------------------------
  // HTTP
  // ---------------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, detail, retryAfter) {
      super(detail || "HTTP " + status);
      this.status = status;
      this.detail = detail || "";
      this.retryAfter = retryAfter;
    }
  }

  /** JSON request with the session cookie; unsafe methods carry the CSRF token. */
  async function api(method, path, body, options) {
    const opts = options || {};
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (!SAFE_METHODS.has(method) && state.me && state.me.csrf_token) headers["X-CSRF-Token"] = state.me.csrf_token;
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (_) {
      throw new ApiError(0, "网络连接失败");
    }
    let data = null;
    if (response.status !== 204) {
      const text = await response.text();
      if (text) {
        try { data = JSON.parse(text); } catch (_) { data = null; }
      }
    }
    if (!response.ok) {
      let detail = "";
      if (data && typeof data.detail === "string") detail = data.detail;
      else if (data && Array.isArray(data.detail)) detail = data.detail.map((d) => d && d.msg).filter(Boolean).join("；");
      const error = new ApiError(response.status, detail, response.headers.get("Retry-After"));
      if (response.status === 401 && !opts.anonymous) sessionExpired();
      if (response.status === 403 && /csrf/i.test(detail) && !opts.retried && state.me) {
        // The session's token changed (e.g. another tab logged in again): take the new one, retry once.
        const me = await api("GET", "/me");
        if (me && me.csrf_token && state.me) {
          setMe(me);
          return api(method, path, body, { ...opts, retried: true });
        }
      }
      throw error;
    }
    return data;
  }

  function errorText(error) {
    if (!(error instanceof ApiError)) return "出错了：" + String(error && error.message || error);
    const detail = error.detail ? "：" + error.detail : "";
    switch (error.status) {
      case 0: return "网络连接失败，请检查网络";
      case 400: return "请求有误" + detail;
      case 401: return "登录已过期，请重新登录";
      case 403: return "没有权限执行此操作" + detail;
      case 404: return "未找到" + detail;
      case 409: return "操作冲突" + detail;
      case 422: return "输入不完整或格式不对" + detail;
      case 429: return "操作过于频繁，请稍后再试";
      default: return error.status >= 500 ? "服务器出错（" + error.status + "），请稍后再试" : "请求失败（" + error.status + "）" + detail;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Login and session
  // ---------------------------------------------------------------------------------------------
  function showLogin(message, kind) {
    $("app").hidden = true;
    $("login-view").hidden = false;
    const box = $("login-error");
    box.hidden = !message;
    box.textContent = message || "";
    box.className = "login-error" + (kind ? " " + kind : "");
    document.title = TITLE;
    setTimeout(() => ($("login-username").value ? $("login-password") : $("login-username")).focus(), 0);
  }

  async function onLogin(event) {
    event.preventDefault();
    const username = $("login-username").value.trim();
    const password = $("login-password").value;
    const box = $("login-error");
    if (!username || !password) {
      showLogin("请输入用户名和密码");
      return;
    }
    $("login-submit").disabled = true;
    $("login-submit").textContent = "登录中…";
    try {
      const me = await api("POST", "/login", { username, password }, { anonymous: true });
      $("login-password").value = "";
      box.hidden = true;
      startApp(me);
    } catch (error) {
      if (error.status === 401) {
        showLogin("用户名或密码错误");
      } else if (error.status === 429) {
        const seconds = parseInt(error.retryAfter, 10);
        const wait = seconds > 0 ? (seconds >= 120 ? "请 " + Math.ceil(seconds / 60) + " 分钟后再试" : "请 " + seconds + " 秒后再试")
          : "请稍后再试";
        showLogin("登录失败次数过多，已暂时锁定。" + wait + "。", "throttled");
      } else {
        showLogin(errorText(error));
      }
      $("login-password").select();
    } finally {
      $("login-submit").disabled = false;
      $("login-submit").textContent = "登录";
    }
  }

  function sessionExpired() {
    if (!state.me) return;
    stopApp();
    showLogin("登录已过期，请重新登录");
  }

  async function logout() {
    try {
      await api("POST", "/logout");
    } catch (_) { /* the session may already be gone; leave anyway */ }
    stopApp();
    showLogin("您已退出登录");
  }

  function setMe(me) {
    const previous = state.me;
    state.me = { ...(previous || {}), ...me };
    if (!state.me.csrf_token && previous) state.me.csrf_token = previous.csrf_token;
    rememberStaff({ id: me.id, display_name: me.display_name, presence: me.presence });
    $("me-name").textContent = state.me.display_name || state.me.username || "";
    const teams = (state.me.teams || []).map((t) => t.name).join("、");
    $("me-role").textContent = (ROLE[state.me.role] || state.me.role || "") + (teams ? " · " + teams : "");
    for (const button of $("presence").querySelectorAll("button")) {
      button.setAttribute("aria-checked", String(button.dataset.presence === state.me.presence));
    }
    $("tab-staff").hidden = !isAdmin();
    $("tab-audit").hidden = !isSupervisor();
    $("sla-counter").hidden = !isSupervisor();
    $("canned-add").hidden = !isSupervisor();
  }

  function startApp(me) {
    state.clockOffset = 0;
    state.lastEventId = null;
    setMe(me);
    $("login-view").hidden = true;
    $("app").hidden = false;
    showView("workspace");
    closeConversation();
    renderQueues();
    loadQueues();
    loadCanned();
    loadTeamsForTransfer();
    connect();
    clearInterval(state.ticker);
    state.ticker = setInterval(tick, 1000);
  }

  function stopApp() {
    state.me = null;
    delete $("queue-list").dataset.loadedAt;
    clearInterval(state.ticker);
    clearTimeout(state.reconnectTimer);
    clearTimeout(state.queueRefresh);
    if (state.ws) {
      const ws = state.ws;
      state.ws = null;
      ws.close(1000, "logout");
    }
    state.items.clear();
    state.itemEls.clear();
    state.unread.clear();
    state.typing.clear();
    state.staff.clear();
    state.teams = [];
    state.canned = [];
    state.current = null;
    state.currentId = null;
    state.wsAttempts = 0;
    state.lastEventId = null;
  }

  async function setPresence(presence) {
    try {
      setMe(await api("PUT", "/me/presence", { presence }));
      toast("状态已切换为「" + PRESENCE[presence] + "」", "ok");
    } catch (error) {
      toast(errorText(error), "error");
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Views (workspace / staff / audit)
  // ---------------------------------------------------------------------------------------------
  function showView(view) {
    if ((view === "staff" && !isAdmin()) || (view === "audit" && !isSupervisor())) view = "workspace";
    state.view = view;
    $("workspace").hidden = view !== "workspace";
    $("staff-view").hidden = view !== "staff";
    $("audit-view").hidden = view !== "audit";
    for (const tab of document.querySelectorAll(".view-tab")) tab.classList.toggle("active", tab.dataset.view === view);
    if (view === "staff") loadStaff();
    if (view === "audit") loadAudit();
  }

  // ---------------------------------------------------------------------------------------------
  // Queues
  // ---------------------------------------------------------------------------------------------
  function waitingSeconds(item) {
    const created = parseTime(item.created_at);
    if (created === null) return Number(item.waiting_seconds) || 0;
    const end = item.first_response_at ? parseTime(item.first_response_at) : serverNow();
    return Math.max(0, ((end === null ? serverNow() : end) - created) / 1000);
  }

  /** {text, cls} of the SLA tag: countdown, breached (red), or met. */
  function slaInfo(item) {
    const due = parseTime(item.sla_due_at);
    if (item.first_response_at) {
      const answered = parseTime(item.first_response_at);
      const late = item.sla_breached || (due !== null && answered !== null && answered > due);
      return late ? { text: "超时后响应", cls: "sla breached", breached: true } : { text: "已响应", cls: "sla met", breached: false };
    }
    if (due === null) return { text: "", cls: "sla met", breached: !!item.sla_breached };
    const left = (due - serverNow()) / 1000;
    if (left <= 0 || item.sla_breached) return { text: "超时 " + formatDuration(left), cls: "sla breached", breached: true };
    return { text: "SLA " + formatDuration(left), cls: left <= SLA_WARN_SECONDS ? "sla warn" : "sla", breached: false };
  }

  function sortItems(items) {
    return items.sort((a, b) =>
      (PRIORITY_RANK[a.priority] ?? 9) - (PRIORITY_RANK[b.priority] ?? 9) ||
      (parseTime(a.created_at) || 0) - (parseTime(b.created_at) || 0));
  }

  function visibleTeam(team) {
    if (!team) return false;
    if (isSupervisor()) return true;
    return (state.me.teams || []).some((t) => same(t.id, team.id));
  }

  function noteTeam(team) {
    if (team && !state.teams.some((t) => same(t.id, team.id))) state.teams.push(team);
  }

  async function loadQueues() {
    if (!state.me) return;
    const asked = Date.now();
    let groups;
    try {
      groups = await api("GET", "/queues");
    } catch (error) {
      if (error.status !== 401) toast("队列加载失败：" + errorText(error), "error");
      return;
    }
    const answered = Date.now();
    const offsets = [];
    state.items.clear();
    state.teams = [];
    for (const group of groups || []) {
      noteTeam(group.team);
      for (const item of group.items || []) {
        state.items.set(String(item.escalation_id), item);
        if (item.assigned_to) rememberStaff(item.assigned_to);
        const created = parseTime(item.created_at);
        if (created !== null && typeof item.waiting_seconds === "number" && !item.first_response_at) {
          offsets.push(created + item.waiting_seconds * 1000 - (asked + answered) / 2);
        }
      }
    }
    if (offsets.length) {
      offsets.sort((a, b) => a - b);
      const median = offsets[Math.floor(offsets.length / 2)];
      // Only correct real skew; sub-second noise from whole-second waiting times is ignored.
      state.clockOffset = Math.abs(median) > 1500 ? median : 0;
    }
    renderQueues();
    $("queue-list").dataset.loadedAt = String(answered); // lets tests know the first load is in
    if (state.current && state.current.escalation) {
      const fresh = state.items.get(String(state.current.escalation.escalation_id));
      if (fresh) {
        state.current.escalation = fresh;
        renderConversationHeader();
      }
    }
  }

  function scheduleQueueRefresh() {
    clearTimeout(state.queueRefresh);
    state.queueRefresh = setTimeout(loadQueues, 800);
  }

  function upsertItem(item) {
    const key = String(item.escalation_id);
    const previous = state.items.get(key);
    if (item.assigned_to) rememberStaff(item.assigned_to);
    if (item.status === "resolved" || !visibleTeam(item.team)) {
      state.items.delete(key);
    } else {
      noteTeam(item.team);
      state.items.set(key, { ...(previous || {}), ...item });
    }
    if (state.current && state.current.escalation && same(state.current.escalation.escalation_id, item.escalation_id)) {
      state.current.escalation = { ...state.current.escalation, ...item };
      renderConversationHeader();
      updateComposerState();
    } else if (state.current && !state.current.escalation && same(state.current.conversation.id, item.conversation_id)) {
      state.current.escalation = item;
      renderConversationHeader();
      updateComposerState();
    }
    renderQueues();
    return previous;
  }

  function itemsForTab(tab) {
    const all = [...state.items.values()];
    if (tab === "all") return sortItems(all);
    if (tab === "mine") return sortItems(all.filter((i) => i.assigned_to && same(i.assigned_to.id, state.me.id)));
    return sortItems(all.filter((i) => i.team && same(i.team.id, tab)));
  }

  function renderQueues() {
    if (!state.me) return;
    const tabs = $("queue-tabs");
    const list = $("queue-list");
    const validTabs = new Set(["all", "mine", ...state.teams.map((t) => String(t.id))]);
    if (!validTabs.has(String(state.queueTab))) state.queueTab = "all";

    const tabButton = (key, label) => {
      const button = el("button", "queue-tab" + (String(state.queueTab) === String(key) ? " active" : ""), label);
      button.type = "button";
      button.setAttribute("role", "tab");
      button.dataset.tab = key;
      button.append(el("span", "count", itemsForTab(key).length));
      button.addEventListener("click", () => { state.queueTab = key; renderQueues(); });
      return button;
    };
    tabs.replaceChildren(tabButton("all", "全部"), tabButton("mine", "我的"),
      ...state.teams.map((team) => tabButton(String(team.id), team.name)));

    state.itemEls.clear();
    const nodes = [];
    const render = (item) => {
      const node = renderQueueItem(item);
      state.itemEls.set(String(item.escalation_id), node);
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
    list.replaceChildren(...nodes);
    updateCounters();
  }

  /** One queue card. Exposed for tests; all text goes in through textContent. */
  function renderQueueItem(item) {
    const mine = !!(state.me && item.assigned_to && same(item.assigned_to.id, state.me.id));
    const node = el("div", "qitem");
    node.dataset.escalationId = item.escalation_id;
    node.dataset.conversationId = item.conversation_id;
    node.tabIndex = 0;
    node.classList.toggle("mine", mine);
    node.classList.toggle("selected", same(state.currentId, item.conversation_id));

    const top = el("div", "qitem-top");
    const priority = PRIORITY[item.priority] ? item.priority : "normal";
    top.append(el("span", "badge " + priority, PRIORITY[priority]));
    const name = el("span", "qitem-name", (item.patient && item.patient.label) || "患者");
    top.append(name);
    if (state.unread.has(String(item.conversation_id))) top.append(el("span", "pill ok", "新消息"));
    if (item.status === "queued" || (item.status !== "resolved" && !item.assigned_to)) {
      const claim = el("button", "btn small primary claim", "领取");
      claim.type = "button";
      claim.addEventListener("click", (event) => { event.stopPropagation(); claimEscalation(item); });
      top.append(claim);
    }
    node.append(top);
    node.append(el("div", "qitem-reason", reasonText(item.reason)));

    const meta = el("div", "qitem-meta");
    const wait = el("span", "timer wait");
    const sla = el("span", "sla");
    meta.append(wait, sla);
    const agent = item.assigned_to ? (mine ? "我" : item.assigned_to.display_name) : "未分配";
    meta.append(el("span", "qitem-agent", (state.queueTab === "all" || state.queueTab === "mine") && item.team
      ? item.team.name + " · " + agent : agent));
    node.append(meta);
    updateItemTimers(node, item);

    node.addEventListener("click", () => openConversation(item.conversation_id));
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === node) openConversation(item.conversation_id);
    });
    return node;
  }

  function updateItemTimers(node, item) {
    const wait = node.querySelector(".wait");
    const sla = node.querySelector(".sla");
    wait.textContent = (item.first_response_at ? "等待了 " : "等待 ") + formatDuration(waitingSeconds(item));
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

  async function claimEscalation(item) {
    try {
      const claimed = await api("POST", "/escalations/" + encodeURIComponent(item.escalation_id) + "/claim");
      upsertItem(claimed || { ...item, status: "assigned", assigned_to: { id: state.me.id, display_name: state.me.display_name } });
      toast("已领取：" + ((item.patient && item.patient.label) || "患者"), "ok");
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

  function tick() {
    for (const [key, node] of state.itemEls) {
      const item = state.items.get(key);
      if (item) updateItemTimers(node, item);
    }
    updateCounters();
    renderTyping();
  }

  // ---------------------------------------------------------------------------------------------
  // Conversation
  // ---------------------------------------------------------------------------------------------
  function closeConversation() {
    state.current = null;
    state.currentId = null;
    $("conv-empty").hidden = false;
    $("conv-body").hidden = true;
    $("patient-panel").replaceChildren(el("div", "empty-state small", "选择会话后显示患者信息"));
  }

  async function openConversation(conversationId) {
    if (conversationId === undefined || conversationId === null) return;
    const switching = !same(state.currentId, conversationId);
    state.currentId = conversationId;
    state.unread.delete(String(conversationId));
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
    view.messages = view.messages || [];
    view.notes = view.notes || [];
    state.current = view;
    if (view.escalation) {
      const listed = state.items.get(String(view.escalation.escalation_id));
      if (listed) view.escalation = { ...view.escalation, ...listed, ...view.escalation };
    }
    for (const message of view.messages) if (message.agent) rememberStaff(message.agent);
    $("conv-empty").hidden = true;
    $("conv-body").hidden = false;
    if (switching) {
      $("reply").value = "";
      setMode("reply");
      $("canned").hidden = true;
    }
    renderConversationHeader();
    renderMessages(true);
    updateComposerState();
    renderTyping();
    $("patient-panel").replaceChildren(renderPatientPanel(view.patient, view.conversation && view.conversation.id));
    renderQueues();
    if (switching) $("reply").focus();
  }

  function patientLabel() {
    const view = state.current;
    if (!view) return "患者";
    return (view.patient && view.patient.label) || (view.escalation && view.escalation.patient && view.escalation.patient.label) || "患者";
  }

  function renderConversationHeader() {
    const view = state.current;
    if (!view) return;
    const esc = view.escalation;
    $("conv-patient").textContent = patientLabel();
    const status = $("conv-status");
    if (esc) {
      status.textContent = ESCALATION_STATUS[esc.status] || esc.status || "";
      status.className = "status-tag " + (esc.status || "");
    } else {
      const cs = view.conversation && view.conversation.status;
      status.textContent = CONVERSATION_STATUS[cs] || cs || "";
      status.className = "status-tag";
    }
    const open = !!esc && esc.status !== "resolved";
    $("conv-claim").hidden = !(open && (esc.status === "queued" || !esc.assigned_to));
    $("conv-transfer").disabled = !open;
    $("conv-resolve").disabled = !open;

    const banner = $("conv-reason");
    banner.hidden = !esc;
    if (esc) {
      const priority = PRIORITY[esc.priority] ? esc.priority : "normal";
      const parts = [
        el("span", "badge " + priority, PRIORITY[priority]),
        el("span", "label", "转人工原因"),
        el("span", "reason", reasonText(esc.reason) || "（未注明）"),
      ];
      if (esc.team) parts.push(el("span", "label", "· " + esc.team.name));
      parts.push(el("span", "label", "· " + (esc.assigned_to ? "处理人：" + esc.assigned_to.display_name : "未分配")));
      if (esc.created_at) parts.push(el("span", "label", "· " + formatTime(esc.created_at) + " 转入"));
      banner.replaceChildren(...parts);
      banner.title = "转人工原因：" + reasonText(esc.reason); // full text on hover when it is cut short
    }
  }

  function messageText(message) {
    const type = message.msg_type || "text";
    const content = message.content === null || message.content === undefined ? "" : String(message.content);
    if (type === "text") return content;
    const label = MSG_TYPE[type] || "[" + type + "]";
    return content ? label + " " + content : label;
  }

  function deliveryErrorText(error) {
    const text = error ? String(error) : "";
    if (/45015|48|out of time|time limit/i.test(text)) return text + "（已超过 48 小时回复时限，患者再次发消息后才能回复）";
    if (/45047|limit/i.test(text)) return text + "（回复条数已达上限，请等待患者回复）";
    return text;
  }

  /** One chat bubble. Exposed for tests; the message content goes in as text only. */
  function renderMessage(message) {
    const sender = SENDER[message.sender_type] ? message.sender_type : (message.direction === "in" ? "patient" : "bot");
    const failed = message.delivery_status === "failed" || message.delivery_status === "undeliverable";
    const node = el("div", "msg " + sender + (failed ? " failed" : ""));
    if (message.id !== undefined && message.id !== null) node.dataset.messageId = message.id;
    let who = SENDER[sender];
    if (sender === "agent") who = (message.agent && message.agent.display_name) || "坐席";
    else if (sender === "patient") who = patientLabel();
    node.append(el("div", "who", who));
    node.append(el("div", "bubble", messageText(message)));
    const meta = el("div", "meta");
    meta.append(el("span", "time", formatTime(message.created_at)));
    if (message.direction === "out" && sender === "agent") {
      const status = message.delivery_status;
      if (failed) {
        const detail = deliveryErrorText(message.delivery_error);
        meta.append(el("span", "delivery failed", "发送失败" + (detail ? "：" + detail : "")));
      } else if (status === "sent") {
        meta.append(el("span", "delivery sent", "已发送"));
      } else if (status === "pending" || !status) {
        meta.append(el("span", "delivery pending", "发送中…"));
      }
    }
    node.append(meta);
    return node;
  }

  /** One internal note (yellow). Exposed for tests. */
  function renderNote(note) {
    const node = el("div", "note");
    if (note.id !== undefined && note.id !== null) node.dataset.noteId = note.id;
    const author = (note.author && note.author.display_name) || "同事";
    node.append(el("div", "who", "内部备注 · " + author + " · " + formatTime(note.created_at)));
    node.append(el("div", "text", note.text || ""));
    return node;
  }

  /**
   * Messages in the server's order (ids), notes placed among them by time. Message times cannot order
   * the messages themselves: a patient's time is WeChat's whole second, so it can be earlier than the
   * answer to their previous message.
   */
  function timeline(view) {
    const byId = (a, b) => (Number(a.id) || 0) - (Number(b.id) || 0);
    const messages = [...view.messages].sort(byId);
    const notes = view.notes
      .map((n) => ({ at: parseTime(n.created_at) || 0, kind: "note", data: n }))
      .sort((a, b) => a.at - b.at || byId(a.data, b.data));
    const entries = [];
    let latest = 0;
    let next = 0;
    for (const message of messages) {
      const at = parseTime(message.created_at) || 0;
      latest = Math.max(latest, at);
      while (next < notes.length && notes[next].at < latest) entries.push(notes[next++]);
      entries.push({ at, kind: "message", data: message });
    }
    return entries.concat(notes.slice(next));
  }

  function renderMessages(forceBottom) {
    const view = state.current;
    if (!view) return;
    const box = $("messages");
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const nodes = [];
    let lastDay = null;
    for (const entry of timeline(view)) {
      const day = dayLabel(entry.kind === "message" ? entry.data.created_at : entry.data.created_at);
      if (day && day !== lastDay) {
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

  function upsertById(list, entry) {
    const index = list.findIndex((x) => same(x.id, entry.id));
    if (index >= 0) {
      const known = list[index];
      const merged = { ...known, ...entry };
      // Copies of a message arrive out of order (the POST answer after the live delivery update):
      // delivery only moves forward, so an older "pending" copy never hides "sent" or an error.
      if (entry.delivery_status === "pending" && known.delivery_status && known.delivery_status !== "pending") {
        merged.delivery_status = known.delivery_status;
        merged.delivery_error = known.delivery_error;
      }
      list[index] = merged;
    } else {
      list.push(entry);
    }
    return index < 0;
  }

  function updateComposerState() {
    const view = state.current;
    if (!view) return;
    const esc = view.escalation;
    const hint = $("composer-hint");
    hint.className = "hint";
    let canReply = true;
    if (state.mode === "reply") {
      if (!esc || esc.status === "resolved") {
        canReply = false;
        hint.textContent = esc ? "会话已解决，机器人已重新接管" : "该会话没有转人工，无法回复（可写内部备注）";
      } else if (!esc.assigned_to || esc.status === "queued") {
        hint.textContent = "尚未领取：建议先领取再回复";
      } else if (state.me && !same(esc.assigned_to.id, state.me.id)) {
        hint.textContent = "当前由 " + esc.assigned_to.display_name + " 处理";
      } else {
        hint.textContent = "Enter 发送 · Shift+Enter 换行";
      }
    } else {
      hint.textContent = "内部备注仅同事可见，不会发送给患者";
    }
    $("reply").disabled = !canReply;
    $("send").disabled = !canReply;
    $("composer").classList.toggle("disabled", !canReply);
  }

  function setMode(mode) {
    state.mode = mode;
    for (const button of document.querySelectorAll(".composer .mode")) {
      button.classList.toggle("active", button.dataset.mode === mode);
    }
    $("composer").classList.toggle("note-mode", mode === "note");
    $("reply").placeholder = mode === "note" ? "写一条内部备注（仅同事可见）" : "输入回复，Enter 发送，Shift+Enter 换行";
    $("send").textContent = mode === "note" ? "添加备注" : "发送";
    updateComposerState();
  }

  async function send() {
    const view = state.current;
    const textarea = $("reply");
    const text = textarea.value;
    if (!view || !text.trim() || $("send").disabled) return;
    const conversationId = view.conversation.id;
    const mode = state.mode;
    $("send").disabled = true;
    textarea.value = "";
    try {
      if (mode === "note") {
        const note = await api("POST", "/conversations/" + encodeURIComponent(conversationId) + "/notes", { text });
        if (state.current === view && note) upsertById(view.notes, note);
      } else {
        const message = await api("POST", "/conversations/" + encodeURIComponent(conversationId) + "/messages", { text });
        if (state.current === view && message) upsertById(view.messages, message);
        state.lastTyping = { id: null, at: 0 };
      }
      if (state.current === view) renderMessages(true);
    } catch (error) {
      if (!textarea.value) textarea.value = text; // give the text back so nothing typed is lost
      const hint = $("composer-hint");
      hint.textContent = (mode === "note" ? "备注保存失败：" : "发送失败：") + errorText(error);
      hint.className = "hint error";
    } finally {
      $("send").disabled = false;
      updateComposerState();
      if (state.current === view && !$("send").disabled) textarea.focus();
    }
  }

  function sendTyping() {
    const view = state.current;
    if (!view || state.mode !== "reply" || !$("reply").value.trim()) return;
    const id = view.conversation.id;
    const now = Date.now();
    if (same(state.lastTyping.id, id) && now - state.lastTyping.at < TYPING_SEND_INTERVAL_MS) return;
    state.lastTyping = { id, at: now };
    api("POST", "/conversations/" + encodeURIComponent(id) + "/typing").catch(() => { /* best effort */ });
  }

  function renderTyping() {
    const box = $("typing");
    if (!state.current) { box.textContent = ""; return; }
    const now = Date.now();
    const labels = [];
    for (const [convId, people] of state.typing) {
      for (const [who, entry] of people) if (entry.until < now) people.delete(who);
      if (!people.size) { state.typing.delete(convId); continue; }
      if (same(convId, state.current.conversation.id)) for (const entry of people.values()) labels.push(entry.label);
    }
    box.textContent = labels.join("  ");
  }

  async function resolveCurrent() {
    const view = state.current;
    if (!view || !view.escalation) return;
    const ok = await confirmDialog("解决会话", "确认已解决？机器人将重新接管该会话，并请患者为本次服务评分（1–5 分）。");
    if (!ok) return;
    try {
      await api("POST", "/conversations/" + encodeURIComponent(view.conversation.id) + "/resolve");
      upsertItem({ ...view.escalation, status: "resolved" });
      toast("会话已解决", "ok");
    } catch (error) {
      toast(errorText(error), "error");
    }
  }

  function confirmDialog(title, text) {
    const dialog = $("confirm-dialog");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Transfer
  // ---------------------------------------------------------------------------------------------
  /** Every team and active colleague, whatever the role: a chat can go to any of them. */
  async function loadTeamsForTransfer() {
    try {
      const directory = (await api("GET", "/directory")) || {};
      state.adminTeams = directory.teams || [];
      for (const person of directory.staff || []) {
        rememberStaff({ id: person.id, display_name: person.display_name, presence: person.presence });
      }
    } catch (_) {
      state.adminTeams = [];
    }
  }

  function transferTargets() {
    const teams = new Map();
    for (const team of [...state.adminTeams, ...state.teams, ...((state.me && state.me.teams) || [])]) {
      if (team && !teams.has(String(team.id))) teams.set(String(team.id), team);
    }
    const staff = [...state.staff.values()].filter((s) => state.me && !same(s.id, state.me.id) && s.active !== false);
    return { teams: [...teams.values()], staff };
  }

  function openTransfer() {
    const view = state.current;
    if (!view || !view.escalation) return;
    const { teams, staff } = transferTargets();
    const teamSelect = $("transfer-team");
    const staffSelect = $("transfer-staff");
    teamSelect.replaceChildren(new Option("（不变）", ""));
    for (const team of teams) {
      const current = view.escalation.team && same(view.escalation.team.id, team.id);
      teamSelect.append(new Option(team.name + (current ? "（当前）" : ""), String(team.id)));
    }
    staffSelect.replaceChildren(new Option("（不指定）", ""));
    for (const person of staff) {
      const presence = person.presence ? "（" + (PRESENCE[person.presence] || person.presence) + "）" : "";
      staffSelect.append(new Option((person.display_name || person.username || "#" + person.id) + presence, String(person.id)));
    }
    $("transfer-note").value = "";
    $("transfer-msg").textContent = "";
    $("transfer-msg").className = "form-msg";
    $("transfer-dialog").showModal();
  }

  function idOf(value, candidates) {
    const found = candidates.find((c) => String(c.id) === value);
    return found ? found.id : value;
  }

  async function submitTransfer(event) {
    event.preventDefault();
    const view = state.current;
    if (!view) return;
    const { teams, staff } = transferTargets();
    const body = {};
    const teamValue = $("transfer-team").value;
    const staffValue = $("transfer-staff").value;
    if (teamValue) body.team_id = idOf(teamValue, teams);
    if (staffValue) body.staff_id = idOf(staffValue, staff);
    const note = $("transfer-note").value.trim();
    if (note) body.note = note;
    if (body.team_id === undefined && body.staff_id === undefined) {
      $("transfer-msg").textContent = "请选择要转给的团队或同事";
      $("transfer-msg").className = "form-msg error";
      return;
    }
    $("transfer-submit").disabled = true;
    try {
      const item = await api("POST", "/conversations/" + encodeURIComponent(view.conversation.id) + "/transfer", body);
      $("transfer-dialog").close();
      if (item) upsertItem(item);
      toast("已转接", "ok");
    } catch (error) {
      $("transfer-msg").textContent = errorText(error);
      $("transfer-msg").className = "form-msg error";
    } finally {
      $("transfer-submit").disabled = false;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Canned replies
  // ---------------------------------------------------------------------------------------------
  async function loadCanned() {
    try {
      state.canned = (await api("GET", "/canned-replies")) || [];
    } catch (_) {
      state.canned = [];
    }
    renderCanned();
  }

  function renderCanned() {
    const filter = $("canned-filter").value.trim().toLowerCase();
    const list = $("canned-list");
    const matches = state.canned.filter((c) => !filter ||
      String(c.title || "").toLowerCase().includes(filter) || String(c.text || "").toLowerCase().includes(filter));
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
    list.replaceChildren(...nodes);
    return matches;
  }

  function insertCanned(reply) {
    const textarea = $("reply");
    const start = textarea.selectionStart ?? textarea.value.length;
    const end = textarea.selectionEnd ?? textarea.value.length;
    textarea.setRangeText(String(reply.text || ""), start, end, "end");
    $("canned").hidden = true;
    textarea.focus();
  }

  async function deleteCanned(reply) {
    try {
      await api("DELETE", "/canned-replies/" + encodeURIComponent(reply.id));
      state.canned = state.canned.filter((c) => !same(c.id, reply.id));
      renderCanned();
    } catch (error) {
      toast(errorText(error), "error");
    }
  }

  async function addCanned(event) {
    event.preventDefault();
    const title = $("canned-title").value.trim();
    const text = $("canned-text").value.trim();
    if (!title || !text) return;
    try {
      const created = await api("POST", "/canned-replies", { title, text });
      if (created) state.canned.push(created);
      else await loadCanned();
      $("canned-title").value = "";
      $("canned-text").value = "";
      renderCanned();
    } catch (error) {
      toast(errorText(error), "error");
    }
  }

  function toggleCanned(force) {
    const box = $("canned");
    box.hidden = force === undefined ? !box.hidden : !force;
    if (!box.hidden) {
      $("canned-filter").value = "";
      renderCanned();
      $("canned-filter").focus();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Patient panel
  // ---------------------------------------------------------------------------------------------
  function section(title, ...children) {
    const node = el("div", "p-section");
    node.append(el("h4", "", title), ...children);
    return node;
  }

  function keyValues(pairs) {
    const dl = el("dl", "kv");
    for (const [key, value] of pairs) {
      if (value === undefined || value === null || value === "") continue;
      dl.append(el("dt", "", key), el("dd", "", value));
    }
    return dl;
  }

  function scalar(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "boolean") return value ? "是" : "否";
    if (typeof value === "object") return JSON.stringify(value);
    const text = String(value);
    return /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(text) ? formatTime(text) : text;
  }

  function summary(entry) {
    if (entry === null || typeof entry !== "object") return { title: scalar(entry), sub: "" };
    const titleKey = ["name", "display_name", "label", "title", "department", "summary", "type"].find((k) => entry[k]);
    const title = titleKey ? scalar(entry[titleKey]) : "#" + (entry.id ?? "");
    const sub = Object.entries(entry)
      .filter(([k, v]) => k !== titleKey && k !== "id" && v !== null && v !== undefined && v !== "" && typeof v !== "object")
      .map(([k, v]) => (FIELD_LABEL[k] || k) + "：" + scalar(v)).join(" · ");
    return { title, sub };
  }

  function entryList(entries) {
    const ul = el("ul", "p-list");
    for (const entry of entries) {
      const { title, sub } = summary(entry);
      const li = el("li");
      li.append(el("div", "", title));
      if (sub) li.append(el("div", "sub", sub));
      ul.append(li);
    }
    return ul;
  }

  /** The right-hand panel. Exposed for tests. */
  function renderPatientPanel(patient, currentConversationId) {
    const root = el("div", "patient-inner");
    if (!patient) {
      root.append(el("div", "empty-state small", "没有患者信息"));
      return root;
    }
    const label = patient.label || "患者";
    const head = el("div", "p-head");
    head.append(el("div", "avatar", Array.from(label)[0] || "患"));
    const names = el("div");
    names.append(el("div", "p-name", label), el("div", "p-sub", "患者 ID " + (patient.id ?? "")));
    head.append(names);
    root.append(head);

    const identities = patient.identities || [];
    if (identities.length) {
      const ul = el("ul", "p-list");
      for (const identity of identities) {
        const li = el("li");
        const line = el("div");
        line.append(el("span", "mono", identity.openid_masked || ""));
        line.append(el("span", "pill" + (identity.subscribed ? " ok" : ""), identity.subscribed ? "已关注" : "未关注"));
        li.append(line);
        li.append(el("div", "sub", "公众号 " + (identity.app_id || "")));
        if (identity.unionid) li.append(el("div", "sub mono", "UnionID " + identity.unionid));
        ul.append(li);
      }
      root.append(section("微信身份", ul));
    } else {
      root.append(section("微信身份", el("div", "p-empty", "无")));
    }

    const dependants = patient.dependants || [];
    root.append(section("就诊人", dependants.length ? entryList(dependants) : el("div", "p-empty", "暂无就诊人")));

    const conversations = [...(patient.conversations || [])].sort(
      (a, b) => (parseTime(b.started_at) || 0) - (parseTime(a.started_at) || 0));
    if (conversations.length) {
      const ul = el("ul", "p-list");
      for (const conv of conversations) {
        const li = el("li");
        const current = same(conv.id, currentConversationId);
        const line = el("div", "", "会话 #" + conv.id);
        line.append(el("span", "pill" + (current ? " ok" : ""), current ? "当前" : (CONVERSATION_STATUS[conv.status] || conv.status || "")));
        li.append(line);
        li.append(el("div", "sub", "开始 " + formatTime(conv.started_at) +
          (conv.last_message_at ? " · 最后消息 " + formatTime(conv.last_message_at) : "")));
        if (!current) {
          li.classList.add("link");
          li.title = "查看该会话";
          li.addEventListener("click", () => openConversation(conv.id));
        }
        ul.append(li);
      }
      root.append(section("历史会话", ul));
    } else {
      root.append(section("历史会话", el("div", "p-empty", "无")));
    }

    const records = patient.records && typeof patient.records === "object" ? Object.entries(patient.records) : [];
    if (!records.length) {
      root.append(section("记录", el("div", "p-empty", "暂无记录")));
    } else {
      for (const [key, value] of records) {
        const title = RECORD_LABEL[key] || key;
        let body;
        if (Array.isArray(value)) body = value.length ? entryList(value) : el("div", "p-empty", "无");
        else if (value && typeof value === "object") body = keyValues(Object.entries(value).map(([k, v]) => [FIELD_LABEL[k] || k, scalar(v)]));
        else body = el("div", "", scalar(value));
        root.append(section(title, body));
      }
    }
    return root;
  }

  // ---------------------------------------------------------------------------------------------
  // Real time
  // ---------------------------------------------------------------------------------------------
  function setConnection(stateName, label) {
    $("conn").dataset.state = stateName;
    $("conn-label").textContent = label;
  }

  function connect() {
    if (!state.me) return;
    clearTimeout(state.reconnectTimer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = scheme + "//" + location.host + API + "/ws";
    if (state.lastEventId) url += "?since=" + encodeURIComponent(state.lastEventId);
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
      let event;
      try { event = JSON.parse(message.data); } catch (_) { return; }
      if (event && typeof event === "object") handleEvent(event);
    });
    ws.addEventListener("close", () => {
      if (state.ws !== ws) return;
      state.ws = null;
      if (!state.me) return;
      if (state.wsOpenedAt && Date.now() - state.wsOpenedAt > 10000) state.wsAttempts = 0;
      state.wsOpenedAt = 0;
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    if (!state.me) return;
    const attempt = state.wsAttempts;
    state.wsAttempts += 1;
    const base = Math.min(RECONNECT_MAX_MS, 1000 * 2 ** attempt);
    const delay = Math.round(base * (0.6 + Math.random() * 0.4));
    setConnection("closed", "已断开，" + Math.ceil(delay / 1000) + " 秒后重连");
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = setTimeout(async () => {
      if (!state.me) return;
      if (state.wsAttempts >= 2) {
        // A refused handshake looks like any other failure: ask whether the session still exists.
        try { await api("GET", "/me"); } catch (_) { if (!state.me) return; }
      }
      connect();
    }, delay);
  }

  function pick(event, keys, test) {
    for (const key of keys) {
      const value = event[key];
      if (value && typeof value === "object" && test(value)) return value;
    }
    if (event.data && typeof event.data === "object") {
      for (const key of keys) {
        const value = event.data[key];
        if (value && typeof value === "object" && test(value)) return value;
      }
    }
    return null;
  }

  function eventItem(event) {
    const isItem = (v) => v.escalation_id !== undefined;
    return pick(event, ["escalation", "item", "queue_item"], isItem) || (isItem(event) ? event : null);
  }

  function eventConversationId(event, inner) {
    if (event.conversation_id !== undefined) return event.conversation_id;
    if (inner && inner.conversation_id !== undefined) return inner.conversation_id;
    if (event.data && event.data.conversation_id !== undefined) return event.data.conversation_id;
    return null;
  }

  /** Apply one console event. Exposed for tests; tolerant of the payload being nested or flat. */
  function handleEvent(event) {
    if (event.id !== undefined && event.id !== null) state.lastEventId = String(event.id);
    if (!state.me) return;
    switch (event.type) {
      case "escalation.created":
      case "escalation.updated":
        onEscalationEvent(event);
        break;
      case "message.created":
      case "message.updated":
        onMessageEvent(event);
        break;
      case "note.created":
        onNoteEvent(event);
        break;
      case "typing":
        onTypingEvent(event);
        break;
      case "presence":
        onPresenceEvent(event);
        break;
      default:
        break;
    }
  }

  function onEscalationEvent(event) {
    const item = eventItem(event);
    if (!item || !item.status) {
      scheduleQueueRefresh();
      return;
    }
    const previous = upsertItem(item);
    if (event.type === "escalation.created" && !previous && state.items.has(String(item.escalation_id))) {
      const priority = PRIORITY[item.priority] || "";
      toast("新的转人工会话（" + priority + "）：" + ((item.patient && item.patient.label) || "患者") + " · " + reasonText(item.reason));
    }
  }

  function messageOf(event) {
    const nested = pick(event, ["message"], (v) => v.id !== undefined || v.content !== undefined);
    if (nested) return nested;
    if (event.message_id !== undefined) return { ...event, id: event.message_id };
    return null;
  }

  function onMessageEvent(event) {
    const message = messageOf(event);
    const conversationId = eventConversationId(event, message);
    if (!message) {
      if (state.current && same(conversationId, state.current.conversation.id)) {
        openConversation(state.current.conversation.id);
      }
      return;
    }
    if (message.agent) rememberStaff(message.agent);
    const open = state.current && same(conversationId, state.current.conversation.id);
    if (open) {
      const view = state.current;
      const isNew = upsertById(view.messages, message);
      if (isNew) {
        // The server's order is the id order; patient times are WeChat's whole seconds, so sorting
        // by time would put a patient's message before the answer to their previous one.
        view.messages.sort((a, b) => (Number(a.id) || 0) - (Number(b.id) || 0));
      }
      // Whoever just sent a message has stopped typing.
      const people = state.typing.get(String(conversationId));
      if (people) people.delete(message.sender_type === "patient" ? "patient" : "staff:" + (message.agent && message.agent.id));
      renderMessages(message.sender_type === "agent" && message.agent && state.me && same(message.agent.id, state.me.id));
      renderTyping();
    } else if (message.sender_type === "patient" && conversationId !== null) {
      const known = [...state.items.values()].some((i) => same(i.conversation_id, conversationId));
      if (known) {
        state.unread.add(String(conversationId));
        renderQueues();
      }
    }
  }

  function onNoteEvent(event) {
    const note = pick(event, ["note"], (v) => v.text !== undefined || v.id !== undefined);
    const conversationId = eventConversationId(event, note);
    if (!note || !state.current || !same(conversationId, state.current.conversation.id)) return;
    upsertById(state.current.notes, note);
    renderMessages(false);
  }

  function onTypingEvent(event) {
    const conversationId = eventConversationId(event, null);
    if (conversationId === null) return;
    // {"who": {"kind": "agent"|"patient", "id", "display_name"}}; older shapes name the sender differently.
    const person = pick(event, ["who", "staff", "agent", "by"],
      (v) => v.id !== undefined || v.display_name !== undefined || v.kind !== undefined);
    const kind = (person && person.kind) || event.sender_type || (typeof event.who === "string" ? event.who : null);
    const fromPatient = kind === "patient" || (!person && kind !== "agent");
    if (!fromPatient && person && state.me && same(person.id, state.me.id)) return;
    const key = fromPatient ? "patient" : "staff:" + (person && person.id);
    const label = fromPatient ? "患者正在输入…" : ((person && person.display_name) || "同事") + " 正在输入…";
    const people = state.typing.get(String(conversationId)) || new Map();
    people.set(key, { label, until: Date.now() + TYPING_SHOW_MS });
    state.typing.set(String(conversationId), people);
    renderTyping();
  }

  function onPresenceEvent(event) {
    const person = pick(event, ["staff"], (v) => v.id !== undefined) ||
      (event.staff_id !== undefined ? { id: event.staff_id, display_name: event.display_name } : null);
    if (!person) return;
    const presence = event.presence || person.presence;
    rememberStaff({ ...person, ...(presence ? { presence } : {}) });
    if (state.me && same(person.id, state.me.id) && presence && presence !== state.me.presence) {
      setMe({ presence });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Administration: staff and teams
  // ---------------------------------------------------------------------------------------------

  /** Puts `rows` into the table's body, or one row saying `emptyText` across `columns` cells. */
  function fillTable(tableId, rows, emptyText, columns) {
    if (!rows.length) {
      const td = el("td", "p-empty", emptyText);
      td.colSpan = columns;
      rows = [el("tr")];
      rows[0].append(td);
    }
    $(tableId).tBodies[0].replaceChildren(...rows);
  }

  async function loadStaff() {
    let staff;
    let teams;
    try {
      [staff, teams] = await Promise.all([api("GET", "/admin/staff"), api("GET", "/admin/teams")]);
    } catch (error) {
      toast("员工列表加载失败：" + errorText(error), "error");
      return;
    }
    state.adminTeams = teams || [];
    for (const person of staff || []) rememberStaff(person);
    const rows = (staff || []).map((person) => {
      const tr = el("tr", person.active === false ? "inactive" : "");
      tr.append(
        el("td", "mono", person.username),
        el("td", "", person.display_name),
        el("td", "", ROLE[person.role] || person.role),
        el("td", "", (person.teams || []).map((t) => t.name).join("、") || "—"),
        el("td", "", person.capacity),
        el("td", "", PRESENCE[person.presence] || person.presence || ""),
        el("td", "", person.active === false ? "已停用" : "启用"),
      );
      const cell = el("td");
      if (!state.me || !same(person.id, state.me.id)) {
        const toggle = el("button", "btn small", person.active === false ? "启用" : "停用");
        toggle.type = "button";
        toggle.addEventListener("click", async () => {
          try {
            await api("PATCH", "/admin/staff/" + encodeURIComponent(person.id), { active: person.active === false });
            loadStaff();
          } catch (error) {
            toast(errorText(error), "error");
          }
        });
        cell.append(toggle);
      }
      tr.append(cell);
      return tr;
    });
    fillTable("staff-table", rows, "暂无员工", 8);

    const checks = state.adminTeams.map((team) => {
      const label = el("label");
      const box = el("input");
      box.type = "checkbox";
      box.name = "team_ids";
      box.value = String(team.id);
      label.append(box, document.createTextNode(team.name));
      return label;
    });
    $("staff-form-teams").replaceChildren(...(checks.length ? checks : [el("span", "p-empty", "请先创建团队")]));
    $("team-list").replaceChildren(...state.adminTeams.map((team) => {
      const li = el("li");
      li.append(el("span", "", team.name), el("span", "p-sub", (team.members || []).length + " 人"));
      return li;
    }));
  }

  async function createStaff(event) {
    event.preventDefault();
    const form = event.target;
    const msg = $("staff-form-msg");
    const data = new FormData(form);
    const teamIds = data.getAll("team_ids").map((value) => idOf(value, state.adminTeams));
    const body = {
      username: String(data.get("username") || "").trim(),
      display_name: String(data.get("display_name") || "").trim(),
      password: String(data.get("password") || ""),
      role: String(data.get("role")),
      capacity: parseInt(data.get("capacity"), 10) || 1,
      team_ids: teamIds,
    };
    if (!body.username || !body.display_name || !body.password) {
      msg.textContent = "请填写用户名、姓名和初始密码";
      msg.className = "form-msg error";
      return;
    }
    try {
      const created = await api("POST", "/admin/staff", body);
      msg.textContent = "已创建：" + ((created && created.display_name) || body.display_name);
      msg.className = "form-msg ok";
      form.reset();
      loadStaff();
    } catch (error) {
      msg.textContent = errorText(error);
      msg.className = "form-msg error";
    }
  }

  async function createTeam(event) {
    event.preventDefault();
    const form = event.target;
    const msg = $("team-form-msg");
    const name = String(new FormData(form).get("name") || "").trim();
    if (!name) return;
    try {
      await api("POST", "/admin/teams", { name });
      msg.textContent = "已创建团队：" + name;
      msg.className = "form-msg ok";
      form.reset();
      loadStaff();
    } catch (error) {
      msg.textContent = errorText(error);
      msg.className = "form-msg error";
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Audit log
  // ---------------------------------------------------------------------------------------------
  async function loadAudit(event) {
    if (event) event.preventDefault();
    const data = new FormData($("audit-form"));
    const params = new URLSearchParams();
    for (const key of ["patient_id", "staff_id", "limit"]) {
      const value = String(data.get(key) || "").trim();
      if (value) params.set(key, value);
    }
    let entries;
    try {
      entries = await api("GET", "/audit?" + params.toString());
    } catch (error) {
      toast("审计日志加载失败：" + errorText(error), "error");
      return;
    }
    const rows = (entries || []).map((entry) => {
      const tr = el("tr");
      const ua = el("td", "ua", entry.user_agent || "");
      ua.title = entry.user_agent || "";
      tr.append(
        el("td", "", formatDateTime(entry.at)),
        el("td", "", (entry.staff_username || "") + (entry.staff_id !== null && entry.staff_id !== undefined ? " #" + entry.staff_id : "")),
        el("td", "mono", entry.action),
        el("td", "", (entry.object_type || "") + (entry.object_id !== null && entry.object_id !== undefined ? " #" + entry.object_id : "")),
        el("td", "", entry.patient_id ?? ""),
        el("td", "mono", entry.ip || ""),
        ua,
      );
      return tr;
    });
    fillTable("audit-table", rows, "没有记录", 7);
  }

  // ---------------------------------------------------------------------------------------------
  // Wiring
  // ---------------------------------------------------------------------------------------------
  function wire() {
    $("login-form").addEventListener("submit", onLogin);
    $("logout").addEventListener("click", logout);
    for (const button of $("presence").querySelectorAll("button")) {
      button.addEventListener("click", () => {
        if (!state.me || button.dataset.presence === state.me.presence) return;
        setPresence(button.dataset.presence);
      });
    }
    for (const tab of document.querySelectorAll(".view-tab")) {
      tab.addEventListener("click", () => showView(tab.dataset.view));
    }
    for (const button of document.querySelectorAll(".composer .mode")) {
      button.addEventListener("click", () => { setMode(button.dataset.mode); $("reply").focus(); });
    }
    const reply = $("reply");
    reply.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        send();
      } else if (event.key === "Escape") {
        $("canned").hidden = true;
      }
    });
    reply.addEventListener("input", sendTyping);
    $("send").addEventListener("click", send);
    $("conv-claim").addEventListener("click", () => {
      if (state.current && state.current.escalation) claimEscalation(state.current.escalation);
    });
    $("conv-transfer").addEventListener("click", openTransfer);
    $("conv-resolve").addEventListener("click", resolveCurrent);
    $("transfer-form").addEventListener("submit", submitTransfer);
    $("transfer-cancel").addEventListener("click", () => $("transfer-dialog").close());
    $("canned-toggle").addEventListener("click", () => toggleCanned());
    $("canned-filter").addEventListener("input", renderCanned);
    $("canned-filter").addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        const first = renderCanned()[0];
        if (first) insertCanned(first);
      } else if (event.key === "Escape") {
        toggleCanned(false);
        $("reply").focus();
      }
    });
    $("canned-add").addEventListener("submit", addCanned);
    document.addEventListener("click", (event) => {
      const box = $("canned");
      if (!box.hidden && !box.contains(event.target) && event.target !== $("canned-toggle")) box.hidden = true;
    });
    $("staff-form").addEventListener("submit", createStaff);
    $("team-form").addEventListener("submit", createTeam);
    $("staff-refresh").addEventListener("click", loadStaff);
    $("audit-form").addEventListener("submit", loadAudit);
    window.addEventListener("online", () => {
      if (state.me && !state.ws) { state.wsAttempts = 0; connect(); }
    });
  }

  async function boot() {
    wire();
    try {
      startApp(await api("GET", "/me", undefined, { anonymous: true }));
    } catch (_) {
      showLogin("");
    }
  }

  // Pure rendering helpers, for tests and debugging; they hold no secrets.
  window.CareBridgeConsole = Object.freeze({
    renderMessage, renderNote, renderQueueItem, renderPatientPanel, formatDuration, messageText, slaInfo, handleEvent,
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
