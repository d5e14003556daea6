// Administration UI: the generic resource page and the pieces the special editors share.
//
// A page's configuration comes from Python (dialer/web/admin/__init__.py: resources with columns and form fields)
// in <script type="application/json" id="admin-config">. resourcePage(config) shows each resource as a tab: a
// DataTable (sort, search, paging) plus a create button and a dialog with the form, or the object's own page
// (resource.detail). Controls that change data are only built when resource.can_write.
//
// Exports for the special pages (admin_list.js, admin_campaign.js, ...):
//   app                           the page's instance of app.js (api, el, t, toast, DataTable, ...)
//   readConfig()                  the page's configuration object
//   loadRef(refs, key)            -> Promise<{items, byId: Map, denied}> (cached per page)
//   buildForm(resource, refs, item, {readOnly}) -> {node, values(), showErrors(err), clearErrors()}
//   tableColumns(resource, refs)  -> Promise<DataTable columns> (ref lookups loaded)
//   openForm(resource, refs, item, {onSaved, onDeleted})   the create/edit dialog
//   saveItem(resource, form, item) -> Promise<saved object> (errors shown at the fields, then rethrown)
//   deleteItem(resource, item), removeItem(endpoint, id, name) -> Promise<boolean>   confirmed DELETE, toast
//   listTable(container, options) -> DataTable   a list: table, "+ create", tools, row click, ✕ column (below)
//   resourceSection(panel, resource, refs)       a resource's list with its create/edit dialog (listTable)
//   detailForm(container, resource, refs, item, {onSaved, onDeleted, buttons, deletable})  an object's own page
//   confirmDialog(message, okLabel) -> Promise<boolean>
//   tabs(container, [{key, label, render(panel)}])      lazily rendered tabs, the active one kept in location.hash
//   progressBar() -> {node, set(done, total)}
//   modal(title, body, buttons) -> {dialog, close()}

const appUrl = document.querySelector('script[type=module][src*="/static/app.js"]').src;
export const app = await import(appUrl);
const { api, el, t, toast, DataTable, fmtDateTime } = app;

export function readConfig() {
  const node = document.getElementById("admin-config");
  return node ? JSON.parse(node.textContent) : {};
}

// ---- references (select from another resource) --------------------------------------------------------------
const refCache = new Map();

export function loadRef(refs, key, { fresh = false } = {}) {
  if (!fresh && refCache.has(key)) return refCache.get(key);
  const spec = refs[key];
  const promise = (async () => {
    if (!spec) return { items: [], byId: new Map(), denied: true, label: "name" };
    try {
      const data = await api("GET", spec.endpoint, null, { quiet: true, query: { per_page: 1000, sort: spec.label } });
      const byId = new Map(data.items.map((i) => [i.id, i]));
      return { items: data.items, byId, denied: false, label: spec.label };
    } catch {
      return { items: [], byId: new Map(), denied: true, label: spec.label };
    }
  })();
  refCache.set(key, promise);
  return promise;
}

export function forgetRefs() { refCache.clear(); }

function refLabel(ref, id) {
  if (id === null || id === undefined) return "";
  const item = ref.byId.get(id);
  return item ? String(item[ref.label]) : `#${id}`;
}

// ---- table columns --------------------------------------------------------------------------------------------
function pill(cls, text) { return el("span", { class: `pill ${cls}` }, text); }

export function campaignStatusPill(status) {
  return pill(`cs cs-${status}`, t(`admin.enum.campaign_status.${status}`));
}

// labels the registry's common ones do not fit: an operator is a person with a name, not a thing with a title
const LABELS = { "operators.name": "admin.f.person_name", "strategies.call_window_start": "admin.f.call_window" };
const FORM_LABELS = { "operators.name": "admin.f.person_name" };
// columns shown inside another one (the call window's end is in its start's column)
const MERGED = new Set(["strategies.call_window_end"]);

function hhmm(v) { return typeof v === "string" && /^\d\d:\d\d(:\d\d)?$/.test(v) ? v.slice(0, 5) : v; }

// a strategy's call window: "09:00–21:00", or "круглосуточно" when it opens and closes at the same time
function callWindow(row) {
  const start = hhmm(row.call_window_start), end = hhmm(row.call_window_end);
  if (!start || !end) return "";
  return start === end ? el("span", { title: `${start}–${end}` }, t("admin.call_window.all_day")) : `${start}–${end}`;
}

