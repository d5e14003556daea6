// One contact list (/admin/lists/{id}): its properties and fields, its contacts (search, add, edit, delete, bulk
// delete, export) and the import wizard (upload → mapping preview with the first rows → job with progress →
// counts and the error report). Config: {id, resource, refs, perms}. A contact's dialog shows its calls
// (/api/panels/contacts/{id}/attempts); values are written as the UI's language writes them ("12 345,67").
import { guessMapping } from "./mapping.js";

const A = await import(document.querySelector('link[rel=modulepreload][href*="/static/admin.js"]').href);
const { api, el, t, toast, fmtDateTime, fmtFieldValue, fmtDuration } = A.app;

const INPUT_KIND = { integer: "number", decimal: "number", date: "date", datetime: "datetime", boolean: "checkbox",
  enum: "select", string: "text", phone: "text" };

export async function listPage(root, config) {
  const { id, resource, refs, perms } = config;
  let list;
  try {
    list = await api("GET", `${resource.endpoint}/${id}`);
  } catch {
    root.append(el("p", { class: "muted" }, t("admin.not_found")));
    return;
  }
  const title = root.querySelector("h1");
  const count = el("span", { class: "muted list-count" });
  const setHead = () => {
    title.replaceChildren(el("a", { href: "/admin/lists" }, t("nav.admin.lists")), " / ", list.name, count);
    count.textContent = t("admin.list.count", { n: list.contact_count });
  };
  setHead();
  const reloadList = async () => { list = await api("GET", `${resource.endpoint}/${id}`); setHead(); };
  const ctx = { id, list: () => list, reloadList, perms, refs, contactsTable: null };
  const items = [{ key: "props", label: t("admin.tab.props"), render: (panel) => propsTab(panel, resource, ctx) }];
  if (perms["contacts.read"]) items.push({ key: "contacts", label: t("admin.tab.contacts"), render: (panel) => contactsTab(panel, ctx) });
  if (perms["contacts.import"]) items.push({ key: "import", label: t("admin.tab.import"), render: (panel) => importTab(panel, ctx) });
  A.tabs(root, items);
}

function propsTab(panel, resource, ctx) {
  A.detailForm(panel, resource, ctx.refs, ctx.list, { onSaved: () => ctx.reloadList(), onDeleted: () => location.assign("/admin/lists"),
    buttons: [el("button", { type: "button", "data-action": "copy-fields", onclick: () => copyFields(ctx, panel, resource) }, t("admin.list.copy_fields"))] });
}

function copyFields(ctx, panel, resource) {
  const form = A.buildForm({ fields: [{ name: "from_list_id", kind: "ref", ref: "lists", label: "admin.list.copy_from",
    required: true, nullable: false, span: 4 }] }, ctx.refs, null);
  const m = A.modal(t("admin.list.copy_fields"), form.node, [
    el("button", { type: "button", class: "primary", "data-action": "run-action", onclick: async () => {
      try {
        await api("POST", `/api/lists/${ctx.id}/copy-fields`, form.values(), { quiet: true });
        m.close();
        await ctx.reloadList();
        panel.replaceChildren();
        propsTab(panel, resource, ctx);
        toast(t("admin.saved"), "ok");
      } catch (err) { form.showErrors(err); }
    } }, t("admin.list.copy")),
    el("button", { type: "button", "data-action": "cancel", onclick: () => m.close() }, t("admin.cancel")),
  ], { className: "action-dialog" });
}

// ---- contacts ---------------------------------------------------------------------------------------------------
async function fieldOptions(refs) {
  const ref = await A.loadRef(refs, "fields");
  return ref.byId;
}

function contactResource(list, fieldsById, canWrite) {
  const fields = list.fields.map((f) => {
    const full = fieldsById.get(f.field_id);
    const kind = INPUT_KIND[f.type] || "text";
    return { name: `values.${f.name}`, kind, label: f.name + (f.required ? "" : ""), required: f.required, span: kind === "checkbox" ? 1 : 2,
      nullable: true, options: full ? full.options : [], step: f.type === "decimal" ? "any" : undefined };
  });
  fields.push({ name: "phones", kind: "rows", label: "admin.list.extra_phones", span: 4, default: [], nullable: true, columns: [
    { name: "number", kind: "text", label: "admin.f.number", required: true, span: 2, nullable: false },
    { name: "type", kind: "select", label: "admin.f.phone_type", options: ["mobile", "home", "work", "other"],
      option_prefix: "admin.enum.phone_type.", default: "other", nullable: false, span: 1 },
  ] });
  fields.push({ name: "tags", kind: "lines", label: "admin.f.tags", span: 2, nullable: true, help: "admin.list.tags_help" });
  fields.push({ name: "status", kind: "select", label: "admin.f.status", options: ["new", "in_progress", "done"],
    option_prefix: "admin.enum.contact_status.", nullable: false, default: "new", span: 1 });
  return { key: "contacts", endpoint: `/api/lists/${list.id}/contacts`, title: "admin.contact", fields, can_write: canWrite, label: "id" };
}

