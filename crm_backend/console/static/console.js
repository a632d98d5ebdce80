/* CareBridge staff console: the entry module, which starts the page and wires its controls.
 *
 * Native ES modules under js/, no build step. They talk only to the JSON API in docs/CONSOLE_API.md
 * and to the console WebSocket, and read the exact shapes the server's typed models send. Every piece
 * of patient or staff text is put on the page with textContent: patient messages are untrusted, and
 * nothing here ever parses data as markup.
 */

import { api, onSession } from "./js/api.js";
import { loadAudit, verifyAudit } from "./js/audit.js";
import { addCanned, insertCanned, loadCanned, renderCanned, toggleCanned } from "./js/canned.js";
import {
  closeConversation, messageText, openConversation, renderMessage, renderNote, resolveCurrent, send, setMode,
} from "./js/conversation.js";
import { $ } from "./js/dom.js";
import { loadHospitalData, wireHospitalData } from "./js/hospital-data.js";
import { loadPlans, mayReadPlans, renderTimePoint, resetFollowupPlans, wireFollowupPlans } from "./js/followup-plans.js";
import { loadFollowups, mayFollowUp, wireFollowups } from "./js/followup-worklists.js";
import { formatDuration } from "./js/format.js";
import {
  loadFollowupReport, mayReadFollowupReport, resetFollowupReport, wireFollowupReport,
} from "./js/followup-report.js";
import {
  checkComplaintsReport, loadComplaintsReport, mayReadComplaintsReport, resetComplaintsReport, wireComplaintsReport,
} from "./js/complaints-report.js";
import { resetRegister, wireRegister } from "./js/complaints-register.js";
import { resetComplaints, showComplaints, wireComplaints } from "./js/complaints-workspace.js";
import { wireSearch } from "./js/conversation-search.js";
import { loadLabels, resetLabels, wireLabels } from "./js/labels-ui.js";
import { connect, disconnect, handleEvent } from "./js/live.js";
import { render360, renderPatientPanel } from "./js/patient-panel.js";
import { clearPatientSearch, wirePatientSearch } from "./js/patient-search.js";
import {
  claimEscalation, loadQueues, renderQueueItem, renderQueues, slaInfo, tickQueues,
} from "./js/queues.js";
import { loadReport, wireReport } from "./js/report.js";
import { logout, setMe, setPresence, showLogin, submitLogin } from "./js/session.js";
import { createStaff, createTeam, loadStaff } from "./js/staff-admin.js";
import { isAdmin, isSupervisor, state } from "./js/state.js";
import { loadDirectory, openTransfer, submitTransfer } from "./js/transfer.js";
import { renderTriageDecisions } from "./js/triage-decisions.js";
import { renderTyping, sendTyping } from "./js/typing.js";

function showView(view) {
  if ((view === "staff" && !isAdmin()) || (["audit", "report", "hospital"].includes(view) && !isSupervisor())) {
    view = "workspace";
  }
  if (view === "plans" && !mayReadPlans()) view = "workspace";
  if (view === "followup-report" && !mayReadFollowupReport()) view = "workspace";
  if (view === "complaints-report" && !mayReadComplaintsReport()) view = "workspace";
  if (view === "followups" && !mayFollowUp()) view = "workspace";
  state.view = view;
  $("workspace").hidden = view !== "workspace";
  $("staff-view").hidden = view !== "staff";
  $("audit-view").hidden = view !== "audit";
  $("report-view").hidden = view !== "report";
  $("hospital-view").hidden = view !== "hospital";
  $("plans-view").hidden = view !== "plans";
  $("followup-report-view").hidden = view !== "followup-report";
  $("complaints-view").hidden = view !== "complaints";
  $("complaints-report-view").hidden = view !== "complaints-report";
  $("followup-view").hidden = view !== "followups";
  for (const tab of document.querySelectorAll(".view-tab")) tab.classList.toggle("active", tab.dataset.view === view);
  if (view === "staff") loadStaff();
  if (view === "audit") loadAudit();
  if (view === "report") loadReport();
  if (view === "hospital") loadHospitalData();
  if (view === "plans") loadPlans();
  if (view === "followup-report") loadFollowupReport();
  if (view === "complaints") showComplaints();
  if (view === "complaints-report") loadComplaintsReport();
  if (view === "followups") loadFollowups();
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
  loadLabels();
  loadDirectory();
  checkComplaintsReport();
  connect();
  clearInterval(state.ticker);
  state.ticker = setInterval(() => { tickQueues(); renderTyping(); }, 1000);
}

function stopApp() {
  state.me = null;
  delete $("queue-list").dataset.loadedAt;
  clearInterval(state.ticker);
  disconnect();
  state.items.clear();
  state.itemEls.clear();
  state.unread.clear();
  state.typing.clear();
  state.teams = [];
  state.canned = [];
  resetLabels();
  resetFollowupReport();
  resetComplaints();
  resetComplaintsReport();
  resetRegister();
  state.directory = { teams: [], staff: [] };
  state.current = null;
  state.currentId = null;
  clearPatientSearch();
  resetFollowupPlans();
  state.wsAttempts = 0;
  state.lastEventId = null;
}

onSession({
  unauthorized() {
    if (state.me === null) return;
    stopApp();
    showLogin("登录已过期，请重新登录");
  },
  refreshed: setMe,
});

function wire() {
  $("login-form").addEventListener("submit", async (event) => {
    const me = await submitLogin(event);
    if (me !== null) startApp(me);
  });
  $("logout").addEventListener("click", async () => {
    await logout();
    stopApp();
    showLogin("您已退出登录");
  });
  for (const button of $("presence").querySelectorAll("button")) {
    button.addEventListener("click", () => {
      if (state.me === null || button.dataset.presence === state.me.presence) return;
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
    if (state.current !== null && state.current.escalation !== null) claimEscalation(state.current.escalation);
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
  $("audit-verify").addEventListener("click", verifyAudit);
  wireReport();
  wireFollowupReport();
  wireComplaints();
  wireComplaintsReport();
  wireRegister(() => state.current);
  wireHospitalData();
  wireFollowupPlans();
  wireFollowups();
  wireLabels();
  wireSearch();
  wirePatientSearch(openConversation);
  window.addEventListener("online", () => {
    if (state.me !== null && state.ws === null) { state.wsAttempts = 0; connect(); }
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
  renderMessage, renderNote, renderQueueItem, renderPatientPanel, render360, formatDuration, messageText, slaInfo,
  handleEvent, renderTriageDecisions, renderTimePoint,
});

boot(); // module scripts run once the document is parsed
