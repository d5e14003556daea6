// One campaign (/admin/campaigns/{id}): status with the actions the user may take, all properties (generic form:
// dial mode and parameters, lists, pools, caller-ID group, weekly schedule ...) and the selection-rule builder (001):
// several selections with priority, conditions on contact fields and system attributes, sort order, skill / pool,
// limits, and a live count of matching contacts (debounced POST .../selections/preview). While it runs without
// placing calls the head says why (the live floor's idle_reasons, for users who may watch it; times in the
// campaign's time zone).
// Config: {id, resource, refs, selection: {ops, system}, perms}.
const A = await import(document.querySelector('link[rel=modulepreload][href*="/static/admin.js"]').href);
const { api, el, t, toast } = A.app;

const ACTIONS = ["start", "pause", "resume", "stop", "acknowledge"];

export async function campaignPage(root, config) {
  const { id, resource, refs, perms } = config;
  let campaign;
  try {
    campaign = await api("GET", `${resource.endpoint}/${id}`);
  } catch {
    root.append(el("p", { class: "muted" }, t("admin.not_found")));
    return;
  }
  const title = root.querySelector("h1");
  const head = el("div", { class: "detail-head" });
  const idle = el("ul", { class: "idle-reasons", hidden: true, "aria-live": "polite" });
  root.append(head, idle);
  let idleTimer = null;
  async function loadIdle() {
    // why it places no calls: the live floor's view of this campaign (monitoring.read)
    clearTimeout(idleTimer);
    try {
      const snap = await api("GET", "/api/monitoring/live", null, { quiet: true });
      const live = snap.campaigns.find((c) => c.id === id);
      const reasons = (live && live.idle_reasons) || [];
      idle.hidden = !reasons.length;
      idle.replaceChildren(...(reasons.length ? [el("li", { class: "idle-head" }, t("admin.campaign.idle"))] : []),
        ...reasons.map((r) => el("li", { dataset: { code: r.code } }, A.app.idleText(r, campaign.time_zone, t, window.LANG))));
    } catch { /* shown again at the next read */ }
    idleTimer = setTimeout(loadIdle, 15000);
  }
  const ctx = { id, campaign: () => campaign, refs, perms, selection: config.selection };
  async function reload() { campaign = await api("GET", `${resource.endpoint}/${id}`); render(); }
  ctx.reload = reload;

  function render() {
    title.replaceChildren(el("a", { href: "/admin/campaigns" }, t("nav.admin.campaigns")), " / ", campaign.name, " ",
      A.campaignStatusPill(campaign.status));
    const actions = el("div", { class: "actions" });
    if (perms["campaigns.control"]) {
      for (const action of ACTIONS) {
        if (!(campaign.allowed_actions || []).includes(action)) continue;
        actions.append(el("button", { type: "button", class: action === "start" || action === "resume" ? "primary" : action === "stop" ? "danger" : "",
          "data-action": action, onclick: () => act(action) }, t(`admin.campaign.${action}`)));
      }
    }
    head.replaceChildren(
      el("span", { class: "muted status-reason", hidden: !campaign.status_reason }, campaign.status_reason ? t("admin.campaign.reason", { reason: campaign.status_reason }) : ""),
      el("span", { class: "muted" }, t("admin.campaign.changed", { at: A.app.fmtDateTime(campaign.status_changed_at) })),
      actions);
  }

  async function act(action) {
    let body = {};
    if (action === "acknowledge" || action === "stop") {
      const comment = el("textarea", { name: "comment", rows: 3 });
      const ok = await new Promise((resolve) => {
        const m = A.modal(t(`admin.campaign.${action}`), el("label", {}, t(action === "acknowledge" ? "admin.campaign.ack_comment" : "admin.f.comment"), comment), [
          el("button", { type: "button", class: action === "stop" ? "danger" : "primary", "data-action": "confirm", onclick: () => { m.close(); resolve(true); } }, t(`admin.campaign.${action}`)),
          el("button", { type: "button", "data-action": "cancel", onclick: () => { m.close(); resolve(false); } }, t("admin.cancel")),
        ], { className: "confirm-dialog" });
      });
      if (!ok) return;
      body = { comment: comment.value };
    }
    try {
      campaign = await api("POST", `${resource.endpoint}/${id}/${action}`, body);
      toast(t("admin.campaign.done", { status: t(`admin.enum.campaign_status.${campaign.status}`) }), "ok");
      render();
    } catch { /* shown as a toast */ }
  }

  render();
  if (config.live) loadIdle();
  if (config.live) {
    // status changes (auto-stop, the schedule, another user's action) arrive as they happen
    A.app.live(["campaigns"], (event) => {
      if (event.campaign_id === id && (event.type === "CampaignStatusChanged" || event.type === "CampaignFinished")) { reload(); loadIdle(); }
    }, { onReconnect: () => { reload(); loadIdle(); }, onState: (state) => { root.dataset.live = state; } });
  }
  const items = [{ key: "props", label: t("admin.tab.props"), render: (panel) => propsTab(panel, resource, ctx) }];
  if (perms["selections.read"]) items.push({ key: "selections", label: t("admin.tab.selections"), render: (panel) => selectionsTab(panel, ctx) });
  items.push({ key: "media", label: t("campaign.media.tab"), render: (panel) => mediaTab(panel, resource, ctx) });
  A.tabs(root, items);
}