function contactItem(contact) {
  if (!contact) return null;
  const item = { id: contact.id, tags: contact.tags, status: contact.status,
    phones: contact.phones.filter((p) => p.field_id === null).map((p) => ({ number: p.raw || p.number, type: p.type })) };
  for (const [k, v] of Object.entries(contact.values || {})) item[`values.${k}`] = v;
  return item;
}

function contactBody(form, isNew, original) {
  const raw = form.values();
  const body = { values: {}, tags: raw.tags || [] };
  for (const [k, v] of Object.entries(raw)) if (k.startsWith("values.")) body.values[k.slice(7)] = v === "" ? null : v;
  if (isNew) { body.phones = raw.phones; for (const k of Object.keys(body.values)) if (body.values[k] === null) delete body.values[k]; }
  else {
    if (JSON.stringify(raw.phones) !== JSON.stringify(original.phones)) body.phones = raw.phones;
    if (raw.status !== original.status) body.status = raw.status;
  }
  return body;
}

function openContact(ctx, resource, contact, onDone) {
  const item = contactItem(contact);
  const isNew = !item;
  if (isNew) resource = { ...resource, fields: resource.fields.filter((f) => f.name !== "status") };
  const form = A.buildForm(resource, ctx.refs, item, { readOnly: !resource.can_write });
  const buttons = [];
  if (resource.can_write) {
    if (!isNew && ctx.perms["contacts.delete"]) {
      buttons.push(el("button", { type: "button", class: "danger left", "data-action": "delete", onclick: async () => {
        if (!(await A.confirmDialog(t("admin.confirm.delete", { name: `#${contact.id}` })))) return;
        await api("DELETE", `${resource.endpoint}/${contact.id}`);
        m.close(); onDone();
      } }, t("admin.delete")));
    }
    buttons.push(el("button", { type: "button", class: "primary", "data-action": "save", onclick: async () => {
      try {
        const body = contactBody(form, isNew, item);
        if (isNew) await api("POST", resource.endpoint, body, { quiet: true });
        else await api("PATCH", `${resource.endpoint}/${contact.id}`, body, { quiet: true });
        toast(t("admin.saved"), "ok");
        m.close(); onDone();
      } catch (err) { form.showErrors(err); }
    } }, t("admin.save")));
  }
  buttons.push(el("button", { type: "button", "data-action": "cancel", onclick: () => m.close() }, t("admin.cancel")));
  const history = isNew ? null : el("section", { class: "contact-history" }, el("h3", {}, t("admin.contact.history")),
    el("p", { class: "muted" }, t("common.loading")));
  const m = A.modal(isNew ? t("admin.list.new_contact") : t("admin.list.contact", { id: contact.id }),
    history ? [form.node, history] : form.node, buttons, { wide: true, className: "form-dialog contact-dialog" });
  if (history) contactHistory(history, contact.id);
}

