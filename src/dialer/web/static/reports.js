// The reports pages: the filter bar (kept in the URL), KPI tiles, Vega-Lite charts (vega-embed from npm, served at
// /reports/vendor/) and the report's tables from GET /api/reports/<name>/view. Every row with calls behind it opens
// the call list with that row's filter; a call opens its card (/supervisor/attempts/<id>).
import { api, t, el, toast, DataTable, fmtNumber, fmtDate, fmtDateTimeIn, fmtDuration } from "/static/app.js";

const FILTERS = ["period", "date_from", "date_to", "campaign_ids", "list_ids", "operator_ids", "pool_ids",
  "code_group_ids", "direction", "outcome", "dimension"];
const CATEGORIES = ["answered", "no_answer", "busy", "rejected", "abandoned", "error"];

/** The filter of the page's URL as query parameters (multi-selects as comma-separated ids). */
export function readFilter(search) {
  const params = new URLSearchParams(search);
  const out = {};
  for (const key of FILTERS) {
    const value = params.get(key);
    if (value) out[key] = value;
  }
  if (!out.period) out.period = "today";
  return out;
}

export function queryString(filter) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
  return qs.toString();
}

/** A cell's text by its column kind (see dialer/reports/tables.py). */
export function formatCell(value, kind, tz) {
  if (value === null || value === undefined || value === "") return "";
  switch (kind) {
    case "int": return fmtNumber(value, window.LANG);
    case "pct": return fmtNumber(value, window.LANG, { decimals: 2 });
    case "ms": return fmtDuration(Number(value) / 1000);
    case "date": return fmtDate(value, window.LANG);
    case "datetime": return fmtDateTimeIn(value, window.LANG, tz, { seconds: true });
    case "bool": return value ? t("reports.yes") : t("reports.no");
    default: return String(value);
  }
}

function fillForm(form, filter) {
  for (const key of FILTERS) {
    const field = form.elements[key];
    if (!field) continue;
    if (field.multiple) {
      const wanted = new Set((filter[key] || "").split(",").filter(Boolean));
      for (const option of field.options) option.selected = wanted.has(option.value);
      field.dataset.wanted = filter[key] || "";
    } else if (filter[key] !== undefined) {
      field.value = filter[key];
    }
  }
  toggleDates(form);
}

function toggleDates(form) {
  const custom = form.elements.period.value === "custom";
  for (const label of form.querySelectorAll(".rep-dates")) label.hidden = !custom;
}

function formFilter(form) {
  const out = {};
  for (const key of FILTERS) {
    const field = form.elements[key];
    if (!field) continue;
    if (field.multiple) {
      const ids = [...field.selectedOptions].map((o) => o.value);
      if (ids.length) out[key] = ids.join(",");
    } else if (field.value && !(field.closest(".rep-dates")?.hidden)) {
      out[key] = field.value;
    }
  }
  return out;
}

async function loadOptions(form) {
  for (const select of form.querySelectorAll("select[data-source]")) {
    try {
      const page = await api("GET", select.dataset.source, null, { quiet: true, query: { per_page: 200, sort: "name" } });
      const wanted = new Set((select.dataset.wanted || "").split(",").filter(Boolean));
      for (const item of page.items) {
        select.append(el("option", { value: item.id, selected: wanted.has(String(item.id)) }, item.name));
      }
      select.size = Math.min(4, Math.max(2, page.items.length));
    } catch (err) {
      select.closest("label").hidden = true;  // the user may not read that list: the filter is not offered
    }
  }
}

function callsHref(filter, extra) {
  const merged = { ...filter, ...extra };
  delete merged.dimension;
  return "/reports/calls?" + queryString(merged);
}

function tile(label, value, note, href, warn) {
  const body = [el("div", { class: "rep-tile-label" }, label), el("div", { class: "rep-tile-value" }, value),
    note ? el("div", { class: "rep-tile-note" }, note) : null];
  return href ? el("a", { class: "rep-tile" + (warn ? " warn" : ""), href }, body)
    : el("div", { class: "rep-tile" + (warn ? " warn" : "") }, body);
}

function renderKpi(box, report, filter) {
  const k = report.kpi;
  const pct = (v) => fmtNumber(v, window.LANG, { decimals: 2 }) + "%";
  const n = (v) => fmtNumber(v, window.LANG);
  const over = k.abandon_cap !== null && k.abandon_rate > k.abandon_cap;
  box.replaceChildren(
    tile(t("reports.kpi.attempts"), n(k.attempts), null, callsHref(filter, {})),
    tile(t("reports.kpi.reached"), n(k.reached_contacts), null, callsHref(filter, { outcome: "answered" })),
    tile(t("reports.kpi.answer_rate"), pct(k.answer_rate), `${n(k.answered)} / ${n(k.attempts)}`,
      callsHref(filter, { outcome: "answered" })),
    tile(t("reports.kpi.abandon_rate"), pct(k.abandon_rate),
      `${n(k.abandoned)} / ${n(k.live_answers)}` + (k.abandon_cap !== null ? " · " + t("reports.kpi.abandon_cap", { cap: k.abandon_cap }) : ""),
      callsHref(filter, { outcome: "abandoned" }), over),
    tile(t("reports.kpi.talk"), fmtDuration(k.talk_ms / 1000), null, null),
    tile(t("reports.kpi.aht"), fmtDuration(k.aht_ms / 1000), null, null),
    tile(t("reports.kpi.conversion"), pct(k.conversion), `${n(k.successful)} / ${n(k.answered)}`, null),
    tile(t("reports.kpi.transferred"), n(k.transferred ?? 0), null, null),
    el("div", { class: "rep-categories" }, CATEGORIES.map((c) => el("a", {
      class: `rep-cat oc-${c}`, href: callsHref(filter, { outcome: c }), "data-outcome": c },
      el("span", { class: "dot" }), t(`outcome.${c}`), " ", el("b", {}, n(report.categories[c]))))),
  );
}