export async function tableColumns(resource, refs, getTable = () => null) {
  const columns = [];
  for (const col of resource.columns) {
    if (MERGED.has(`${resource.key}.${col.key}`)) continue;
    const c = { key: col.key, label: LABELS[`${resource.key}.${col.key}`] || col.label, sort: col.sort, width: col.width };
    if (resource.key === "strategies" && col.key === "call_window_start") { c.render = (v, row) => callWindow(row); columns.push(c); continue; }
    const [kind, arg] = col.render.split(":");
    if (kind === "yesno" || kind === "datetime") c.render = kind;
    else if (kind === "date") c.render = (v) => (v ? new Date(v + "T00:00:00").toLocaleDateString(window.LANG === "en" ? "en-GB" : "ru-RU") : "");
    else if (kind === "enum") c.render = (v) => (v === null || v === undefined ? "" : t(arg + v));
    else if (kind === "count") { c.render = (v) => (Array.isArray(v) ? String(v.length) : ""); c.className = "num"; }
    // a list of fixed values; null shows the default's text (arg: its message id)
    else if (kind === "list") c.render = (v) => (Array.isArray(v) && v.length ? v.join(", ") : (arg ? t(arg) : ""));
    // completion codes marked successful (kept by the reports, not by the code: resource.marks)
    else if (kind === "successful") c.render = (v, row) => (resource.marks && resource.marks.has(row.id) ? "✓" : "");
    else if (kind === "status") c.render = (v) => campaignStatusPill(v);
    else if (kind === "trunk_state") {
      c.render = (v) => (!v ? pill("tk-unknown", t("admin.state.unknown"))
        : el("span", { title: v.detail || "" }, pill(v.up ? "tk-up" : "tk-down", t(v.up ? "admin.state.up" : "admin.state.down"))));
    } else if (kind === "registration") {
      c.render = (v) => (!v ? pill("tk-unknown", t("admin.state.unregistered"))
        : el("span", { title: [v.contact, v.user_agent, v.detail].filter(Boolean).join(" · ") },
          pill(v.online ? (v.reachable ? "tk-up" : "tk-warn") : "tk-down",
            t(v.online ? (v.reachable ? "admin.state.registered" : "admin.state.unreachable") : "admin.state.unregistered"))));
    } else if (kind === "ref" || kind === "refs") {
      let ref = await loadRef(refs, arg);
      // an id the cached reference does not know yet (made since, e.g. by an import): read it again, once
      const tried = new Set();
      let pending = null;
      const label = (id) => {
        if (id !== null && id !== undefined && !ref.byId.has(id) && !ref.denied && !tried.has(id)) {
          tried.add(id);
          pending = pending || loadRef(refs, arg, { fresh: true }).then((fresh) => {
            ref = fresh; pending = null;
            const table = getTable();
            if (table) table._render();
          });
        }
        return refLabel(ref, id);
      };
      c.render = kind === "ref" ? (v) => label(v)
        : (v) => (Array.isArray(v) ? v.map((id) => label(id)).join(", ") : "");
    }
    columns.push(c);
  }
  return columns;
}

// ---- dialogs ----------------------------------------------------------------------------------------------------
export function modal(title, body, buttons, { wide = false, className = "" } = {}) {
  const dialog = el("dialog", { class: `adlg ${wide ? "wide" : ""} ${className}`.trim() },
    el("div", { class: "adlg-head" }, el("h2", {}, title),
      el("button", { type: "button", class: "link adlg-x", "aria-label": t("admin.close"), onclick: () => close() }, "✕")),
    el("div", { class: "adlg-body" }, body),
    el("div", { class: "adlg-foot" }, buttons));
  function close() { dialog.close(); dialog.remove(); }
  dialog.addEventListener("cancel", (e) => { e.preventDefault(); close(); });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}

export function confirmDialog(message, okLabel = t("admin.delete")) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (value) => { if (!done) { done = true; m.close(); resolve(value); } };
    const m = modal(t("admin.confirm.title"), el("p", {}, message), [
      el("button", { type: "button", class: "danger", "data-action": "confirm", onclick: () => finish(true) }, okLabel),
      el("button", { type: "button", "data-action": "cancel", onclick: () => finish(false) }, t("admin.cancel")),
    ], { className: "confirm-dialog" });
    m.dialog.addEventListener("close", () => finish(false));
  });
}

export function progressBar() {
  const bar = el("div", { class: "pbar-fill" });
  const label = el("span", { class: "pbar-label" });
  const node = el("div", { class: "pbar", role: "progressbar", "aria-valuemin": 0 }, bar, label);
  return {
    node,
    set(done, total) {
      const pct = total ? Math.min(100, Math.round((100 * done) / total)) : 0;
      bar.style.width = pct + "%";
      node.setAttribute("aria-valuenow", String(pct));
      label.textContent = total ? `${done} / ${total} (${pct}%)` : String(done);
    },
  };
}

export function tabs(container, items) {
  const bar = el("div", { class: "tabs", role: "tablist" });
  const panels = new Map();
  const buttons = new Map();
  const body = el("div", { class: "tab-panels" });
  function show(key, initial = false) {
    if (!buttons.has(key)) key = items[0].key;
    for (const [k, b] of buttons) { b.classList.toggle("active", k === key); b.setAttribute("aria-selected", String(k === key)); }
    for (const item of items) {
      let panel = panels.get(item.key);
      if (item.key === key && !panel) {
        panel = el("div", { class: "tab-panel", "data-tab": item.key });
        panels.set(item.key, panel);
        body.append(panel);
        item.render(panel);
      }
      if (panel) panel.hidden = item.key !== key;
    }
    if (items.length > 1 && !initial) history.replaceState(history.state, "", location.pathname + location.search + "#" + key);
  }
  for (const item of items) {
    const b = el("button", { type: "button", role: "tab", class: "tab", "data-tab": item.key, onclick: () => show(item.key) }, item.label);
    buttons.set(item.key, b);
    bar.append(b);
  }
  container.append(items.length > 1 ? bar : "", body);
  show(location.hash.slice(1) || items[0].key, true);
  return { show };
}

// ---- form widgets -------------------------------------------------------------------------------------------------
function pad(n) { return String(n).padStart(2, "0"); }

function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function optionLabel(field, value) { return field.option_prefix ? t(field.option_prefix + value) : String(value); }

function fieldInput(field, name) {
  // a plain <input>-based widget
  const type = { number: "number", password: "password", time: "time", date: "date", datetime: "datetime-local" }[field.kind] || "text";
  const input = el("input", { type, name, step: field.step || null, min: field.min ?? null, max: field.max ?? null,
    autocomplete: field.kind === "password" ? "new-password" : "off" });
  return {
    node: input, focus: input,
    get() {
      const v = input.value.trim();
      if (field.kind === "number") return v === "" ? null : Number(v);
      if (field.kind === "datetime") return v === "" ? null : new Date(v).toISOString();
      if (field.kind === "password") return v === "" ? undefined : v;
      if (v === "" && (field.kind === "date" || field.kind === "time")) return null;
      if (v === "" && field.kind === "text") return field.default !== undefined ? field.default : (field.nullable && !field.required ? null : "");
      return v;
    },
    set(v) {
      if (field.kind === "datetime") input.value = toLocalInput(v);
      else if (field.kind === "time") input.value = v ? String(v).slice(0, 5) : "";
      else if (field.kind === "password") input.value = "";
      else input.value = v === null || v === undefined ? "" : String(v);
    },
    disable(flag) { input.disabled = flag; },
  };
}

