/* 投诉工作台 · 科室联络员 (the complaints office): who answers for each department's complaints
 * (GET /complaints/liaisons/departments, PUT /complaints/liaisons/departments/{id} with the whole
 * list). A liaison may be any active colleague (the staff directory); they then see the cases
 * assigned to their department. The server audits every change. */

import { api } from "./api.js";
import { caseErrorText, offices, resetOffices } from "./complaints-common.js";
import { $, el, fillTable, toast } from "./dom.js";
import { state } from "./state.js";

const COLUMNS = 3;

async function save(departmentId, staffIds, done) {
  try {
    await api("PUT", "/complaints/liaisons/departments/" + encodeURIComponent(departmentId), { staff_ids: staffIds });
    toast(done, "ok");
  } catch (error) {
    toast(caseErrorText(error), "error");
  }
  resetOffices();
  await loadLiaisons();
}

function liaisonPill(entry, liaison) {
  const pill = el("span", "pill complaint-liaison", liaison.display_name);
  const remove = el("button", "complaint-liaison-remove", "×");
  remove.type = "button";
  remove.title = "移除 " + liaison.display_name;
  remove.setAttribute("aria-label", remove.title);
  remove.addEventListener("click", () => save(
    entry.department.id,
    entry.liaisons.filter((l) => l.id !== liaison.id).map((l) => l.id),
    "已将" + liaison.display_name + "移出" + entry.department.name + "的联络员",
  ));
  pill.append(remove);
  return pill;
}

function adder(entry) {
  const select = el("select", "complaint-liaison-add");
  select.setAttribute("aria-label", "为" + entry.department.name + "添加联络员");
  select.append(new Option("添加联络员…", ""));
  const taken = new Set(entry.liaisons.map((l) => l.id));
  for (const colleague of state.directory.staff) {
    if (!taken.has(colleague.id)) select.append(new Option(colleague.display_name, String(colleague.id)));
  }
  select.addEventListener("change", () => {
    if (!select.value) return;
    const added = state.directory.staff.find((s) => String(s.id) === select.value);
    save(entry.department.id, [...taken, Number(select.value)],
      "已将" + (added ? added.display_name : "该同事") + "设为" + entry.department.name + "的联络员");
  });
  return select;
}

function departmentRow(entry) {
  const tr = el("tr");
  tr.dataset.departmentId = entry.department.id;
  const names = el("td");
  if (entry.liaisons.length) names.append(...entry.liaisons.map((l) => liaisonPill(entry, l)));
  else names.append(el("span", "p-empty", "未设置"));
  const add = el("td");
  add.append(adder(entry));
  tr.append(el("td", "", entry.department.name), names, add);
  return tr;
}

export async function loadLiaisons() {
  if ($("complaint-liaisons").hidden) return;
  let departments;
  try {
    departments = await offices();
  } catch (error) {
    toast("联络员列表加载失败：" + caseErrorText(error), "error");
    return;
  }
  fillTable("complaint-liaisons-table", departments.map(departmentRow), "还没有科室", COLUMNS);
}

export function toggleLiaisons() {
  $("complaint-liaisons").hidden = !$("complaint-liaisons").hidden;
  loadLiaisons();
}

export function resetLiaisons() {
  $("complaint-liaisons").hidden = true;
  $("complaint-liaisons-table").tBodies[0].replaceChildren();
}