async function renderCharts(box, charts) {
  box.replaceChildren();
  if (!window.vegaEmbed) return;
  for (const chart of charts) {
    const target = el("div", { class: "rep-chart-body" });
    box.append(el("figure", { class: "rep-chart", "data-chart": chart.key }, el("figcaption", {}, chart.title), target));
    const spec = { ...chart.spec, width: "container", autosize: { type: "fit", contains: "padding" } };
    await window.vegaEmbed(target, spec, { actions: false, renderer: "svg" });
  }
}

function renderTable(table, filter, tz) {
  const categoryCols = new Set(CATEGORIES);
  const head = el("tr", {}, table.columns.map((c) => el("th", { class: c.kind === "text" ? "" : "num" }, c.label)));
  const rows = table.rows.map((row, i) => {
    const drill = table.drill[i];
    return el("tr", { class: drill ? "drill" : "" }, row.map((value, j) => {
      const col = table.columns[j];
      const text = formatCell(value, col.kind, tz);
      let content = text;
      if (drill && j === 0) content = el("a", { href: callsHref(filter, drill), title: t("reports.drill") }, text);
      else if (drill && categoryCols.has(col.key) && value) {
        content = el("a", { href: callsHref(filter, { ...drill, outcome: col.key }) }, text);
      }
      return el("td", { class: col.kind === "text" || col.kind === "date" || col.kind === "datetime" ? "" : "num" }, content);
    }));
  });
  const foot = table.totals ? el("tfoot", {}, el("tr", {}, table.totals.map((v, j) =>
    el("td", { class: table.columns[j].kind === "text" ? "" : "num" },
      j === 0 && (v === null || v === undefined) ? t("reports.totals") : formatCell(v, table.columns[j].kind, tz))))) : null;
  return el("section", { class: "rep-table", "data-table": table.key },
    el("h2", {}, table.title),
    table.rows.length ? el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, rows), foot)
      : el("p", { class: "muted" }, t("reports.empty")));
}

function renderCalls(box, filter, cards) {
  const tz = undefined;
  box.replaceChildren();
  const holder = el("div");
  box.append(holder);
  const col = (key, render, sort) => ({ key, label: `reports.col.${key}`, render, sort });
  const when = (v) => (v ? fmtDateTimeIn(v, window.LANG, tz, { seconds: true }) : "");
  const query = { ...filter };
  delete query.dimension;
  new DataTable(holder, {
    endpoint: "/api/reports/calls",
    search: false,
    urlState: false,
    sort: "-id",
    filters: query,
    columns: [
      col("id", (v) => (cards ? el("a", { href: `/supervisor/attempts/${v}` }, String(v)) : String(v)), "id"),
      col("queued_at", when, "queued_at"),
      col("direction", (v) => (v ? t(`reports.direction.${v}`) : ""), "direction"),
      col("campaign", null, "campaign"),
      col("list"),
      col("operator", null, "operator"),
      col("number", null, "number"),
      col("caller_id"),
      col("outcome", (v) => (v ? el("span", { class: `rep-cat oc-${v}` }, el("span", { class: "dot" }), t(`outcome.${v}`)) : ""), "outcome"),
      col("code"),
      col("dialed_at", when), col("ringing_at", when), col("answered_at", when), col("connected_at", when),
      col("hung_up_at", when), col("wrap_up_ended_at", when),
      { key: "talk_ms", label: "reports.col.talk", render: (v) => (v === null ? "" : fmtDuration(v / 1000)), sort: "talk_ms" },
      col("hangup_cause"),
    ],
    onRowClick: cards ? (row) => location.assign(`/supervisor/attempts/${row.id}`) : undefined,
  });
}

/** The ClickHouse copy's line (shown only when the copy is on): rows waiting, the oldest one's age, the last
 * error. */
export function clickhouseLine(status) {
  if (!status || status.mode === "off") return "";
  let text = `${t("reports.clickhouse.title")} (${status.mode}): ` + t("reports.clickhouse.lag")
    .replace("{pending}", fmtNumber(status.pending, window.LANG))
    .replace("{age}", fmtNumber(Math.round(status.lag_s), window.LANG))
    .replace("{copied}", fmtNumber(status.copied_rows, window.LANG));
  if (status.last_error) text += "; " + t("reports.clickhouse.error").replace("{error}", status.last_error);
  return text;
}