// ---- recording, answering machines, messages (issue #16): PATCHes only these fields --------------------------------
export const MEDIA = {
  key: "campaign_media", title: "campaign.media.title", label: "name",
  fields: [
    { name: "record_mode", kind: "select", label: "campaign.media.record_mode", options: ["none", "all", "percent"],
      option_prefix: "campaign.media.mode.", default: "none", required: true, nullable: false, span: 2 },
    { name: "record_percent", kind: "number", label: "campaign.media.record_percent", min: 1, max: 99, span: 2, nullable: true },
    { name: "record_consent_audio", kind: "text", label: "campaign.media.record_consent_audio", span: 2, nullable: true },
    { name: "recording_retention_days", kind: "number", label: "campaign.media.recording_retention_days", min: 1, span: 2, nullable: true },
    { name: "amd_enabled", kind: "checkbox", label: "campaign.media.amd_enabled", default: false, span: 4 },
    { name: "amd_message", kind: "text", label: "campaign.media.amd_message", span: 2, nullable: true },
    { name: "abandon_message", kind: "text", label: "campaign.media.abandon_message", span: 2, nullable: true },
  ],
};
export const RETENTION_PRESETS = [30, 180, 365];

function mediaTab(panel, resource, ctx) {
  const canWrite = Boolean(ctx.perms["campaigns.write"]);
  const form = A.buildForm(MEDIA, ctx.refs, ctx.campaign(), { readOnly: !canWrite });
  const slot = (name) => form.slots.get(name);
  // the share only matters in "percent" mode
  const percent = slot("record_percent");
  const mode = slot("record_mode");
  const showPercent = () => { percent.wrap.hidden = mode.w.get() !== "percent"; };
  mode.w.node.addEventListener("change", showPercent);
  showPercent();
  // 1, 6 and 12 months at a click
  const retention = slot("recording_retention_days");
  const presets = el("div", { class: "presets" }, RETENTION_PRESETS.map((days) => el("button", {
    type: "button", class: "small", "data-retention": days, disabled: !canWrite,
    onclick: () => { retention.w.set(days); },
  }, t(`campaign.media.retention.${days}`))));
  retention.wrap.append(presets);
  const save = canWrite ? el("button", { type: "button", class: "primary", "data-action": "save-media", onclick: async () => {
    form.clearErrors();
    const values = form.values();
    if (values.record_mode !== "percent" && values.record_percent === null) delete values.record_percent;
    try {
      await api("PATCH", `${resource.endpoint}/${ctx.id}`, values, { quiet: true });
      toast(t("campaign.media.saved"), "ok");
      await ctx.reload();
    } catch (err) {
      form.showErrors(err);
    }
  } }, t("admin.save")) : null;
  panel.append(el("div", { class: "panel media-settings" }, el("h2", {}, t("campaign.media.title")),
    el("p", { class: "muted" }, t("campaign.media.help")), form.node, el("div", { class: "form-actions" }, save)));
}

function propsTab(panel, resource, ctx) {
  A.detailForm(panel, resource, ctx.refs, ctx.campaign, { onSaved: () => ctx.reload(), onDeleted: () => location.assign("/admin/campaigns") });
}

// ---- selections -----------------------------------------------------------------------------------------------------
const SELECTION = {
  key: "selection", title: "admin.selection", label: "name",
  fields: [
    { name: "name", kind: "text", label: "admin.f.name", required: true, span: 2, nullable: false },
    { name: "priority", kind: "number", label: "admin.f.priority", default: 50, min: 1, max: 100, span: 1, nullable: true },
    { name: "is_active", kind: "checkbox", label: "admin.f.is_active", default: true, span: 1 },
    { name: "skill_id", kind: "ref", ref: "skills", label: "admin.f.skill_id", span: 1, nullable: true },
    { name: "min_skill_level", kind: "number", label: "admin.f.min_skill_level", min: 1, max: 100, span: 1, nullable: true },
    { name: "pool_id", kind: "ref", ref: "pools", label: "admin.f.pool_id", span: 1, nullable: true },
    { name: "final_crm_status", kind: "text", label: "admin.f.final_crm_status", span: 1, nullable: true },
    { name: "max_attempts_per_day", kind: "number", label: "admin.f.max_attempts_per_day", min: 1, span: 1, nullable: true },
    { name: "max_attempts_total", kind: "number", label: "admin.f.max_attempts_total", min: 1, span: 1, nullable: true },
    { name: "pause_between_attempts_s", kind: "number", label: "admin.f.pause_between_attempts_s", min: 0, span: 2, nullable: true },
  ],
};