// the contact's calls, the latest first: when, number, outcome, code, operator, talk, comment
async function contactHistory(box, contactId) {
  let rows;
  try {
    rows = await api("GET", `/api/panels/contacts/${contactId}/attempts`, null, { quiet: true });
  } catch (err) {
    box.lastChild.replaceWith(el("p", { class: "muted" }, err.status === 403 ? t("admin.contact.history_denied") : err.message));
    return;
  }
  if (!rows.length) { box.lastChild.replaceWith(el("p", { class: "muted" }, t("admin.contact.history_none"))); return; }
  const head = ["admin.contact.h.at", "admin.contact.h.number", "admin.contact.h.outcome", "admin.contact.h.code",
    "admin.contact.h.operator", "admin.contact.h.talk", "admin.contact.h.comment"];
  box.lastChild.replaceWith(el("div", { class: "dt-scroll" }, el("table", { class: "grid contact-calls" },
    el("thead", {}, el("tr", {}, head.map((k) => el("th", {}, t(k))))),
    el("tbody", {}, rows.map((a) => el("tr", { dataset: { attempt: a.id } },
      el("td", {}, fmtDateTime(a.queued_at)),
      el("td", {}, a.number),
      el("td", {}, a.outcome ? el("span", { class: `pill oc-${a.outcome}` }, t("outcome." + a.outcome)) : t("admin.contact.h.in_progress")),
      el("td", {}, a.completion_code || ""),
      el("td", {}, a.operator_name || ""),
      el("td", { class: "num" }, a.talk_s === null ? "" : fmtDuration(a.talk_s)),
      el("td", { class: "comment", title: a.comment || null }, a.comment || "")))))));
}

async function contactsTab(panel, ctx) {
  const list = ctx.list();
  const fieldsById = await fieldOptions(ctx.refs);
  const canWrite = Boolean(ctx.perms["contacts.write"]);
  const resource = contactResource(list, fieldsById, canWrite);
  const selected = new Set();
  const columns = [];
  if (ctx.perms["contacts.delete"]) {
    columns.push({ key: "_sel", label: " ", width: "2em", render: (v, row) => {
      const cb = el("input", { type: "checkbox", class: "rowsel", "aria-label": t("admin.select") });
      cb.checked = selected.has(row.id);
      cb.addEventListener("click", (e) => { e.stopPropagation(); if (cb.checked) selected.add(row.id); else selected.delete(row.id); sync(); });
      return cb;
    } });
  }
  columns.push({ key: "id", label: "admin.f.id", sort: "id", width: "5em" });
  // phones of the list's phone fields are in their own columns; the extra ones get a column of their own
  columns.push({ key: "phones", label: "admin.list.extra_phones", render: (v) => (v || []).filter((p) => p.field_id === null).map((p) => p.number).join(", ") });
  for (const f of list.fields) {
    columns.push({ key: `f${f.field_id}`, label: f.name, sort: `f.${f.field_id}`, render: (v, row) => {
      const value = (row.values || {})[f.name];
      if (value === null || value === undefined) return "";
      if (f.type === "boolean") return value ? t("common.yes") : t("common.no");
      if (f.type === "datetime") return fmtDateTime(value);
      return fmtFieldValue(f.type, value, window.LANG) ?? String(value);
    }, className: ["integer", "decimal"].includes(f.type) ? "num" : null });
  }
  columns.push({ key: "status", label: "admin.f.status", sort: "status", render: (v) => t(`admin.enum.contact_status.${v}`) });
  columns.push({ key: "attempts_total", label: "admin.f.attempts_total", sort: "attempts_total", className: "num" });
  columns.push({ key: "last_outcome", label: "admin.f.last_outcome", render: (v) => (v ? el("span", { class: `pill oc-${v}` }, t(`outcome.${v}`)) : "") });
  columns.push({ key: "next_call_at", label: "admin.f.next_call_at", sort: "next_call_at", render: "datetime" });
  async function refresh() { selected.clear(); sync(); await table.reload(); await ctx.reloadList(); }
  const bulk = el("button", { type: "button", class: "danger", "data-action": "bulk-delete", disabled: true, onclick: async () => {
    if (!(await A.confirmDialog(t("admin.list.confirm_bulk", { n: selected.size })))) return;
    const result = await api("POST", `${resource.endpoint}/bulk-delete`, { ids: [...selected] });
    toast(t("admin.list.deleted_n", { n: result.deleted }), "ok");
    await refresh();
  } }, t("admin.list.delete_selected"));
  function sync() { bulk.disabled = selected.size === 0; bulk.textContent = t("admin.list.delete_selected") + (selected.size ? ` (${selected.size})` : ""); }
  const tools = [];
  if (ctx.perms["contacts.delete"]) {
    // 002 §5.5: take out of the list the contacts whose numbers are in the blacklist
    const purge = el("button", { type: "button", "data-action": "purge-dnc", onclick: async () => {
      const found = await api("GET", resource.endpoint, null, { query: { in_dnc: "true", per_page: 1 } });
      if (!found.total) { toast(t("admin.list.purge_none"), "ok"); return; }
      if (!(await A.confirmDialog(t("admin.list.confirm_purge", { n: found.total })))) return;
      const result = await api("POST", `${resource.endpoint}/bulk-delete`, { filter: { in_dnc: true } });
      toast(t("admin.list.deleted_n", { n: result.deleted }), "ok");
      await refresh();
    } }, t("admin.list.purge_dnc"));
    tools.push(bulk, purge);
  }
  if (ctx.perms["contacts.export"]) {
    // everything, the not yet called ones and the not answered ones (002 §5.5), as CSV or XLSX
    const notAnswered = "outcome=no_answer,busy,rejected,abandoned,error";
    for (const [key, query] of [["all", ""], ["not_called", "not_called=true"], ["not_answered", notAnswered]]) {
      const links = ["csv", "xlsx"].map((fmt) => el("a", { href: `${resource.endpoint}/export?format=${fmt}${query ? "&" + query : ""}`,
        class: "export", download: "", "data-export": `${key}-${fmt}` }, fmt.toUpperCase()));
      tools.push(el("span", { class: "export-group" }, key === "all" ? "" : t(`admin.list.export_${key}`) + ": ", ...links));
    }
  }
  const table = A.listTable(panel, { endpoint: resource.endpoint, columns, sort: "id", urlState: false,
    open: (row) => openContact(ctx, resource, row, refresh),
    create: canWrite ? { label: t("admin.list.add_contact"), onClick: () => openContact(ctx, resource, null, refresh) } : null,
    tools });
  ctx.contactsTable = table;
}

