// Roles and permissions (/admin/roles): a checkbox matrix roles × permissions (saved per changed role), and the
// roles themselves (generic table and form). Config: {roles: resource, refs, can_write}.
const A = await import(document.querySelector('link[rel=modulepreload][href*="/static/admin.js"]').href);
const { api, el, t, toast } = A.app;

export function rolesPage(root, config) {
  A.tabs(root, [
    { key: "matrix", label: t("admin.roles.matrix"), render: (panel) => matrix(panel, config) },
    { key: "roles", label: t("admin.tab.roles"), render: (panel) => A.resourceSection(panel, config.roles, config.refs, { urlState: false }) },
  ]);
}

// a permission's description in the page's language: the server's catalogue (permission.<code>), else what the API
// says (a permission added since)
function permissionText(p) {
  const id = `permission.${p.code}`;
  const text = t(id);
  return text === id ? p.description : text;
}

async function matrix(panel, config) {
  const canWrite = config.can_write;
  const [roles, perms] = await Promise.all([
    api("GET", "/api/roles", null, { query: { per_page: 1000, sort: "id" } }),
    A.loadPermissions(),
  ]);
  const catalogue = perms || [];
  const initial = new Map(roles.items.map((r) => [r.id, new Set(r.permissions)]));
  const boxes = new Map(); // `${roleId}|${code}` -> checkbox
  const save = el("button", { type: "button", class: "primary", "data-action": "save-matrix", disabled: true }, t("admin.save"));
  const changedCount = el("span", { class: "muted" });

  function wanted(roleId) {
    const set = new Set();
    for (const p of catalogue) if (boxes.get(`${roleId}|${p.code}`).checked) set.add(p.code);
    return set;
  }
  function dirtyRoles() {
    return roles.items.filter((r) => {
      const now = wanted(r.id), before = initial.get(r.id);
      return now.size !== before.size || [...now].some((c) => !before.has(c));
    });
  }
  function sync() {
    const dirty = dirtyRoles();
    save.disabled = dirty.length === 0;
    changedCount.textContent = dirty.length ? t("admin.roles.changed", { n: dirty.length }) : "";
  }

  const head = el("tr", {}, el("th", {}, t("admin.roles.permission")),
    roles.items.map((r) => el("th", { "data-role": r.code, title: r.description || r.code }, r.name)));
  const body = el("tbody");
  let group = null;
  for (const p of catalogue) {
    const g = p.code.split(".")[0];
    if (g !== group) {
      group = g;
      // the group's name in the page's language (a group added since keeps its code)
      const label = t(`admin.perm_group.${g}`);
      body.append(el("tr", { class: "group", "data-group": g }, el("th", { colspan: roles.items.length + 1 }, label === `admin.perm_group.${g}` ? g : label)));
    }
    body.append(el("tr", { "data-perm": p.code }, el("td", { class: "perm" }, el("code", {}, p.code), el("span", { class: "perm-text" }, permissionText(p))),
      roles.items.map((r) => {
        const cb = el("input", { type: "checkbox", "data-role": r.code, "data-perm": p.code, "aria-label": `${r.name}: ${p.code}`, disabled: !canWrite });
        cb.checked = initial.get(r.id).has(p.code);
        const td = el("td", { class: "c" }, cb);
        cb.addEventListener("change", () => { td.classList.toggle("changed", cb.checked !== initial.get(r.id).has(p.code)); sync(); });
        boxes.set(`${r.id}|${p.code}`, cb);
        return td;
      })));
  }
  save.addEventListener("click", async () => {
    save.disabled = true;
    try {
      for (const r of dirtyRoles()) {
        const now = wanted(r.id);
        const saved = await api("PATCH", `/api/roles/${r.id}`, { permissions: [...now].sort() });
        initial.set(r.id, new Set(saved.permissions));
      }
      for (const td of panel.querySelectorAll("td.changed")) td.classList.remove("changed");
      toast(t("admin.saved"), "ok");
    } catch { /* shown */ } finally { sync(); }
  });
  if (canWrite) panel.append(el("div", { class: "toolbar" }, save, changedCount));
  panel.append(el("div", { class: "matrix-wrap" }, el("table", { class: "matrix" }, el("thead", {}, head), body)));
}