async function campaignFields(ctx) {
  // the fields of the campaign's lists (union), with enum options when the field catalogue is readable
  const byId = new Map();
  const catalogue = ctx.perms["fields.read"] ? await A.loadRef(ctx.refs, "fields") : { byId: new Map() };
  for (const listId of ctx.campaign().list_ids) {
    try {
      const list = await api("GET", `/api/lists/${listId}`, null, { quiet: true });
      for (const f of list.fields) {
        const full = catalogue.byId.get(f.field_id);
        byId.set(f.field_id, { key: String(f.field_id), id: f.field_id, name: f.name, type: f.type, options: full ? full.options : [] });
      }
    } catch { /* a list the user may not read */ }
  }
  const system = ctx.selection.system.map((a) => ({ key: a.name, id: a.name, name: t(`admin.attr.${a.name}`), type: a.type, options: a.options, system: true }));
  return { list: [...byId.values()], system, find: (key) => [...byId.values(), ...system].find((f) => f.key === String(key)) };
}

function fieldSelect(fields, value) {
  const select = el("select", { class: "cond-field", "aria-label": t("admin.sel.field") },
    el("optgroup", { label: t("admin.sel.fields") }, fields.list.map((f) => el("option", { value: f.key }, f.name))),
    el("optgroup", { label: t("admin.sel.system") }, fields.system.map((f) => el("option", { value: f.key }, f.name))));
  if (value !== undefined && value !== null) select.value = String(value);
  return select;
}

function optionLabel(field, value) {
  if (field.key === "last_outcome") return t(`outcome.${value}`);
  if (field.key === "status" && field.system) return t(`admin.enum.contact_status.${value}`);
  return value;
}

function conditionRow(fields, ops, cond, onChange, onRemove, readOnly) {
  const fieldSel = fieldSelect(fields, cond.field ?? (fields.list[0] || fields.system[0]).key);
  const opSel = el("select", { class: "cond-op", "aria-label": t("admin.sel.op") });
  const valueCell = el("td", { class: "cond-value" });
  let valueGet = () => null;
  function field() { return fields.find(fieldSel.value); }
  function renderOps(keep) {
    const f = field();
    const list = (ops[f ? f.type : "string"] || ["eq"]);
    opSel.replaceChildren(...list.map((o) => el("option", { value: o }, t(`admin.op.${o}`))));
    if (keep && list.includes(keep)) opSel.value = keep;
  }
  function renderValue(value) {
    const f = field();
    const op = opSel.value;
    let input;
    if (op === "in") {
      input = el("input", { type: "text", placeholder: t("admin.sel.in_hint") });
      input.value = Array.isArray(value) ? value.join(", ") : value ?? "";
      valueGet = () => input.value.split(",").map((s) => s.trim()).filter(Boolean).map((s) => (["integer", "decimal"].includes(f.type) ? Number(s) : s));
    } else if (op === "today_plus") {
      input = el("input", { type: "number", step: "1", placeholder: t("admin.sel.days_hint") });
      input.value = value ?? 0;
      valueGet = () => (input.value === "" ? 0 : Number(input.value));
    } else if (f && f.type === "boolean") {
      input = el("select", {}, el("option", { value: "true" }, t("common.yes")), el("option", { value: "false" }, t("common.no")), el("option", { value: "" }, t("admin.sel.empty")));
      input.value = value === null ? "" : String(value ?? true);
      valueGet = () => (input.value === "" ? null : input.value === "true");
    } else if (f && f.type === "enum" && f.options.length && op !== "contains") {
      input = el("select", {}, el("option", { value: "" }, t("admin.sel.empty")), f.options.map((o) => el("option", { value: o }, optionLabel(f, o))));
      input.value = value ?? f.options[0];
      valueGet = () => (input.value === "" ? null : input.value);
    } else {
      const type = { integer: "number", decimal: "number", date: "date", datetime: "datetime-local" }[f ? f.type : "string"] || "text";
      input = el("input", { type, step: f && f.type === "decimal" ? "any" : null });
      input.value = value === null || value === undefined ? "" : String(value).slice(0, type === "datetime-local" ? 16 : undefined);
      valueGet = () => {
        if (input.value === "") return op === "contains" ? "" : null;
        return type === "number" ? Number(input.value) : input.value;
      };
    }
    input.classList.add("cond-input");
    input.setAttribute("aria-label", t("admin.sel.value"));
    input.disabled = readOnly;
    input.addEventListener("input", onChange);
    input.addEventListener("change", onChange);
    valueCell.replaceChildren(input);
  }
  renderOps(cond.op);
  renderValue(cond.value);
  let shownOp = opSel.value;
  fieldSel.addEventListener("change", () => { renderOps(opSel.value); shownOp = opSel.value; renderValue(null); onChange(); });
  // another operator keeps the value typed ("равно 5000" → "не меньше 5000"); a list keeps its first item, a
  // single value becomes a list of one; "today ± N days" has a value of its own kind
  opSel.addEventListener("change", () => {
    const before = valueGet();
    const next = opSel.value;
    renderValue(carryValue(shownOp, next, before));
    shownOp = next;
    onChange();
  });
  fieldSel.disabled = readOnly; opSel.disabled = readOnly;
  const tr = el("tr", { class: "cond" }, el("td", {}, fieldSel), el("td", {}, opSel), valueCell,
    el("td", { class: "row-tools" }, readOnly ? null : el("button", { type: "button", class: "small", "data-action": "remove-cond", title: t("admin.remove_row"), onclick: () => onRemove(row) }, "✕")));
  const row = {
    tr,
    get() { const f = field(); return { field: f && !f.system ? f.id : fieldSel.value, op: opSel.value, value: valueGet() }; },
  };
  return row;
}

