/* Logging in and out, the header's who-am-I, and the staff member's presence. */

import { api, errorText } from "./api.js";
import { $, toast } from "./dom.js";
import { mayReadPlans } from "./followup-plans.js";
import { mayReadComplaintsReport } from "./complaints-report.js";
import { mayReadFollowupReport } from "./followup-report.js";
import { PRESENCE, ROLE } from "./labels.js";
import { isAdmin, isSupervisor, state } from "./state.js";

export const TITLE = "CareBridge 坐席工作台";

export function showLogin(message, kind) {
  $("app").hidden = true;
  $("login-view").hidden = false;
  const box = $("login-error");
  box.hidden = !message;
  box.textContent = message;
  box.className = "login-error" + (kind ? " " + kind : "");
  document.title = TITLE;
  setTimeout(() => ($("login-username").value ? $("login-password") : $("login-username")).focus(), 0);
}

function throttledText(retryAfter) {
  const seconds = parseInt(retryAfter, 10);
  if (!(seconds > 0)) return "请稍后再试";
  return seconds >= 120 ? "请 " + Math.ceil(seconds / 60) + " 分钟后再试" : "请 " + seconds + " 秒后再试";
}

/** Handles the login form; answers Me when the credentials were accepted, else null. */
export async function submitLogin(event) {
  event.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  if (!username || !password) {
    showLogin("请输入用户名和密码");
    return null;
  }
  $("login-submit").disabled = true;
  $("login-submit").textContent = "登录中…";
  try {
    const me = await api("POST", "/login", { username, password }, { anonymous: true });
    $("login-password").value = "";
    $("login-error").hidden = true;
    return me;
  } catch (error) {
    if (error.status === 401) showLogin("用户名或密码错误");
    else if (error.status === 429) showLogin("登录失败次数过多，已暂时锁定。" + throttledText(error.retryAfter) + "。", "throttled");
    else showLogin(errorText(error));
    $("login-password").select();
    return null;
  } finally {
    $("login-submit").disabled = false;
    $("login-submit").textContent = "登录";
  }
}

export async function logout() {
  try {
    await api("POST", "/logout");
  } catch (_) { /* the session may already be gone; leave anyway */ }
}

/** Takes a Me from the server and shows what it allows. */
export function setMe(me) {
  state.me = me;
  $("me-name").textContent = me.display_name;
  const teams = me.teams.map((t) => t.name).join("、");
  $("me-role").textContent = ROLE[me.role] + (teams ? " · " + teams : "");
  for (const button of $("presence").querySelectorAll("button")) {
    button.setAttribute("aria-checked", String(button.dataset.presence === me.presence));
  }
  $("tab-staff").hidden = !isAdmin();
  $("tab-audit").hidden = !isSupervisor();
  $("tab-report").hidden = !isSupervisor();
  $("tab-followup-report").hidden = !mayReadFollowupReport();
  $("tab-complaints-report").hidden = !mayReadComplaintsReport();
  $("tab-hospital").hidden = !isSupervisor();
  $("tab-plans").hidden = !mayReadPlans();
  $("tab-followups").hidden = !["nurse", "clinician", "supervisor", "admin"].includes(me.role);
  $("sla-counter").hidden = !isSupervisor();
  $("canned-add").hidden = !isSupervisor();
}

export async function setPresence(presence) {
  try {
    setMe(await api("PUT", "/me/presence", { presence }));
    toast("状态已切换为「" + PRESENCE[presence] + "」", "ok");
  } catch (error) {
    toast(errorText(error), "error");
  }
}
