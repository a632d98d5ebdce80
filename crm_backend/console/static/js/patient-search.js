/* Finding a patient from the console (GET /patients?query=): by name, a full or masked phone
 * (139****1234), or a full resident ID or hospital card number. A result opens the patient's 360 view in the right-hand column, from
 * which any of their chats opens, never-escalated ones included. */

import { api, errorText } from "./api.js";
import { $, el } from "./dom.js";
import { ageOf, showPatient } from "./patient-panel.js";
import { isSupervisor, state } from "./state.js";

const SEX = { M: "男", F: "女" };

/** A found patient as a list entry: the masked name, then sex, age and the masked numbers. */
export function patientEntry(patient) {
  const li = el("li", "link");
  li.dataset.patientId = patient.id;
  li.append(el("div", "p-name", patient.label));
  const age = ageOf(patient.birth_date);
  const details = [
    patient.sex ? SEX[patient.sex] || patient.sex : "",
    age === null ? "" : age + "岁",
    patient.phone || "",
    patient.id_number || "",
    patient.card_number ? "卡 " + patient.card_number : "",
  ];
  li.append(el("div", "sub mono", details.filter(Boolean).join(" · ")));
  return li;
}

/** Why a search found nobody, in the words of the caller's scope. */
export function notFoundText() {
  // Only supervisors and admins search every patient (escalations/access.py); the others, the
  // complaints office included, find the patients their teams served or follow up.
  const scope = isSupervisor() ? "" : "（只能找到本团队接待过或随访的患者）";
  return "未找到匹配的患者" + scope +
    "。姓名可输入开头几个字；手机号可输入完整号码或 139****1234 形式；身份证号、就诊卡号需输入完整。";
}

export function findPatients(query) {
  return api("GET", "/patients?query=" + encodeURIComponent(query));
}

function resultEntry(patient, openConversation) {
  const li = patientEntry(patient);
  li.title = "查看患者信息与历史会话";
  li.addEventListener("click", () => {
    for (const node of $("patient-results").querySelectorAll("li")) node.classList.toggle("selected", node === li);
    showPatient(patient.id, state.currentId, openConversation);
  });
  return li;
}

function showResults(...children) {
  const box = $("patient-results");
  const close = el("button", "btn ghost small p-close", "关闭");
  close.type = "button";
  close.addEventListener("click", clearPatientSearch);
  const bar = el("div", "results-bar");
  bar.append(el("span", "hint", "搜索结果"), close);
  box.replaceChildren(bar, ...children);
  box.hidden = false;
}

export function clearPatientSearch() {
  $("patient-results").hidden = true;
  $("patient-results").replaceChildren();
  $("patient-query").value = "";
}

async function search(event, openConversation) {
  event.preventDefault();
  const query = $("patient-query").value.trim();
  if (!query) return;
  let patients;
  try {
    patients = await findPatients(query);
  } catch (error) {
    showResults(el("div", "p-empty", "搜索失败：" + errorText(error)));
    return;
  }
  if (!patients.length) {
    showResults(el("div", "p-empty", notFoundText()));
    return;
  }
  const ul = el("ul", "p-list");
  ul.append(...patients.map((p) => resultEntry(p, openConversation)));
  showResults(ul);
}

/** Wires the search box; `openConversation` opens a chat from the 360 view's history. */
export function wirePatientSearch(openConversation) {
  $("patient-search").addEventListener("submit", (event) => search(event, openConversation));
}
