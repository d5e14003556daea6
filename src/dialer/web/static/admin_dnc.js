// One do-not-call list (/admin/dnc/{id}): properties, its entries (add a number or prefix, bulk add, a file of
// numbers, remove, download as CSV/XLSX) and a number check against the blacklist and this list. Config: {id, resource, refs, can_write}.
const A = await import(document.querySelector('link[rel=modulepreload][href*="/static/admin.js"]').href);
const { api, el, t, toast } = A.app;

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
  const table = A.listTable(left, { endpoint: entriesUrl, sort: "-created_at",
    columns: [
      { key: "number", label: "admin.f.number", sort: "number" },
      { key: "is_prefix", label: "admin.dnc.is_prefix", render: "yesno" },
      { key: "comment", label: "admin.f.comment" },
      { key: "created_at", label: "admin.f.created_at", sort: "created_at", render: "datetime" },
    ],
    remove: canWrite ? { action: "remove-entry", name: (row) => row.number } : null });

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
  right.append(el("div", { class: "panel dnc-download" }, el("h2", {}, t("admin.dnc.download")),
    el("div", { class: "opts row" },
      el("a", { href: `${entriesUrl}/export?format=csv`, download: "", "data-action": "download-csv" }, "CSV"), " ",
      el("a", { href: `${entriesUrl}/export?format=xlsx`, download: "", "data-action": "download-xlsx" }, "XLSX"))));

  if (canWrite) {
    A.detailForm(right, resource, {}, () => list, { deletable: !list.is_global,
      onSaved: (saved) => { list = saved; setHead(); }, onDeleted: () => location.assign("/admin/dnc") });
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
    // a file of numbers
    const file = el("input", { type: "file", name: "file", accept: ".csv,.txt,.xlsx", "aria-label": t("admin.dnc.file") });
    const column = el("input", { type: "text", name: "column", placeholder: t("admin.dnc.file_column") });
    const prefixes = el("input", { type: "checkbox", name: "file_is_prefix" });
    const fileComment = el("input", { type: "text", name: "file_comment", placeholder: t("admin.f.comment") });
    const fileResult = el("div", { class: "muted file-result" });
    const upload = el("button", { type: "button", "data-action": "upload", onclick: async () => {
      if (!file.files.length) { toast(t("admin.dnc.file_choose"), "error"); return; }
      const data = new FormData();
      data.append("file", file.files[0]);
      if (column.value.trim()) data.append("column", column.value.trim());
      data.append("is_prefix", prefixes.checked ? "true" : "false");
      data.append("comment", fileComment.value.trim());
      upload.disabled = true;
      try {
        const r = await api("POST", `${entriesUrl}/upload`, data);
        fileResult.replaceChildren(
          el("div", {}, t("admin.dnc.file_result", { file: r.file, column: r.column, added: r.added, present: r.already_present, rejected: r.rejected })),
          ...r.problems.slice(0, 10).map((p) => el("div", {}, t("admin.dnc.file_problem", { row: p.row, value: p.value || "—", reason: p.reason }))),
          ...r.warnings.map((w) => el("div", {}, w)));
        table.reload();
      } catch { /* shown */ } finally { upload.disabled = false; }
    } }, t("admin.dnc.file_btn"));
    right.append(el("div", { class: "panel dnc-file" }, el("h2", {}, t("admin.dnc.file")),
      el("div", { class: "opts" }, file, column, fileComment,
        el("label", { class: "check" }, prefixes, " ", t("admin.dnc.file_prefixes"))),
      el("div", { class: "form-actions" }, upload), fileResult));
  }
}