function widget(field, refs, name) {
  switch (field.kind) {
    case "textarea": case "lines": case "json": {
      const area = el("textarea", { name, rows: field.kind === "lines" ? 4 : 3 });
      return {
        node: area, focus: area,
        get() {
          const v = area.value;
          if (field.kind === "lines") return v.split("\n").map((s) => s.trim()).filter(Boolean);
          if (field.kind === "json") { try { return v.trim() ? JSON.parse(v) : null; } catch { return v; } }
          return v;
        },
        set(v) {
          if (field.kind === "lines") area.value = Array.isArray(v) ? v.join("\n") : "";
          else if (field.kind === "json") area.value = v === null || v === undefined ? "" : JSON.stringify(v, null, 1);
          else area.value = v ?? "";
        },
        disable(flag) { area.disabled = flag; },
      };
    }
    case "checkbox": {
      const box = el("input", { type: "checkbox", name });
      return { node: box, focus: box, get: () => box.checked, set(v) { box.checked = Boolean(v); }, disable(f) { box.disabled = f; } };
    }
    case "select": {
      const select = el("select", { name },
        field.nullable && !field.required ? el("option", { value: "" }, "—") : null,
        (field.options || []).map((o) => el("option", { value: o }, optionLabel(field, o))));
      return {
        node: select, focus: select,
        get() {
          if (select.value === "") return null;
          return /^\d+$/.test(select.value) && field.name === "weekday" ? Number(select.value) : select.value;
        },
        set(v) { select.value = v === null || v === undefined ? (field.nullable && !field.required ? "" : select.value) : String(v); },
        disable(f) { select.disabled = f; },
      };
    }
    case "ref": {
      const select = el("select", { name }, el("option", { value: "" }, field.nullable ? "—" : t("admin.choose")));
      let pending = null;
      const ready = loadRef(refs, field.ref).then((ref) => {
        for (const item of ref.items) select.append(el("option", { value: item.id }, String(item[ref.label])));
        if (pending !== null) select.value = String(pending);
        if (pending !== null && select.value !== String(pending)) select.append(el("option", { value: pending, selected: true }, `#${pending}`));
      });
      return {
        node: select, focus: select, ready,
        get() { return select.value === "" ? null : Number(select.value); },
        set(v) { pending = v ?? null; select.value = v === null || v === undefined ? "" : String(v); },
        disable(f) { select.disabled = f; },
      };
    }
    case "refs": {
      const box = el("div", { class: "refs", "data-name": name });
      let wanted = new Set();
      const boxes = new Map();
      const ready = loadRef(refs, field.ref).then((ref) => {
        if (!ref.items.length) box.append(el("span", { class: "muted" }, ref.denied ? t("admin.refs.denied") : t("admin.refs.none")));
        for (const item of ref.items) {
          const cb = el("input", { type: "checkbox", value: item.id });
          cb.checked = wanted.has(item.id);
          boxes.set(item.id, cb);
          box.append(el("label", { class: "chk" }, cb, " ", String(item[ref.label])));
        }
      });
      return {
        node: box, focus: box, ready,
        get() {
          if (!boxes.size) return [...wanted];
          return [...boxes].filter(([, cb]) => cb.checked).map(([id]) => id);
        },
        set(v) { wanted = new Set(v || []); for (const [id, cb] of boxes) cb.checked = wanted.has(id); },
        disable(f) { for (const cb of boxes.values()) cb.disabled = f; ready.then(() => { for (const cb of boxes.values()) cb.disabled = f; }); },
      };
    }
    case "multi": {
      // several of fixed options as checkboxes; none checked sends null (the default, explained in field.help)
      const box = el("div", { class: "refs multi", "data-name": name });
      const boxes = (field.options || []).map((o) => {
        const cb = el("input", { type: "checkbox", value: o, name: `${name}.${o}` });
        box.append(el("label", { class: "chk" }, cb, " ", optionLabel(field, o)));
        return cb;
      });
      return {
        node: box, focus: boxes[0] || box,
        get() {
          const chosen = boxes.filter((cb) => cb.checked).map((cb) => cb.value);
          return chosen.length || !field.nullable ? chosen : null;
        },
        set(v) { const wanted = new Set(Array.isArray(v) ? v : []); for (const cb of boxes) cb.checked = wanted.has(cb.value); },
        disable(f) { for (const cb of boxes) cb.disabled = f; },
      };
    }
    case "rows": return rowsWidget(field, refs, name);
    case "text": if (ZONE_FIELDS.has(field.name)) return zoneWidget(field, name); return fieldInput(field, name);
    case "grants": return grantsWidget(name);
    case "dialparams": return dialParamsWidget(field, name);
    default: return fieldInput(field, name);
  }
}

// ---- time zones: chosen from the IANA list (the browser's), Russia's zones first ----
const ZONE_FIELDS = new Set(["time_zone", "tz"]);
const RUSSIA = ["Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
  "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok", "Asia/Magadan",
  "Asia/Srednekolymsk", "Asia/Kamchatka", "Europe/Volgograd", "Europe/Saratov", "Europe/Ulyanovsk",
  "Europe/Astrakhan", "Europe/Kirov", "Asia/Barnaul", "Asia/Tomsk", "Asia/Novokuznetsk", "Asia/Chita",
  "Asia/Khandyga", "Asia/Ust-Nera", "Asia/Sakhalin", "Asia/Anadyr"];

function zoneOffset(zone) {
  try {
    const part = new Intl.DateTimeFormat("en-GB", { timeZone: zone, timeZoneName: "shortOffset" }).formatToParts(new Date())
      .find((p) => p.type === "timeZoneName");
    return part ? part.value.replace("GMT", "UTC") : "";
  } catch { return ""; }
}

