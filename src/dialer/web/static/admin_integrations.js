// Integrations (/admin/integrations): CRM connectors and their status mapping, webhooks, the integration API's
// allow-list; and "Отладка взаимодействия" (/admin/integrations/debug): test events, backlog, dead letters, the last
// requests. Config: {view, can_write, can_lists, events, kinds}. Everything goes through the JSON API.
const A = await import(document.querySelector('link[rel=modulepreload][href*="/static/admin.js"]').href);
const { api, el, t, toast, fmtDateTime } = A.app;

const ACTIONS = ["call", "postpone", "leave", "final"];
const OUTCOMES = ["answered", "no_answer", "busy", "rejected", "abandoned", "error"];

function pill(ok, text) {
  return el("span", { class: `pill ${ok ? "tk-up" : "tk-down"}` }, text);
}

function table(headers, rows, cls = "") {
  return el("table", { class: `data ${cls}` },
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, t(h))))),
    el("tbody", {}, ...rows));
}

function field(label, input) {
  return el("label", { class: "field" }, el("span", {}, t(label)), input);
}

function jsonArea(name, value) {
  return el("textarea", { name, rows: 6, class: "mono" }, JSON.stringify(value ?? {}, null, 2));
}

function parseJson(area, label) {
  try {
    return JSON.parse(area.value || "{}");
  } catch (err) {
    toast(t("int.bad_json", { field: t(label), error: err.message }), "error");
    throw err;
  }
}

// --- connectors ------------------------------------------------------------------------------------------------

