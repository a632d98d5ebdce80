/* What the page knows right now, shared by the modules; reset when staff log out. */

export const state = {
  me: null,                // Me of docs/CONSOLE_API.md
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
  directory: { teams: [], staff: [] }, // where a chat can be transferred to
  adminTeams: [],
  typing: new Map(),       // conversation id -> Map(who -> {label, until})
  lastTyping: { id: null, at: 0 },
  ws: null,
  wsAttempts: 0,
  wsOpenedAt: 0,
  reconnectTimer: null,
  lastEventId: null,
  queueLoads: 0,           // queue fetches in flight
  liveDuringLoad: [],      // items from events that arrived while a fetch was in flight
  ticker: null,
};

export function isSupervisor() {
  return state.me !== null && (state.me.role === "supervisor" || state.me.role === "admin");
}

export function isAdmin() { return state.me !== null && state.me.role === "admin"; }

export function serverNow() { return Date.now() + state.clockOffset; }