function zoneWidget(field, name) {
  const all = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : RUSSIA;
  const option = (z) => el("option", { value: z }, `${z} (${zoneOffset(z) || "UTC"})`);
  const select = el("select", { name, class: "zone-select" },
    field.required ? null : el("option", { value: "" }, "—"),
    el("optgroup", { label: t("admin.zones.russia") }, RUSSIA.filter((z) => all.includes(z)).map(option)),
    el("optgroup", { label: t("admin.zones.other") }, all.filter((z) => !RUSSIA.includes(z)).map(option)));
  return {
    node: select, focus: select,
    get() { return select.value === "" ? (field.default ?? null) : select.value; },
    set(v) {
      const value = v || field.default || "";
      // a zone this browser does not list is kept as it is
      if (value && ![...select.options].some((o) => o.value === value)) select.append(el("option", { value }, value));
      select.value = value;
    },
    disable(f) { select.disabled = f; },
  };
}

function rowsWidget(field, refs, name) {
  const body = el("tbody");
  const table = el("table", { class: "subgrid", "data-name": name },
    el("thead", {}, el("tr", {}, field.columns.map((c) => el("th", { style: { width: c.kind === "checkbox" ? "1%" : `${(c.span || 1) * 12}%` } },
      t(c.label) + (c.required ? " *" : ""))), el("th", {}))), body);
  let disabled = false;
  const rows = [];
  const addBtn = el("button", { type: "button", class: "small", "data-action": "add-row", onclick: () => { addRow({}); } }, "+ " + t("admin.add_row"));
  const presets = (field.presets || []).map((p) => el("button", { type: "button", class: "small", "data-action": "preset",
    onclick: () => p.rows.forEach((r) => addRow(r)) }, "+ " + t(p.label)));
  function addRow(data) {
    const cells = field.columns.map((c) => {
      const w = widget(c, refs, `${name}.${c.name}`);
      w.set(data[c.name] !== undefined ? data[c.name] : c.default);
      w.disable(disabled);
      return { field: c, w, err: el("div", { class: "ferr" }) };
    });
    const row = { cells };
    const tools = el("td", { class: "row-tools" },
      field.ordered ? el("button", { type: "button", class: "small", title: t("admin.up"), onclick: () => move(row, -1) }, "↑") : null,
      field.ordered ? el("button", { type: "button", class: "small", title: t("admin.down"), onclick: () => move(row, 1) }, "↓") : null,
      el("button", { type: "button", class: "small", "data-action": "remove-row", title: t("admin.remove_row"), onclick: () => remove(row) }, "✕"));
    row.tr = el("tr", {}, cells.map((c) => el("td", {}, c.w.node, c.err)), tools);
    row.tools = tools;
    tools.hidden = disabled;
    rows.push(row);
    body.append(row.tr);
    return row;
  }
  function remove(row) { rows.splice(rows.indexOf(row), 1); row.tr.remove(); }
  function move(row, delta) {
    const i = rows.indexOf(row), j = i + delta;
    if (j < 0 || j >= rows.length) return;
    rows.splice(i, 1); rows.splice(j, 0, row);
    body.replaceChildren(...rows.map((r) => r.tr));
  }
  return {
    node: el("div", { class: "rows" }, table, el("div", { class: "row-buttons" }, addBtn, presets)),
    focus: addBtn,
    get() {
      return rows.map((r) => Object.fromEntries(r.cells.map((c) => [c.field.name, c.w.get()]).filter(([, v]) => v !== undefined)));
    },
    set(v) { rows.splice(0); body.replaceChildren(); (Array.isArray(v) ? v : []).forEach((d) => addRow(d || {})); },
    disable(f) { disabled = f; addBtn.hidden = f; presets.forEach((b) => { b.hidden = f; }); for (const r of rows) { r.tools.hidden = f; r.cells.forEach((c) => c.w.disable(f)); } },
    showError(path, reason) {
      const [index, sub] = path;
      const row = rows[Number(index)];
      const cell = row && row.cells.find((c) => c.field.name === sub);
      if (!cell) return false;
      cell.err.textContent = reason;
      cell.w.node.classList.add("invalid");
      return true;
    },
    clearErrors() { for (const r of rows) for (const c of r.cells) { c.err.textContent = ""; c.w.node.classList.remove("invalid"); } },
  };
}

let permissionCatalogue = null;
export function loadPermissions() {
  if (!permissionCatalogue) {
    permissionCatalogue = api("GET", "/api/permissions", null, { quiet: true }).catch(() => null);
  }
  return permissionCatalogue;
}

function grantsWidget(name) {
  const box = el("div", { class: "grants", "data-name": name });
  let value = {};
  const selects = new Map();
  const ready = loadPermissions().then((perms) => {
    const codes = perms ? perms.map((p) => p.code) : Object.keys(value);
    for (const code of codes) {
      const select = el("select", { "data-perm": code, "aria-label": code },
        el("option", { value: "" }, t("admin.grant.inherit")),
        el("option", { value: "allow" }, t("admin.grant.allow")),
        el("option", { value: "deny" }, t("admin.grant.deny")));
      select.value = code in value ? (value[code] ? "allow" : "deny") : "";
      const mark = () => { select.dataset.grant = select.value; };
      mark();
      select.addEventListener("change", mark);
      selects.set(code, select);
      const desc = perms ? perms.find((p) => p.code === code).description : "";
      box.append(el("label", { class: "grant", title: desc }, el("code", {}, code), select));
    }
  });
  return {
    node: box, focus: box, ready,
    get() {
      if (!selects.size) return value;
      const out = {};
      for (const [code, s] of selects) if (s.value) out[code] = s.value === "allow";
      return out;
    },
    set(v) { value = { ...(v || {}) }; for (const [code, s] of selects) { s.value = code in value ? (value[code] ? "allow" : "deny") : ""; s.dataset.grant = s.value; } },
    disable(f) { ready.then(() => { for (const s of selects.values()) s.disabled = f; }); },
  };
}