// ---- import wizard ---------------------------------------------------------------------------------------------------
function importTab(panel, ctx) {
  const list = ctx.list();
  const file = el("input", { type: "file", name: "file", accept: ".csv,.txt,.xlsx" });
  const step1 = el("div", { class: "step panel" }, el("h2", {}, t("admin.import.step1")),
    el("div", { class: "opts" }, file,
      el("button", { type: "button", class: "primary", "data-action": "preview", onclick: () => preview() }, t("admin.import.preview"))));
  const step2 = el("div", { class: "step panel", hidden: true });
  const step3 = el("div", { class: "step panel", hidden: true });
  const history = el("div", { class: "step" });
  panel.append(el("div", { class: "wizard" }, step1, step2, step3, history));
  let mappingSelects = [];

  async function preview() {
    if (!file.files.length) { toast(t("admin.numbering.choose"), "error"); return; }
    const data = new FormData();
    data.append("file", file.files[0]);
    const p = await api("POST", `/api/lists/${list.id}/imports/preview`, data);
    // the server's mapping (phones and dates by their values), then the other columns by how alike their headers
    // are to the list's field names
    const known = {};
    for (const [header, mapped] of Object.entries(p.mapping || {})) if (mapped) known[header] = mapped.name;
    const guessed = guessMapping(p.headers, list.fields.map((f) => f.name), known);
    mappingSelects = p.headers.map((header) => {
      const select = el("select", { "data-column": header, "aria-label": header },
        el("option", { value: "" }, t("admin.import.ignore")),
        list.fields.map((f) => el("option", { value: f.name }, f.name)));
      select.value = guessed[header] || "";
      if (guessed[header] && !known[header]) select.dataset.guessed = "1";
      return { header, select };
    });
    const table = el("table", { class: "grid preview" },
      el("thead", {}, el("tr", {}, mappingSelects.map(({ header, select }) => el("th", {}, el("div", {}, header), select)))),
      el("tbody", {}, p.rows.map((row) => el("tr", {}, p.headers.map((_, i) => el("td", {}, row[i] ?? ""))))));
    const tags = el("input", { type: "text", name: "tags", placeholder: t("admin.import.tags_hint") });
    const country = el("input", { type: "text", name: "country", placeholder: "RU", maxlength: 2 });
    const skipDnc = el("input", { type: "checkbox", name: "skip_dnc" });
    const dupes = el("input", { type: "checkbox", name: "allow_duplicates" });
    const dncSelect = el("select", { name: "dnc_list_id" }, el("option", { value: "" }, "—"));
    if (ctx.perms["dnc.read"]) A.loadRef(ctx.refs, "dnc_lists").then((r) => r.items.forEach((d) => dncSelect.append(el("option", { value: d.id }, d.name))));
    step2.replaceChildren(...[el("h2", {}, t("admin.import.step2", { format: p.format.toUpperCase(), rows: p.rows.length })),
      p.warnings.length ? el("div", { class: "form-error" }, p.warnings.join("; ")) : null,
      el("div", { class: "table-scroll" }, table),
      el("div", { class: "opts" },
        el("label", {}, t("admin.f.tags"), tags), el("label", {}, t("admin.f.country"), country),
        el("label", { class: "chk" }, skipDnc, " ", t("admin.import.skip_dnc")),
        ctx.perms["dnc.read"] ? el("label", {}, t("admin.f.dnc_list_id"), dncSelect) : null,
        el("label", { class: "chk" }, dupes, " ", t("admin.import.allow_duplicates")),
        el("button", { type: "button", class: "primary", "data-action": "run", onclick: (e) => run(e.currentTarget, {
          tags: tags.value, country: country.value.trim(), skip_dnc: skipDnc.checked, allow_duplicates: dupes.checked,
          dnc_list_id: dncSelect.value }) }, t("admin.import.run")))].filter(Boolean));
    step2.hidden = false;
    step3.hidden = true;
  }

  async function run(button, opts) {
    const mapping = Object.fromEntries(mappingSelects.map(({ header, select }) => [header, select.value || null]));
    const data = new FormData();
    data.append("file", file.files[0]);
    data.append("mapping", JSON.stringify(mapping));
    if (opts.tags.trim()) data.append("tags", opts.tags.trim());
    if (opts.country) data.append("country", opts.country);
    data.append("skip_dnc", String(opts.skip_dnc));
    data.append("allow_duplicates", String(opts.allow_duplicates));
    if (opts.dnc_list_id) data.append("dnc_list_id", opts.dnc_list_id);
    button.disabled = true;
    const bar = A.progressBar();
    const state = el("span", { class: "job-status" });
    const result = el("div", { class: "job-result" });
    step3.replaceChildren(el("h2", {}, t("admin.import.step3")), el("div", { class: "opts" }, bar.node, state), result);
    step3.hidden = false;
    try {
      let job = await api("POST", `/api/lists/${list.id}/imports`, data);
      while (job.status === "queued" || job.status === "running") {
        bar.set(job.rows_done, job.rows_total);
        state.textContent = t(`admin.enum.import_status.${job.status}`);
        await new Promise((r) => setTimeout(r, 300));
        job = await api("GET", `/api/imports/${job.id}`);
      }
      bar.set(job.rows_done, job.rows_total || job.rows_done);
      state.textContent = t(`admin.enum.import_status.${job.status}`);
      state.dataset.status = job.status;
      result.replaceChildren(...[
        el("div", { class: "counts" },
          el("span", { "data-count": "imported" }, t("admin.import.imported"), " ", el("b", {}, job.imported)),
          el("span", { "data-count": "rejected" }, t("admin.import.rejected"), " ", el("b", {}, job.rejected)),
          el("span", { "data-count": "duplicates" }, t("admin.import.duplicates"), " ", el("b", {}, job.duplicates)),
          el("span", { "data-count": "dnc_filtered" }, t("admin.import.dnc_filtered"), " ", el("b", {}, job.dnc_filtered))),
        job.message ? el("div", { class: job.status === "failed" ? "form-error" : "muted" }, job.message) : null,
        job.errors_url ? el("a", { href: job.errors_url, class: "errors-report", download: "" }, t("admin.import.errors_report")) : null].filter(Boolean));
      await ctx.reloadList();
      if (ctx.contactsTable) ctx.contactsTable.reload();
      historyTable.reload();
    } catch { /* shown */ } finally { button.disabled = false; }
  }

  history.append(el("h2", {}, t("admin.import.history")));
  const historyTable = A.listTable(history, { endpoint: `/api/lists/${list.id}/imports`, search: false, urlState: false, perPage: 25,
    columns: [
      { key: "created_at", label: "admin.f.created_at", render: "datetime" },
      { key: "filename", label: "admin.import.file" },
      { key: "status", label: "admin.f.status", render: (v) => t(`admin.enum.import_status.${v}`) },
      { key: "rows_total", label: "admin.import.rows", className: "num" },
      { key: "imported", label: "admin.import.col.imported", className: "num" },
      { key: "rejected", label: "admin.import.col.rejected", className: "num" },
      { key: "errors_url", label: "admin.import.errors_report", render: (v) => (v ? el("a", { href: v, download: "" }, "CSV") : "") },
    ] });
}