async function connectorsSection(root, config) {
  const box = el("div", { class: "panel int-connectors" }, el("h2", {}, t("int.connectors")));
  root.append(box);
  const holder = el("div");
  const editor = el("div", { class: "int-editor" });
  box.append(holder, editor);
  let lists = [];
  if (config.can_lists) {
    try { lists = (await api("GET", "/api/lists", null, { query: { per_page: 200 }, quiet: true })).items; } catch { lists = []; }
  }
  let codes = [];
  if (config.can_codes) {
    try { codes = (await api("GET", "/api/completion-codes", null, { query: { per_page: 500, sort: "name" }, quiet: true })).items; } catch { codes = []; }
  }

  async function reload() {
    const page = await api("GET", "/api/crm-connectors", null, { query: { per_page: 100, sort: "name" } });
    const rows = page.items.map((c) => el("tr", { "data-id": c.id },
      el("td", {}, el("a", { href: "#", "data-action": "edit-connector", onclick: (e) => { e.preventDefault(); edit(c); } }, c.name)),
      el("td", {}, t(`int.kind.${c.kind}`)),
      el("td", {}, pill(c.read_enabled, t(c.read_enabled ? "int.on" : "int.off")), " ", pill(c.write_enabled, t(c.write_enabled ? "int.on" : "int.off"))),
      el("td", {}, c.last_read_at ? fmtDateTime(c.last_read_at) : "—"),
      el("td", { class: "muted" }, c.last_error || "")));
    holder.replaceChildren(rows.length ? table(["int.name", "int.kind", "int.read_write", "int.last_read", "int.last_error"], rows, "int-connector-list")
      : el("p", { class: "muted" }, t("int.no_connectors")));
    if (config.can_write) holder.append(el("button", { type: "button", class: "primary", "data-action": "new-connector", onclick: () => edit(null) }, t("int.add_connector")));
  }

  function edit(c) {
    const item = c || { name: "", kind: "leadvertex", settings: {}, list_id: null, read_enabled: false, write_enabled: true,
      poll_interval_s: 60, status_map: {}, result_map: {}, max_tries: 12, is_active: true };
    const name = el("input", { type: "text", name: "name", value: item.name, required: true });
    const kind = el("select", { name: "kind", disabled: c ? true : null }, ...config.kinds.map((k) => el("option", { value: k, selected: k === item.kind ? true : null }, t(`int.kind.${k}`))));
    const token = el("input", { type: "password", name: "token", autocomplete: "new-password", placeholder: c && c.has_token ? t("int.token_set") : "" });
    const list = el("select", { name: "list_id" }, el("option", { value: "" }, "—"),
      ...lists.map((l) => el("option", { value: l.id, selected: l.id === item.list_id ? true : null }, l.name)));
    const read = el("input", { type: "checkbox", name: "read_enabled", checked: item.read_enabled ? true : null });
    const write = el("input", { type: "checkbox", name: "write_enabled", checked: item.write_enabled ? true : null });
    const poll = el("input", { type: "number", name: "poll_interval_s", min: 5, max: 86400, value: item.poll_interval_s });
    const tries = el("input", { type: "number", name: "max_tries", min: 1, max: 100, value: item.max_tries });
    const settings = jsonArea("settings", item.settings);
    const mapping = el("div", { class: "int-status-map" });
    const statusMap = structuredClone(item.status_map || {});
    const resultMap = structuredClone(item.result_map || {});
    const results = el("div", { class: "int-result-map" });
    const known = el("datalist", { id: "int-crm-statuses" });

    function drawResults() {
      known.replaceChildren(...Object.entries(statusMap).map(([id, r]) => el("option", { value: id }, r.name || id)));
      const rows = [["exhausted", t("int.res.exhausted")],
        ...OUTCOMES.map((o) => [`final:${o}`, t("int.res.final", { outcome: t(`outcome.${o}`) })]),
        ...OUTCOMES.map((o) => [`category:${o}`, t("int.res.category", { outcome: t(`outcome.${o}`) })]),
        ...codes.map((c) => [`code:${c.id}`, t("int.res.code", { code: c.name })])];
      results.replaceChildren(known, table(["int.result", "int.crm_status"], rows.map(([key, label]) => el("tr", {},
        el("td", {}, label),
        el("td", {}, el("input", { type: "text", list: "int-crm-statuses", size: 12, "data-key": key, value: resultMap[key] ?? "",
          disabled: config.can_write ? null : true, oninput: (e) => {
            const v = e.target.value.trim();
            if (v) resultMap[key] = v; else delete resultMap[key];
          } }))))));
    }

    function drawMapping(names) {
      const ids = [...new Set([...Object.keys(names || {}), ...Object.keys(statusMap)])];
      if (!ids.length) { mapping.replaceChildren(el("p", { class: "muted" }, t("int.no_statuses"))); drawResults(); return; }
      mapping.replaceChildren(table(["int.crm_status", "int.action"], ids.map((id) => {
        const rule = statusMap[id] || { action: "leave", name: (names || {})[id] || "" };
        if (names && names[id]) rule.name = names[id];
        statusMap[id] = rule;
        const sel = el("select", { name: `action-${id}`, "data-status": id, onchange: () => { statusMap[id].action = sel.value; } },
          ...ACTIONS.map((a) => el("option", { value: a, selected: a === rule.action ? true : null }, t(`int.action.${a}`))));
        return el("tr", {}, el("td", {}, `${rule.name || id} (${id})`), el("td", {}, sel));
      })));
      drawResults();
    }
    drawMapping(null);

    const loadStatuses = el("button", { type: "button", "data-action": "load-statuses", disabled: c ? null : true, onclick: async () => {
      drawMapping(await api("GET", `/api/crm-connectors/${c.id}/statuses`));
    } }, t("int.load_statuses"));
    const readNow = el("button", { type: "button", "data-action": "read-now", disabled: c && c.list_id ? null : true, onclick: async () => {
      const r = await api("POST", `/api/crm-connectors/${c.id}/read`);
      toast(t("int.read_done", { read: r.read, created: r.created, updated: r.updated, refused: r.refused.length }));
      reload();
    } }, t("int.read_now"));
    const save = el("button", { type: "button", class: "primary", "data-action": "save-connector", onclick: async () => {
      const body = { name: name.value.trim(), settings: parseJson(settings, "int.settings"), list_id: list.value ? Number(list.value) : null,
        read_enabled: read.checked, write_enabled: write.checked, poll_interval_s: Number(poll.value), max_tries: Number(tries.value),
        status_map: statusMap, result_map: resultMap };
      if (token.value) body.token = token.value;
      try {
        const saved = c ? await api("PATCH", `/api/crm-connectors/${c.id}`, body) : await api("POST", "/api/crm-connectors", { ...body, kind: kind.value });
        toast(t("int.saved"));
        await reload();
        edit(saved);
      } catch { /* the problem is shown */ }
    } }, t("admin.save"));
    const disabled = !config.can_write;
    for (const input of [name, token, list, read, write, poll, tries, settings]) if (disabled) input.disabled = true;
    editor.replaceChildren(el("div", { class: "panel", "data-connector": c ? c.id : "new" },
      el("h3", {}, c ? c.name : t("int.add_connector")),
      el("div", { class: "form-grid" }, field("int.name", name), field("int.kind", kind), field("int.token", token), field("int.list", list),
        field("int.read", read), field("int.write", write), field("int.poll", poll), field("int.max_tries", tries)),
      field("int.settings", settings), el("p", { class: "muted" }, t("int.settings_hint")),
      el("h3", {}, t("int.status_mapping")), el("p", { class: "muted" }, t("int.status_mapping_hint")), mapping,
      el("div", { class: "form-actions" }, loadStatuses),
      el("h3", {}, t("int.result_mapping")), el("p", { class: "muted" }, t("int.result_mapping_hint")), results,
      config.can_write ? el("div", { class: "form-actions" }, save, readNow) : null));
  }
  await reload();
}

// --- webhooks --------------------------------------------------------------------------------------------------