export function carryValue(fromOp, toOp, value) {
  if (value === null || value === undefined || value === "") return null;
  if ((fromOp === "today_plus") !== (toOp === "today_plus")) return null;
  if (toOp === "in") return Array.isArray(value) ? value : [value];
  if (fromOp === "in") return Array.isArray(value) && value.length ? value[0] : null;
  return value;
}

function sortRow(fields, item, onChange, onRemove, readOnly) {
  const fieldSel = fieldSelect(fields, item.field ?? (fields.list[0] || fields.system[0]).key);
  const dir = el("select", { class: "sort-dir", "aria-label": t("admin.f.sort") },
    el("option", { value: "asc" }, t("admin.enum.sort_dir.asc")), el("option", { value: "desc" }, t("admin.enum.sort_dir.desc")));
  dir.value = item.dir || "asc";
  fieldSel.disabled = readOnly; dir.disabled = readOnly;
  [fieldSel, dir].forEach((s) => s.addEventListener("change", onChange));
  const tr = el("tr", { class: "sortrow" }, el("td", {}, fieldSel), el("td", {}, dir), el("td", {}),
    el("td", { class: "row-tools" }, readOnly ? null : el("button", { type: "button", class: "small", onclick: () => onRemove(row) }, "✕")));
  const row = { tr, get() { const f = fields.find(fieldSel.value); return { field: f && !f.system ? f.id : fieldSel.value, dir: dir.value }; } };
  return row;
}

// a condition's error with the row it belongs to ("Условие 2: …"), not the field's path in the request
function condReason(e) {
  const m = /^(conditions|sort)\.(\d+)/.exec(String(e.field || ""));
  if (!m) return e.reason;
  return t(m[1] === "sort" ? "admin.sel.sort_n" : "admin.sel.cond_n", { n: Number(m[2]) + 1 }) + ": " + e.reason;
}

