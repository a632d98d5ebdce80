/* Handing a chat to another team or colleague (the transfer dialog). */

import { api, errorText } from "./api.js";
import { $, toast } from "./dom.js";
import { PRESENCE } from "./labels.js";
import { upsertItem } from "./queues.js";
import { state } from "./state.js";

/** Every team and active colleague, whatever the role: a chat can go to any of them. */
export async function loadDirectory() {
  try {
    state.directory = await api("GET", "/directory");
  } catch (_) { /* keep what we had; the dialog still offers it */ }
}

/** A presence event about a colleague: the dialog shows who is online. */
export function notePresence(staffId, presence) {
  const colleague = state.directory.staff.find((s) => s.id === staffId);
  if (colleague) colleague.presence = presence;
}

export async function openTransfer() {
  const view = state.current;
  if (view === null || view.escalation === null) return;
  await loadDirectory();
  const teamSelect = $("transfer-team");
  const staffSelect = $("transfer-staff");
  teamSelect.replaceChildren(new Option("（不变）", ""));
  for (const team of state.directory.teams) {
    const current = view.escalation.team.id === team.id;
    teamSelect.append(new Option(team.name + (current ? "（当前）" : ""), String(team.id)));
  }
  staffSelect.replaceChildren(new Option("（不指定）", ""));
  for (const person of state.directory.staff) {
    if (person.id === state.me.id) continue;
    staffSelect.append(new Option(person.display_name + "（" + PRESENCE[person.presence] + "）", String(person.id)));
  }
  $("transfer-note").value = "";
  $("transfer-msg").textContent = "";
  $("transfer-msg").className = "form-msg";
  $("transfer-dialog").showModal();
}

export async function submitTransfer(event) {
  event.preventDefault();
  const view = state.current;
  if (view === null) return;
  const body = {};
  const teamValue = $("transfer-team").value;
  const staffValue = $("transfer-staff").value;
  if (teamValue) body.team_id = Number(teamValue);
  if (staffValue) body.staff_id = Number(staffValue);
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
    upsertItem(item);
    toast("已转接", "ok");
  } catch (error) {
    $("transfer-msg").textContent = errorText(error);
    $("transfer-msg").className = "form-msg error";
  } finally {
    $("transfer-submit").disabled = false;
  }
}