async function webhooksSection(root, config) {
  const box = el("div", { class: "panel int-webhooks" }, el("h2", {}, t("int.webhooks")), el("p", { class: "muted" }, t("int.sign_hint")));
  root.append(box);
  const holder = el("div");
  box.append(holder);

  async function reload() {
    const page = await api("GET", "/api/webhooks", null, { query: { per_page: 100, sort: "name" } });
    holder.replaceChildren(...page.items.map((s) => card(s)));
    if (config.can_write) holder.append(card(null));
  }

  function card(s) {
    const item = s || { name: "", url: "https://", events: [], is_active: true, max_tries: 12 };
    const name = el("input", { type: "text", name: "name", value: item.name });
    const url = el("input", { type: "url", name: "url", value: item.url, size: 50 });
    const active = el("input", { type: "checkbox", name: "is_active", checked: item.is_active ? true : null });
    const boxes = config.events.map((e) => el("label", { class: "check" },
      el("input", { type: "checkbox", name: "event", value: e, checked: item.events.includes(e) ? true : null }), " ", t(`int.event.${e}`)));
    const keyView = s ? el("div", { class: "int-keys" },
      el("div", {}, t("int.client_id"), ": ", el("code", { "data-field": "client_id" }, s.client_id)),
      el("div", {}, t("int.secret"), ": ", el("code", { "data-field": "secret" }, s.secret))) : null;
    const actions = config.can_write ? el("div", { class: "form-actions" },
      el("button", { type: "button", class: "primary", "data-action": "save-webhook", onclick: async () => {
        const body = { name: name.value.trim(), url: url.value.trim(), is_active: active.checked,
          events: boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value) };
        try {
          if (s) await api("PATCH", `/api/webhooks/${s.id}`, body); else await api("POST", "/api/webhooks", body);
          toast(t("int.saved"));
          reload();
        } catch { /* shown */ }
      } }, s ? t("admin.save") : t("int.add_webhook")),
      s ? el("button", { type: "button", "data-action": "regenerate-key", onclick: async () => {
        if (!(await A.confirmDialog(t("int.regenerate_confirm"), t("int.regenerate")))) return;
        const r = await api("POST", `/api/webhooks/${s.id}/regenerate-key`);
        keyView.querySelector("[data-field=secret]").textContent = r.secret;
        toast(t("int.regenerated"));
      } }, t("int.regenerate")) : null,
      s ? el("button", { type: "button", "data-action": "send-test", onclick: async () => {
        const r = await api("POST", `/api/webhooks/${s.id}/test`);
        toast(t("int.test_queued", { id: r.outbox_id }));
      } }, t("int.send_test")) : null,
      s ? el("button", { type: "button", class: "danger", "data-action": "delete-webhook", onclick: async () => {
        if (!(await A.confirmDialog(t("int.delete_confirm", { name: s.name })))) return;
        await api("DELETE", `/api/webhooks/${s.id}`);
        reload();
      } }, t("admin.delete")) : null) : null;
    return el("div", { class: "panel int-webhook", "data-webhook": s ? s.id : "new" },
      el("h3", {}, s ? s.name : t("int.add_webhook")),
      el("div", { class: "form-grid" }, field("int.name", name), field("int.url", url), field("int.active", active)),
      el("div", { class: "int-events" }, el("span", {}, t("int.events")), ...boxes), keyView, actions);
  }
  await reload();
}

// --- allow-list ------------------------------------------------------------------------------------------------

async function allowSection(root, config) {
  const box = el("div", { class: "panel int-allow" }, el("h2", {}, t("int.allow")), el("p", { class: "muted" }, t("int.allow_hint")));
  root.append(box);
  const holder = el("div");
  box.append(holder);
  async function reload() {
    const page = await api("GET", "/api/integration-allow", null, { query: { per_page: 200, sort: "cidr" } });
    holder.replaceChildren(page.items.length ? table(["int.cidr", "int.comment", ""], page.items.map((a) => el("tr", {},
      el("td", {}, el("code", {}, a.cidr)), el("td", {}, a.comment),
      el("td", {}, config.can_write ? el("button", { type: "button", class: "danger", "data-action": "remove-allow", onclick: async () => {
        await api("DELETE", `/api/integration-allow/${a.id}`);
        reload();
      } }, t("admin.delete")) : "")))) : el("p", { class: "muted" }, t("int.allow_empty")));
    if (config.can_write) {
      const cidr = el("input", { type: "text", name: "cidr", placeholder: "192.168.0.0/24" });
      const comment = el("input", { type: "text", name: "comment", placeholder: t("int.comment") });
      holder.append(el("div", { class: "opts row" }, cidr, comment, el("button", { type: "button", "data-action": "add-allow", onclick: async () => {
        try { await api("POST", "/api/integration-allow", { cidr: cidr.value.trim(), comment: comment.value }); reload(); } catch { /* shown */ }
      } }, t("int.add_allow"))));
    }
  }
  await reload();
}

