/* The triage decisions of the conversation on screen, for clinical reviewers (GET /triage-decisions). */

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { formatTime, same } from "./format.js";
import { state } from "./state.js";

export const TRIAGE_LEVEL = { emergency: "急症", urgent: "尽快就诊", routine: "门诊预约", self_care: "居家观察" };
/** Who may read decisions (the API answers 403 to agents). */
const REVIEWERS = ["nurse", "supervisor", "admin"];

/** One line per decision, oldest first: when, level, red flags (or departments), rule version. */
export function renderTriageDecisions(decisions) {
  const box = el("div", "conv-triage");
  if (!decisions.length) return box;
  box.append(el("span", "triage-title", "分诊记录"));
  for (const decision of [...decisions].reverse()) {
    const flags = (decision.screen.flags || []).map((flag) => flag.name);
    const what = flags.length ? flags.join("、") : decision.departments.join("、");
    const line = el("div", "triage-line " + decision.level);
    line.dataset.decisionId = decision.id;
    line.textContent = [formatTime(decision.created_at), TRIAGE_LEVEL[decision.level] || decision.level, what,
      "规则 " + decision.rule_version].filter(Boolean).join(" · ");
    box.append(line);
  }
  return box;
}

export async function loadTriageDecisions(conversationId) {
  const slot = $("conv-triage");
  slot.replaceChildren();
  if (state.me === null || !REVIEWERS.includes(state.me.role)) return;
  let decisions;
  try {
    decisions = await api("GET", "/triage-decisions?conversation_id=" + encodeURIComponent(conversationId));
  } catch {
    return; // the conversation itself is on screen; its decisions are an extra
  }
  if (same(state.currentId, conversationId)) slot.replaceChildren(...renderTriageDecisions(decisions).childNodes);
}
