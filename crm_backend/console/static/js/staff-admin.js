/* Administration (admins only): staff accounts and teams. */

import { api, errorText } from "./api.js";
import { $, el, fillTable, toast } from "./dom.js";
import { PRESENCE, ROLE } from "./labels.js";
import { state } from "./state.js";

function staffRow(person) {
  const tr = el("tr", person.active ? "" : "inactive");
  tr.append(
    el("td", "mono", person.username),
    el("td", "", person.display_name),
    el("td", "", ROLE[person.role]),
    el("td", "", person.teams.map((t) => t.name).join("、") || "—"),
    el("td", "", person.capacity),
    el("td", "", PRESENCE[person.presence]),
    el("td", "", person.active ? "启用" : "已停用"),
  );
  const cell = el("td");
  if (person.id !== state.me.id) {
    const toggle = el("button", "btn small", person.active ? "停用" : "启用");
    toggle.type = "button";
    toggle.addEventListener("click", async () => {
      try {
        await api("PATCH", "/admin/staff/" + encodeURIComponent(person.id), { active: !person.active });
        loadStaff();
      } catch (error) {
        toast(errorText(error), "error");
      }
    });
    cell.append(toggle);
  }
  tr.append(cell);
  return tr;
}

export async function loadStaff() {
  let staff;
  let teams;
  try {
    [staff, teams] = await Promise.all([api("GET", "/admin/staff"), api("GET", "/admin/teams")]);
  } catch (error) {
    toast("员工列表加载失败：" + errorText(error), "error");
    return;
  }
  state.adminTeams = teams;
  fillTable("staff-table", staff.map(staffRow), "暂无员工", 8);

  const checks = teams.map((team) => {
    const label = el("label");
    const box = el("input");
    box.type = "checkbox";
    box.name = "team_ids";
    box.value = String(team.id);
    label.append(box, document.createTextNode(team.name));
    return label;
  });
  $("staff-form-teams").replaceChildren(...(checks.length ? checks : [el("span", "p-empty", "请先创建团队")]));
  $("team-list").replaceChildren(...teams.map((team) => {
    const li = el("li");
    li.append(el("span", "", team.name), el("span", "p-sub", team.members.length + " 人"));
    return li;
  }));
}

/** The line under a form: what was created, or why not. */
function say(id, text, kind) {
  $(id).textContent = text;
  $(id).className = "form-msg " + kind;
}

export async function createStaff(event) {
  event.preventDefault();
  const form = event.target;
  const data = new FormData(form);
  const body = {
    username: String(data.get("username")).trim(),
    display_name: String(data.get("display_name")).trim(),
    password: String(data.get("password")),
    role: String(data.get("role")),
    capacity: parseInt(data.get("capacity"), 10) || 1,
    team_ids: data.getAll("team_ids").map(Number),
  };
  if (!body.username || !body.display_name || !body.password) {
    say("staff-form-msg", "请填写用户名、姓名和初始密码", "error");
    return;
  }
  try {
    const created = await api("POST", "/admin/staff", body);
    say("staff-form-msg", "已创建：" + created.display_name, "ok");
    form.reset();
    loadStaff();
  } catch (error) {
    say("staff-form-msg", errorText(error), "error");
  }
}

export async function createTeam(event) {
  event.preventDefault();
  const form = event.target;
  const name = String(new FormData(form).get("name")).trim();
  if (!name) return;
  try {
    const team = await api("POST", "/admin/teams", { name });
    say("team-form-msg", "已创建团队：" + team.name, "ok");
    form.reset();
    loadStaff();
  } catch (error) {
    say("team-form-msg", errorText(error), "error");
  }
}