// --- debug -----------------------------------------------------------------------------------------------------

async function debugPage(root, config) {
  const backlog = el("div", { class: "panel int-backlog" });
  const dead = el("div", { class: "panel int-dead" });
  const requests = el("div", { class: "panel int-requests" });
  const tests = el("div", { class: "panel int-tests" });
  root.append(el("p", {}, el("a", { href: "/admin/integrations" }, t("nav.admin.integrations"))), tests, backlog, dead, requests);

  const subs = (await api("GET", "/api/webhooks", null, { query: { per_page: 100, sort: "name" } })).items;
  tests.append(el("h2", {}, t("int.send_test")), subs.length ? el("div", { class: "opts row" }, ...subs.map((s) =>
    el("button", { type: "button", "data-action": "send-test", "data-webhook": s.id, disabled: config.can_write ? null : true, onclick: async () => {
      const r = await api("POST", `/api/webhooks/${s.id}/test`);
      toast(t("int.test_queued", { id: r.outbox_id }));
      setTimeout(later, 1500);
    } }, s.name))) : el("p", { class: "muted" }, t("int.no_webhooks")));

  async function refresh() {
    const b = await api("GET", "/api/integration/backlog", null, { quiet: true });
    backlog.replaceChildren(el("h2", {}, t("int.backlog")),
      el("p", { "data-field": "totals" }, t("int.backlog_totals", { pending: b.pending, dead: b.dead })),
      b.targets.length ? table(["int.target", "int.pending", "int.dead", "int.oldest"], b.targets.map((x) => el("tr", {},
        el("td", {}, x.name || "—"), el("td", {}, String(x.pending)), el("td", {}, String(x.dead)),
        el("td", {}, x.oldest_pending_s == null ? "—" : t("int.seconds", { n: Math.round(x.oldest_pending_s) }))))) : null);

    const d = await api("GET", "/api/integration/outbox", null, { query: { status: "dead", per_page: 50 }, quiet: true });
    const picked = new Set();
    const replay = el("button", { type: "button", class: "primary", "data-action": "replay", disabled: true, onclick: async () => {
      const r = await api("POST", "/api/integration/outbox/replay", { ids: [...picked] });
      toast(t("int.replayed", { n: r.replayed }));
      setTimeout(later, 1000);
    } }, t("int.replay"));
    dead.replaceChildren(el("h2", {}, t("int.dead_letters")), d.items.length ? table(["", "int.id", "int.event", "int.record", "int.tries", "int.error", "int.created"],
      d.items.map((x) => el("tr", { "data-id": x.id },
        el("td", {}, el("input", { type: "checkbox", name: "pick", value: x.id, disabled: config.can_write ? null : true, onchange: (e) => {
          if (e.target.checked) picked.add(x.id); else picked.delete(x.id);
          replay.disabled = !picked.size;
        } })),
        el("td", {}, String(x.id)), el("td", {}, x.event), el("td", {}, x.record_key), el("td", {}, String(x.tries)),
        el("td", { class: "muted" }, x.last_error), el("td", {}, fmtDateTime(x.created_at))))) : el("p", { class: "muted" }, t("int.no_dead")),
    config.can_write && d.items.length ? el("div", { class: "form-actions" }, replay) : null);

    const r = await api("GET", "/api/integration/requests", null, { query: { limit: 50 }, quiet: true });
    requests.replaceChildren(el("h2", {}, t("int.requests")), r.length ? table(["int.time", "int.target", "int.request", "int.status", "int.duration", "int.answer"],
      r.map((x) => el("tr", { "data-id": x.id },
        el("td", {}, fmtDateTime(x.at)), el("td", {}, x.target), el("td", { class: "mono", title: x.request }, `${x.method} ${x.url}`),
        el("td", {}, x.status == null ? pill(false, x.error || "—") : pill(x.status < 300, String(x.status))),
        el("td", {}, t("int.ms", { n: Math.round(x.duration_ms) })),
        el("td", { class: "mono muted", title: x.response }, (x.response || x.error || "").slice(0, 120)))), "int-requests-table")
      : el("p", { class: "muted" }, t("int.no_requests")));
  }
  // a refresh that fails (the server restarting) shows nothing and waits for the next one
  function later() { refresh().catch(() => {}); }
  await refresh();
  setInterval(later, 5000);
}

export async function integrationsPage(root, config) {
  if (config.view === "debug") {
    await debugPage(root, config);
    return;
  }
  root.append(el("p", {}, el("a", { href: "/admin/integrations/debug", "data-action": "open-debug" }, t("int.debug.title"))));
  await connectorsSection(root, config);
  await webhooksSection(root, config);
  await allowSection(root, config);
}