async function showClickhouse() {
  const box = document.getElementById("rep-clickhouse");
  if (!box) return;
  const status = await api("GET", "/api/reports/clickhouse", null, { quiet: true }).catch(() => null);
  const text = clickhouseLine(status);
  box.textContent = text;
  box.hidden = !text;
  if (status && status.last_error) box.classList.add("rep-warning");
}

// Saved views: the user's named filters of this report; the default one opens when the address has no filter.
async function setUpViews(name, form, apply) {
  const select = document.getElementById("rep-view-select");
  const nameBox = document.getElementById("rep-view-name");
  const isDefault = document.getElementById("rep-view-default");
  const remove = document.getElementById("rep-view-delete");
  let views = [];
  const refresh = async (selected) => {
    views = await api("GET", "/api/reports/views", null, { query: { report: name } });
    select.replaceChildren(el("option", { value: "" }, t("reports.view.none")),
      ...views.map((v) => el("option", { value: v.id, selected: v.id === selected }, v.name + (v.is_default ? " ★" : ""))));
    remove.hidden = !select.value;
  };
  select.addEventListener("change", () => {
    remove.hidden = !select.value;
    const view = views.find((v) => String(v.id) === select.value);
    if (view) { nameBox.value = view.name; isDefault.checked = view.is_default; apply(view.query); }
  });
  document.getElementById("rep-view-save").addEventListener("click", async () => {
    const label = nameBox.value.trim();
    if (!label) { nameBox.focus(); return; }
    const body = { report: name, name: label, query: formFilter(form), is_default: isDefault.checked };
    const existing = views.find((v) => v.name === label);
    const saved = existing ? await api("PUT", `/api/reports/views/${existing.id}`, body)
      : await api("POST", "/api/reports/views", body);
    await refresh(saved.id);
    toast(t("reports.view.saved", { name: saved.name }), "ok");
  });
  remove.addEventListener("click", async () => {
    if (!select.value) return;
    await api("DELETE", `/api/reports/views/${select.value}`);
    nameBox.value = "";
    await refresh(null);
  });
  await refresh(null);
  return views.find((v) => v.is_default) || null;
}

export async function start(root) {
  const name = root.dataset.report;
  const cards = root.dataset.cards === "true";
  const form = document.getElementById("rep-filter");
  const filter = readFilter(location.search);
  fillForm(form, filter);
  form.elements.period.addEventListener("change", () => toggleDates(form));
  document.getElementById("rep-print").addEventListener("click", () => window.print());
  showClickhouse();
  const exports = document.getElementById("rep-exports");
  const exportBase = name === "calls" ? "/api/reports/calls/export" : `/api/reports/${name}/export`;
  const setLinks = (f) => {
    for (const a of exports.querySelectorAll("a[data-format]")) {
      const q = { ...f, format: a.dataset.format };
      if (name !== "outcomes") delete q.dimension;
      a.href = `${exportBase}?${queryString(q)}`;
    }
  };
  const tables = document.getElementById("rep-tables");
  const load = async (f) => {
    setLinks(f);
    if (name === "calls") { renderCalls(tables, f, cards); root.dataset.loaded = "true"; return; }
    tables.textContent = t("common.loading");
    const query = { ...f };
    delete query.dimension;
    const view = await api("GET", `/api/reports/${name}/view?${queryString(query)}`);
    if (name === "outcomes") renderKpi(document.getElementById("rep-kpi"), view.report, f);
    const parts = view.tables.filter((tb) => !(name === "outcomes" && tb.key === "kpi"));
    tables.replaceChildren(...parts.map((tb) => renderTable(tb, f, view.applied.tz)));
    if (name === "outcomes") {
      const dimension = f.dimension || "caller_id";
      const slice = await api("GET", `/api/reports/slices/view?${queryString({ ...query, dimension })}`);
      tables.append(...slice.tables.map((tb) => renderTable(tb, f, view.applied.tz)));
    }
    await renderCharts(document.getElementById("rep-charts"), view.charts);
    root.dataset.loaded = "true";
  };
  // A refused filter (a custom period without its dates ...) is said on the page, which keeps the filter bar.
  const show = (f) => load(f).catch((err) => {
    tables.replaceChildren(el("p", { class: "rep-warning", role: "alert" }, err.message));
    root.dataset.loaded = "error";
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = formFilter(form);
    history.replaceState(null, "", `${location.pathname}?${queryString(f)}`);
    show(f);
  });
  const applyView = (query) => {
    const f = { period: "today", ...query };
    fillForm(form, f);
    history.replaceState(null, "", `${location.pathname}?${queryString(f)}`);
    show(f);
  };
  const fallback = await setUpViews(name, form, applyView).catch(() => null);
  await loadOptions(form);
  if (fallback && !location.search) {
    document.getElementById("rep-view-select").value = String(fallback.id);
    applyView(fallback.query);
    return;
  }
  await show(filter);
  if (name === "calls") root.dataset.loaded = "true";
}