function dialParamsWidget(field, name) {
  const box = el("div", { class: "dialparams", "data-name": name });
  let mode = null;
  let value = {};
  let inputs = new Map();
  let disabled = false;
  function render() {
    const specs = (field.modes || {})[mode] || [];
    inputs = new Map();
    box.replaceChildren(...(specs.length ? specs.map((spec) => {
      const input = el("input", { type: "number", name: `${name}.${spec.name}`, step: spec.type === "integer" ? "1" : "any",
        min: spec.min ?? null, max: spec.max ?? null, placeholder: spec.default ?? "" });
      const v = value[spec.name];
      input.value = v === undefined || v === null ? (spec.default ?? "") : String(v);
      input.disabled = disabled;
      const err = el("div", { class: "ferr", "data-error-for": `${name}.${spec.name}` });
      inputs.set(spec.name, { input, err });
      return el("label", { class: "dp" }, t(`admin.dp.${spec.name}`) + (spec.required ? " *" : ""), input, err);
    }) : [el("span", { class: "muted" }, t("admin.dp.none"))]));
  }
  return {
    node: box, focus: box,
    get() {
      const out = {};
      for (const [key, { input }] of inputs) if (input.value.trim() !== "") out[key] = Number(input.value);
      return out;
    },
    set(v) { value = { ...(v || {}) }; render(); },
    setMode(m) { if (m !== mode) { value = { ...value, ...this.get() }; mode = m; render(); } },
    disable(f) { disabled = f; for (const { input } of inputs.values()) input.disabled = f; },
    showError(path, reason) {
      const slot = inputs.get(path[0]);
      if (!slot) return false;
      slot.err.textContent = reason;
      slot.input.classList.add("invalid");
      return true;
    },
    clearErrors() { for (const { input, err } of inputs.values()) { err.textContent = ""; input.classList.remove("invalid"); } },
  };
}

// ---- the form -----------------------------------------------------------------------------------------------------
export function buildForm(resource, refs, item, { readOnly = false } = {}) {
  const isNew = !item || item.id === undefined;
  const slots = new Map();
  const grid = el("div", { class: "fgrid" });
  const formError = el("div", { class: "form-error", role: "alert" });
  for (const field of resource.fields) {
    const w = widget(field, refs, field.name);
    const value = isNew ? field.default : (field.value ? field.value(item) : item[field.name]);
    w.set(value === undefined ? null : value);
    const locked = readOnly || Boolean(field.read_only) || (!isNew && field.create_only);
    w.disable(locked);
    const err = el("div", { class: "ferr", "data-error-for": field.name });
    const labelText = t(FORM_LABELS[`${resource.key}.${field.name}`] || field.label)
      + (field.required && !(field.kind === "password" && !isNew) ? " *" : "");
    const help = field.help ? el("div", { class: "fhelp" }, t(field.help)) : null;
    const wrap = field.kind === "checkbox"
      ? el("div", { class: `fld span-${field.span} fld-check`, "data-field": field.name }, el("label", { class: "chk" }, w.node, " ", labelText), help, err)
      : el("div", { class: `fld span-${field.span}`, "data-field": field.name },
        el("label", { class: "flabel" }, labelText, ["rows", "refs", "multi", "grants", "dialparams"].includes(field.kind) ? null : w.node),
        ["rows", "refs", "multi", "grants", "dialparams"].includes(field.kind) ? w.node : null, help, err);
    slots.set(field.name, { field, w, err, wrap, locked });
    grid.append(wrap);
  }
  // dial parameters follow the chosen dial mode
  for (const { field, w } of slots.values()) {
    if (field.kind === "dialparams" && slots.has(field.depends)) {
      const source = slots.get(field.depends).w;
      w.setMode(source.get());
      source.node.addEventListener("change", () => w.setMode(source.get()));
    }
  }
  const node = el("form", { class: "aform", novalidate: true, onsubmit: (e) => e.preventDefault() }, formError, grid);
  const form = {
    node, isNew, slots,
    ready: Promise.all([...slots.values()].map((s) => s.w.ready).filter(Boolean)),
    values() {
      const out = {};
      for (const { field, w, locked } of slots.values()) {
        if ((locked && !isNew) || field.local) continue;
        const v = w.get();
        if (v === undefined) continue;
        out[field.name] = v;
      }
      return out;
    },
    clearErrors() {
      formError.textContent = "";
      for (const { w, err } of slots.values()) {
        err.textContent = "";
        if (w.node.classList) w.node.classList.remove("invalid");
        if (w.clearErrors) w.clearErrors();
      }
    },
    showErrors(error) {
      form.clearErrors();
      const rest = [];
      const list = error.errors && error.errors.length ? error.errors : [];
      for (const e of list) {
        let path = String(e.field || "").split(".");
        let slot = null;
        for (let n = path.length; n > 0 && !slot; n--) {
          if (slots.has(path.slice(0, n).join("."))) { slot = slots.get(path.slice(0, n).join(".")); path = [path.slice(0, n).join("."), ...path.slice(n)]; }
        }
        if (!slot) { rest.push(`${e.field}: ${e.reason}`); continue; }
        if (path.length > 1 && slot.w.showError && slot.w.showError(path.slice(1), e.reason)) continue;
        slot.err.textContent = (slot.err.textContent ? slot.err.textContent + "; " : "") + e.reason;
        if (slot.w.node.classList) slot.w.node.classList.add("invalid");
      }
      if (!list.length) rest.push(error.message);
      formError.textContent = rest.join("; ");
      const first = node.querySelector(".invalid, .ferr:not(:empty)");
      if (first && first.scrollIntoView) first.scrollIntoView({ block: "nearest" });
    },
  };
  return form;
}