async function selectionsTab(panel, ctx) {
  const canWrite = Boolean(ctx.perms["selections.write"]);
  const fields = await campaignFields(ctx);
  const endpoint = `/api/campaigns/${ctx.id}/selections`;
  const left = el("div", { class: "sel-list" });
  const right = el("div", { class: "sel-editor" });
  panel.append(el("div", { class: "two-col" }, left, right));
  let current = null;
  const table = A.listTable(left, { endpoint, urlState: false, search: false, sort: "-priority", perPage: 25,
    columns: [
      { key: "name", label: "admin.f.name", sort: "name" },
      { key: "priority", label: "admin.f.priority", sort: "priority", className: "num" },
      { key: "is_active", label: "admin.f.is_active", render: "yesno" },
    ],
    rowClass: (row) => (current && current.id === row.id ? "current" : ""),
    open: (row) => edit(row),
    create: canWrite ? { label: t("admin.sel.new"), action: "new-selection", onClick: () => edit(null) } : null });
  right.append(el("p", { class: "muted" }, t("admin.sel.pick")));

  function edit(selection) {
    current = selection;
    table._render();
    const readOnly = !canWrite;
    const form = A.buildForm(SELECTION, ctx.refs, selection, { readOnly });
    const condBody = el("tbody");
    const sortBody = el("tbody");
    const conds = [];
    const sorts = [];
    const condError = el("div", { class: "form-error cond-error" });
    const match = el("div", { class: "match", "aria-live": "polite" }, t("admin.sel.counting"));
    let timer = null;
    let seq = 0;
    const changed = () => { clearTimeout(timer); match.classList.add("stale"); timer = setTimeout(count, 400); };
    const addCond = (c) => { const r = conditionRow(fields, ctx.selection.ops, c, changed, (row) => { conds.splice(conds.indexOf(row), 1); row.tr.remove(); changed(); }, readOnly); conds.push(r); condBody.append(r.tr); };
    const addSort = (s) => { const r = sortRow(fields, s, () => {}, (row) => { sorts.splice(sorts.indexOf(row), 1); row.tr.remove(); }, readOnly); sorts.push(r); sortBody.append(r.tr); };
    (selection ? selection.conditions : []).forEach(addCond);
    (selection ? selection.sort : []).forEach(addSort);
    form.node.addEventListener("input", changed);
    form.node.addEventListener("change", changed);

    function body() {
      const values = form.values();
      return { ...values, conditions: conds.map((r) => r.get()), sort: sorts.map((r) => r.get()) };
    }
    async function count() {
      const mine = ++seq;
      const b = body();
      try {
        const result = await api("POST", `${endpoint}/preview`, { conditions: b.conditions, max_attempts_per_day: b.max_attempts_per_day ?? null,
          max_attempts_total: b.max_attempts_total ?? null, pause_between_attempts_s: b.pause_between_attempts_s ?? null }, { quiet: true });
        if (mine !== seq) return;
        match.className = "match";
        match.replaceChildren(t("admin.sel.matching"), " ", el("b", { class: "match-count" }, result.matching), " ", t("admin.sel.of", { total: result.total }));
        condError.textContent = "";
      } catch (err) {
        if (mine !== seq) return;
        match.className = "match error";
        match.replaceChildren(err.errors.length ? err.errors.map(condReason).join("; ") : err.message);
      }
    }
    const buttons = el("div", { class: "form-actions" });
    if (!readOnly) {
      if (selection) {
        buttons.append(el("button", { type: "button", class: "danger left", "data-action": "delete-selection", onclick: async () => {
          if (!(await A.removeItem(endpoint, selection.id, selection.name))) return;
          current = null; right.replaceChildren(el("p", { class: "muted" }, t("admin.sel.pick"))); table.reload();
        } }, t("admin.delete")));
      }
      buttons.append(el("button", { type: "button", class: "primary", "data-action": "save-selection", onclick: async () => {
        condError.textContent = "";
        try {
          const saved = selection ? await api("PATCH", `${endpoint}/${selection.id}`, body(), { quiet: true })
            : await api("POST", endpoint, body(), { quiet: true });
          toast(t("admin.saved"), "ok");
          await table.reload();
          edit(saved);
        } catch (err) {
          form.showErrors({ ...err, errors: err.errors.filter((e) => !/^(conditions|sort)/.test(e.field)), message: err.errors.length ? "" : err.message });
          condError.textContent = err.errors.filter((e) => /^(conditions|sort)/.test(e.field)).map(condReason).join("; ");
        }
      } }, t("admin.save")));
    }
    right.replaceChildren(el("div", { class: "panel" },
      el("div", { class: "detail-head" }, el("h2", {}, selection ? selection.name : t("admin.sel.new")), el("span", { class: "spacer" }), match),
      form.node,
      el("h2", {}, t("admin.f.conditions")),
      el("table", { class: "conds" }, el("thead", {}, el("tr", {}, ["admin.sel.field", "admin.sel.op", "admin.sel.value", ""].map((k) => el("th", {}, k ? t(k) : "")))), condBody),
      readOnly ? null : el("button", { type: "button", class: "small", "data-action": "add-cond", onclick: () => { addCond({}); changed(); } }, "+ " + t("admin.sel.add_cond")),
      condError,
      el("h2", { class: "mt" }, t("admin.f.sort")),
      el("table", { class: "conds" }, sortBody),
      readOnly ? null : el("button", { type: "button", class: "small", "data-action": "add-sort", onclick: () => addSort({}) }, "+ " + t("admin.sel.add_sort")),
      buttons));
    count();
  }
}
