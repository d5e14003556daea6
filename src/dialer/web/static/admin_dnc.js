// One do-not-call list (/admin/dnc/{id}): properties, its entries (add a number or prefix, bulk add, remove) and
// a number check against the blacklist and this list. Config: {id, resource, refs, can_write}.
const A = await import(document.querySelector('link[rel=modulepreload][href*="/static/admin.js"]').href);
const { api, el, t, toast, DataTable } = A.app;

export async function dncPage(root, config) {
  const { id, resource, can_write: canWrite } = config;
  let list;
  try {
    list = await api("GET", `${resource.endpoint}/${id}`);
  } catch {
    root.append(el("p", { class: "muted" }, t("admin.not_found")));
    return;
  }
  const title = root.querySelector("h1");
  const setHead = () => title.replaceChildren(el("a", { href: "/admin/dnc" }, t("nav.admin.dnc")), " / ", list.name);
  setHead();
  const entriesUrl = `${resource.endpoint}/${id}/entries`;

  // entries
  const left = el("div");
  const right = el("div");
  root.append(el("div", { class: "two-col dnc" }, right, left));
  const holder = el("div");
  left.append(holder);
  const columns = [
    { key: "number", label: "admin.f.number", sort: "number" },
    { key: "is_prefix", label: "admin.dnc.is_prefix", render: "yesno" },
    { key: "comment", label: "admin.f.comment" },
    { key: "created_at", label: "admin.f.created_at", sort: "created_at", render: "datetime" },
  ];
  if (canWrite) {
    columns.push({ key: "_del", label: " ", width: "3em", render: (v, row) => el("button", { type: "button", class: "small", "data-action": "remove-entry",
      title: t("admin.delete"), onclick: async (e) => {
        e.stopPropagation();
        if (!(await A.confirmDialog(t("admin.confirm.delete", { name: row.number })))) return;
        await api("DELETE", `${entriesUrl}/${row.id}`);
        toast(t("admin.deleted"), "ok");
        table.reload();
      } }, "✕") });
  }
  const table = new DataTable(holder, { endpoint: entriesUrl, columns, sort: "-created_at" });

  // check a number
  const checkInput = el("input", { type: "text", name: "check", placeholder: "+79161234567" });
  const checkResult = el("div", { class: "dnc-check-result" });
  const check = async () => {
    if (!checkInput.value.trim()) return;
    const r = await api("GET", "/api/dnc/check", null, { query: { number: checkInput.value.trim(), list_id: id } });
    checkResult.replaceChildren(...[el("span", { class: `pill ${r.blocked ? "tk-down" : "tk-up"}` }, t(r.blocked ? "admin.dnc.blocked" : "admin.dnc.free")),
      " ", r.number, r.matches.length ? el("div", { class: "muted" }, r.matches.map((m) => `${m.list_name}: ${m.number}${m.is_prefix ? "…" : ""}`).join("; ")) : null].filter(Boolean));
  };
  right.append(el("div", { class: "panel" }, el("h2", {}, t("admin.dnc.check")),
    el("div", { class: "opts row" }, checkInput, el("button", { type: "button", "data-action": "check", onclick: check }, t("admin.dnc.check_btn"))), checkResult));

  if (canWrite) {
    const form = A.buildForm(resource, {}, list);
    right.append(el("div", { class: "panel" }, form.node, el("div", { class: "form-actions" },
      list.is_global ? null : el("button", { type: "button", class: "danger left", "data-action": "delete", onclick: async () => {
        if (await A.deleteItem(resource, list)) location.assign("/admin/dnc");
      } }, t("admin.delete")),
      el("button", { type: "button", class: "primary", "data-action": "save", onclick: async () => {
        try { list = await A.saveItem(resource, form, list); setHead(); } catch { /* shown */ }
      } }, t("admin.save")))));
    // one entry
    const entry = { key: "entry", endpoint: entriesUrl, title: "admin.dnc.entry", label: "number", can_write: true, fields: [
      { name: "number", kind: "text", label: "admin.f.number", required: true, span: 2, nullable: false },
      { name: "is_prefix", kind: "checkbox", label: "admin.dnc.is_prefix", span: 2 },
      { name: "comment", kind: "text", label: "admin.f.comment", span: 4, nullable: false, default: "" },
    ] };
    const entryForm = A.buildForm(entry, {}, null);
    right.append(el("div", { class: "panel" }, el("h2", {}, t("admin.dnc.add")), entryForm.node, el("div", { class: "form-actions" },
      el("button", { type: "button", class: "primary", "data-action": "add-entry", onclick: async () => {
        try { await A.saveItem(entry, entryForm, null); entryForm.node.querySelector("input[name=number]").value = ""; table.reload(); } catch { /* shown */ }
      } }, t("admin.dnc.add_btn")))));
    // bulk
    const bulk = el("textarea", { name: "bulk", rows: 4, placeholder: t("admin.dnc.bulk_hint") });
    const bulkResult = el("div", { class: "muted bulk-result" });
    right.append(el("div", { class: "panel" }, el("h2", {}, t("admin.dnc.bulk")), bulk, el("div", { class: "form-actions" },
      el("button", { type: "button", "data-action": "bulk-add", onclick: async () => {
        const numbers = bulk.value.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
        if (!numbers.length) return;
        const r = await api("POST", `${entriesUrl}/bulk`, { numbers });
        bulkResult.textContent = t("admin.dnc.bulk_result", { added: r.added, present: r.already_present, rejected: r.rejected.length })
          + (r.rejected.length ? ": " + r.rejected.map((x) => x.number ?? JSON.stringify(x)).join(", ") : "");
        table.reload();
      } }, t("admin.dnc.bulk_btn"))), bulkResult));
  }
}