export async function saveItem(resource, form, item) {
  const body = form.values();
  try {
    const saved = form.isNew
      ? await api("POST", resource.endpoint, body, { quiet: true })
      : await api("PATCH", `${resource.endpoint}/${item.id}`, body, { quiet: true });
    form.clearErrors();
    forgetRefs();
    if (resource.afterSave) await resource.afterSave(saved, form);
    toast(t("admin.saved"), "ok");
    return saved;
  } catch (err) {
    form.showErrors(err);
    if (!err.errors.length) toast(err.message, "error");
    throw err;
  }
}

// asks, deletes, says so: true when deleted (a refused request rejects, shown as a toast by api())
export async function removeItem(endpoint, id, name) {
  if (!(await confirmDialog(t("admin.confirm.delete", { name })))) return false;
  await api("DELETE", `${endpoint}/${id}`);
  toast(t("admin.deleted"), "ok");
  return true;
}

export async function deleteItem(resource, item) {
  if (!(await removeItem(resource.endpoint, item.id, item[resource.label] ?? `#${item.id}`))) return false;
  forgetRefs();
  return true;
}

// "Новое поле", "Поле «Телефон»" rather than "Новая запись: Поля", "Поля: Телефон"; a resource without its own
// titles in the catalogue keeps the general ones
export function dialogTitle(resource, item, isNew) {
  const name = item ? (item[resource.label] ?? "#" + item.id) : "";
  const id = (isNew ? "admin.new." : "admin.one.") + resource.key;
  const text = t(id, { name });
  if (text !== id) return text;
  return isNew ? t("admin.new_in", { what: t(resource.title) }) : `${t(resource.title)}: ${name}`;
}

export function openForm(resource, refs, item, { onSaved = () => {}, onDeleted = () => {} } = {}) {
  const readOnly = !resource.can_write;
  const form = buildForm(resource, refs, item, { readOnly });
  const isNew = form.isNew;
  const title = dialogTitle(resource, item, isNew);
  const buttons = [];
  if (!readOnly && !isNew) {
    buttons.push(el("button", { type: "button", class: "danger left", "data-action": "delete", onclick: async () => {
      if (await deleteItem(resource, item)) { m.close(); onDeleted(item); }
    } }, t("admin.delete")));
  }
  if (!readOnly && !isNew) {
    for (const action of resource.actions || []) {
      buttons.push(el("button", { type: "button", "data-action": action.key, onclick: () => runAction(resource, item, action, () => { m.close(); onSaved(item); }) },
        t(action.label)));
    }
  }
  if (!readOnly) {
    buttons.push(el("button", { type: "submit", class: "primary", "data-action": "save", onclick: async (e) => {
      e.preventDefault();
      const button = e.currentTarget;
      button.disabled = true;
      try { const saved = await saveItem(resource, form, item); m.close(); onSaved(saved); } catch { /* shown */ } finally { button.disabled = false; }
    } }, t("admin.save")));
  }
  buttons.push(el("button", { type: "button", "data-action": "cancel", onclick: () => m.close() }, readOnly ? t("admin.close") : t("admin.cancel")));
  const wide = resource.fields.length > 6 || resource.fields.some((f) => ["rows", "grants"].includes(f.kind));
  const m = modal(title, form.node, buttons, { wide, className: `form-dialog res-${resource.key}` });
  form.node.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.ctrlKey && !readOnly) { e.preventDefault(); m.dialog.querySelector("[data-action=save]").click(); }
  });
  const first = m.dialog.querySelector(".aform input:not([disabled]), .aform select:not([disabled]), .aform textarea:not([disabled])");
  if (first) first.focus();
  return { form, close: m.close, dialog: m.dialog };
}

function runAction(resource, item, action, done) {
  const form = buildForm({ fields: action.fields }, {}, null);
  const m = modal(t(action.label), form.node, [
    el("button", { type: "button", class: "primary", "data-action": "run-action", onclick: async () => {
      try {
        await api("POST", `${resource.endpoint}/${item.id}/${action.key}`, form.values(), { quiet: true });
        toast(t("admin.saved"), "ok");
        m.close();
        done();
      } catch (err) { form.showErrors(err); }
    } }, t(action.label)),
    el("button", { type: "button", "data-action": "cancel", onclick: () => m.close() }, t("admin.cancel")),
  ], { className: "action-dialog" });
}

// ---- lists ------------------------------------------------------------------------------------------------------------
// listTable(container, options) -> DataTable: how every administration list is set up. A holder (class
// options.holderClass) is appended to container with a DataTable in it; the DataTable's own options pass through
// (endpoint, columns, sort, filters, search, perPage, urlState, empty, rowClass). Besides:
//   create: {label, action = "create", onClick}   a "+ label" button in the table's bar (give it only to writers)
//   tools: [nodes]                                 more controls beside it (bulk actions, exports ...)
//   open(row, table)                               what a click on a row does (a dialog, an editor, another page)
//   remove: {name(row), action = "remove", endpoint = options.endpoint}
//                                                  a last column of ✕ buttons: confirmation, DELETE, toast, reload
// The create button and the tools sit in the bar between the search box and the counts (table.tools).
export function listTable(container, { create = null, tools = [], open = null, remove = null, holderClass = null, ...options }) {
  const holder = el("div", { class: holderClass });
  container.append(holder);
  let table = null;
  const columns = [...options.columns];
  if (remove) {
    columns.push({ key: "_del", label: " ", width: "3em", render: (v, row) => el("button", { type: "button", class: "small",
      "data-action": remove.action || "remove", title: t("admin.delete"), onclick: async (e) => {
        e.stopPropagation();
        if (await removeItem(remove.endpoint || options.endpoint, row.id, remove.name(row))) table.reload();
      } }, "✕") });
  }
  table = new DataTable(holder, { ...options, columns, ...(open ? { onRowClick: (row) => open(row, table) } : {}) });
  table.tools = el("div", { class: "toolbar in-bar" },
    create ? el("button", { type: "button", class: "primary", "data-action": create.action || "create", onclick: create.onClick },
      "+ " + create.label) : null,
    tools);
  const bar = holder.querySelector(".dt-bar");
  bar.insertBefore(table.tools, bar.querySelector(".dt-info"));
  return table;
}

// a resource of the registry: its list, the create/edit dialog (or the object's own page: resource.detail)
export async function resourceSection(panel, resource, refs, { urlState = true, extra = null } = {}) {
  const tools = extra ? el("div", { class: "subtools" }) : null;
  if (tools) panel.append(tools);
  const detail = (id) => location.assign(resource.detail.replace("{id}", id));
  let table = null;
  const columns = await tableColumns(resource, refs, () => table);
  table = listTable(panel, {
    holderClass: "table-holder", endpoint: resource.endpoint, columns, sort: resource.sort, urlState, filters: resource.filters || {},
    natural: ["name", "login"],
    open: (row, tb) => {
      if (resource.detail) detail(row.id);
      else openForm(resource, refs, row, { onSaved: () => tb.reload(), onDeleted: () => tb.reload() });
    },
    create: resource.can_write && !resource.no_create ? { label: t("admin.create"), onClick: () => {
      openForm(resource, refs, null, { onSaved: (saved) => { if (resource.detail) detail(saved.id); else table.reload(); } });
    } } : null,
  });
  if (extra) extra(tools, table);
  return table;
}

// an object's own page (a contact list, a campaign, a DNC list): its form, and for writers Delete and Save;
// item() is the object as it is now, onSaved(saved) follows a save, onDeleted() a deletion
export function detailForm(container, resource, refs, item, { onSaved = () => {}, onDeleted = () => {}, buttons = [], deletable = true } = {}) {
  const form = buildForm(resource, refs, item(), { readOnly: !resource.can_write });
  const box = el("div", { class: "panel" }, form.node);
  if (resource.can_write) {
    box.append(el("div", { class: "form-actions" },
      deletable ? el("button", { type: "button", class: "danger left", "data-action": "delete", onclick: async () => {
        if (await deleteItem(resource, item())) onDeleted();
      } }, t("admin.delete")) : null,
      buttons,
      el("button", { type: "button", class: "primary", "data-action": "save", onclick: async () => {
        try { await onSaved(await saveItem(resource, form, item())); } catch { /* shown at the fields */ }
      } }, t("admin.save"))));
  }
  container.append(box);
  return form;
}

function numberingImport(toolbar, table) {
  const file = el("input", { type: "file", accept: ".csv,.txt", class: "file", "aria-label": t("admin.numbering.file") });
  const status = el("span", { class: "muted numbering-status" });
  const skip = el("input", { type: "checkbox", name: "skip_invalid" });
  const bar = progressBar();
  bar.node.hidden = true;
  const button = el("button", { type: "button", "data-action": "numbering", onclick: async () => {
    if (!file.files.length) { toast(t("admin.numbering.choose"), "error"); return; }
    const data = new FormData();
    data.append("file", file.files[0]);
    data.append("skip_invalid", skip.checked ? "true" : "false");
    button.disabled = true;
    try {
      let job = await api("POST", "/api/phone-codes/import-numbering", data);
      bar.node.hidden = false;
      while (!["finished", "failed", "done"].includes(job.status)) {
        bar.set(job.rows_done, job.rows_total || 1);
        status.textContent = t("admin.numbering.running", { rows: job.rows_done });
        await new Promise((r) => setTimeout(r, 500));
        job = await api("GET", `/api/phone-codes/import-numbering/${job.id}`);
      }
      bar.set(job.rows_done, job.rows_total || job.rows_done || 1);
      status.textContent = job.status === "failed" ? job.message
        : t("admin.numbering.done", { imported: job.imported, rejected: job.rejected });
      // ranges whose region names no single time zone stay "uncertain": say which regions they are
      const noZone = (job.result && job.result.regions_without_zone) || [];
      if (job.status !== "failed" && noZone.length) {
        status.textContent += ". " + t("admin.numbering.no_zone", {
          regions: noZone.slice(0, 5).map((r) => `${r.region} (${r.rows})`).join(", ") + (noZone.length > 5 ? "…" : "") });
      }
      table.reload();
    } catch { /* shown */ } finally { button.disabled = false; }
  } }, t("admin.numbering.upload"));
  toolbar.append(el("div", { class: "numbering" }, el("span", {}, t("admin.numbering.title")), file,
    el("label", { class: "check", title: t("admin.numbering.skip_hint") }, skip, " ", t("admin.numbering.skip")),
    button, bar.node, status));
}

function numberLookup(toolbar) {
  const input = el("input", { type: "text", name: "lookup", placeholder: "+7 912 100-20-30", "aria-label": t("admin.lookup.title") });
  const result = el("span", { class: "lookup-result" });
  const run = async () => {
    if (!input.value.trim()) return;
    try {
      const r = await api("GET", "/api/phone-codes/lookup", null, { query: { number: input.value.trim() } });
      result.textContent = t("admin.lookup.result", { number: r.number, zones: r.timezones.join(", ") || "—",
        region: r.region || "—", carrier: r.carrier || "—", source: r.source }) + (r.tz_uncertain ? " " + t("admin.lookup.uncertain") : "");
    } catch { result.textContent = ""; }
  };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") run(); });
  toolbar.append(el("div", { class: "lookup" }, el("span", {}, t("admin.lookup.title")), input,
    el("button", { type: "button", "data-action": "lookup", onclick: run }, t("admin.lookup.run")), result));
}

function phoneCodeTools(toolbar, table, config) {
  numberLookup(toolbar);
  if (config.numbering) numberingImport(toolbar, table);
}

// ---- an operator with his user account, in one form ----
// The user (login, password, the "operator" role) is created first, then the operator linked to him; when the
// operator is refused, the user just made is deleted again, so a failed form leaves nothing behind.
const ACCOUNT = {
  key: "operator_account", title: "admin.account.title", label: "name",
  fields: [
    { name: "name", kind: "text", label: "admin.f.person_name", required: true, span: 2, nullable: false },
    { name: "login", kind: "text", label: "admin.f.login", required: true, span: 1, nullable: false },
    { name: "password", kind: "password", label: "admin.f.password", required: true, span: 1 },
    { name: "extension", kind: "text", label: "admin.f.extension", span: 1, nullable: true },
    { name: "language", kind: "select", label: "admin.f.language", options: ["ru", "en"], option_prefix: "admin.enum.lang.",
      default: "ru", nullable: false, span: 1 },
    { name: "pool_ids", kind: "refs", ref: "pools", label: "admin.f.pool_ids", span: 4, default: [] },
  ],
};
const USER_FIELDS = { login: "login", password: "password", name: "full_name", language: "language" };

function operatorAccountTools(table, config) {
  table.tools.append(el("button", { type: "button", "data-action": "create-account",
    onclick: () => openAccountForm(config, () => table.reload()) }, "+ " + t("admin.account.create")));
}

function openAccountForm(config, onSaved) {
  const form = buildForm(ACCOUNT, config.refs, null);
  const save = el("button", { type: "submit", class: "primary", "data-action": "save", onclick: async (e) => {
    e.preventDefault();
    save.disabled = true;
    try { await createAccount(form); m.close(); toast(t("admin.saved"), "ok"); onSaved(); } catch { /* shown */ } finally { save.disabled = false; }
  } }, t("admin.save"));
  const m = modal(t("admin.account.title"), [el("p", { class: "muted" }, t("admin.account.hint")), form.node],
    [save, el("button", { type: "button", "data-action": "cancel", onclick: () => m.close() }, t("admin.cancel"))],
    { className: "form-dialog account-dialog" });
  const first = m.dialog.querySelector(".aform input");
  if (first) first.focus();
}

async function createAccount(form) {
  const v = form.values();
  form.clearErrors();
  const roles = await loadRef(readConfig().refs || {}, "roles");
  const role = roles.items.find((r) => r.code === "operator");
  let user;
  try {
    user = await api("POST", "/api/users", { login: v.login, password: v.password || "", full_name: v.name || "",
      language: v.language, role_ids: role ? [role.id] : [] }, { quiet: true });
  } catch (err) {
    // the user's fields carry the form's names
    const back = Object.fromEntries(Object.entries(USER_FIELDS).map(([k, u]) => [u, k]));
    form.showErrors({ ...err, errors: err.errors.map((x) => ({ ...x, field: back[x.field] || x.field })) });
    throw err;
  }
  try {
    await api("POST", "/api/operators", { name: v.name, user_id: user.id, extension: v.extension || null,
      pool_ids: v.pool_ids || [] }, { quiet: true });
  } catch (err) {
    await api("DELETE", `/api/users/${user.id}`, null, { quiet: true }).catch(() => null);
    form.showErrors(err);
    throw err;
  }
  forgetRefs();
}

// ---- completion codes marked successful (conversion in the outcomes report) ----
// The marks are the reports' (GET/PUT /api/reports/successful-codes, a list of code ids): the codes' table shows a
// ✓ column and their dialog a checkbox, saved after the code itself. Only on codes: groups carry no mark.
async function withSuccessfulMarks(resource, spec) {
  let marks = new Set();
  try {
    marks = new Set((await api("GET", spec.endpoint, null, { quiet: true })).code_ids);
  } catch { return resource; }
  const out = {
    ...resource, marks,
    columns: [...resource.columns, { key: "_successful", label: "admin.f.successful", render: "successful" }],
    fields: [...resource.fields, { name: "_successful", kind: "checkbox", label: "admin.f.successful", help: "admin.help.successful",
      span: 2, nullable: false, local: true, default: false, read_only: !spec.write || !resource.can_write,
      value: (item) => marks.has(item.id) }],
  };
  out.afterSave = async (saved, form) => {
    if (!spec.write) return;
    const wanted = Boolean(form.slots.get("_successful").w.get());
    try {
      const current = new Set((await api("GET", spec.endpoint, null, { quiet: true })).code_ids);
      if (current.has(saved.id) === wanted) { marks = current; out.marks = current; return; }
      if (wanted) current.add(saved.id); else current.delete(saved.id);
      const result = await api("PUT", spec.endpoint, { code_ids: [...current] }, { quiet: true });
      marks = new Set(result.code_ids);
      out.marks = marks;
    } catch (err) {
      toast(t("admin.successful.failed", { error: err.message }), "error");
    }
  };
  return out;
}

export async function resourcePage(container, config) {
  const tables = [];
  if (config.successful) {
    config = { ...config, resources: await Promise.all(config.resources.map((r) => (r.key === "codes" ? withSuccessfulMarks(r, config.successful) : r))) };
  }
  const items = config.resources.map((resource, index) => ({
    key: resource.key, label: t(resource.title),
    render: async (panel) => tables.push(await resourceSection(panel, resource, config.refs, {
      urlState: index === 0,
      extra: resource.key === "phone_codes" ? (tools, table) => phoneCodeTools(tools, table, config)
        : resource.key === "operators" && config.accounts ? (tools, table) => operatorAccountTools(table, config) : null,
    })),
  }));
  if (!items.length) { container.append(el("p", { class: "muted" }, t("admin.nothing"))); return; }
  tabs(container, items);
  if (config.live && config.live.length) {
    // states shown in the tables (trunks, SIP registrations) follow the engine's events
    let timer = null;
    const reload = () => { clearTimeout(timer); timer = setTimeout(() => tables.forEach((tb) => tb.reload()), 300); };
    app.live(config.live, reload, { onReconnect: reload, onState: (state) => { container.dataset.live = state; } });
  }
}
