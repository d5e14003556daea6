// Dialer browser helpers: one ES module, no build step. Import what you need in a page:
//
//   import { api, live, t, el, toast, fmtDuration, fmtDateTime, DataTable } from "/static/app.js";
//
// t(msgid, params)           translate with window.I18N (the page's catalogue, injected by base.html);
//                            "{name}" placeholders are filled from params; a missing id shows the id itself.
// api(method, path, body, opts) -> Promise<JSON|null>
//                            fetch JSON with the session cookie and the CSRF token (<meta name="csrf-token">).
//                            Errors are RFC 9457 problem details: rejects with ApiError {status, title, detail,
//                            errors:[{field, reason}], problem}; its message is readable. Unless opts.quiet, the
//                            error is also shown as a toast, and a 401 sends the browser to the login page.
//                            opts.query: object of query parameters (undefined/null/"" are left out).
// live(topics, onEvent, {onReconnect, onState}) -> {close()}
//                            Server-Sent Events from /live/events (see dialer/web/live.py for the message shapes).
//                            topics: ["operators", "calls", "campaigns", "engine"] or event type names; [] = all.
//                            onEvent(event) gets every engine event; onReconnect() is called whenever events may
//                            have been missed (stream re-opened, server listener reconnected, buffer overflow):
//                            re-fetch the state you show. onState("online"|"offline") for an indicator.
// fmtDuration(seconds)       "0:07", "12:30", "1:02:03".   fmtDateTime(iso) -> local "dd.mm.yyyy hh:mm:ss".
// fmtNumber, fmtDate, fmtDateTimeIn, fmtFieldValue, naturalCompare: values as the UI's language writes them
//                            ("12 345,67", "25.12.2026"), from format.js (its header is their reference).
// el(tag, attrs, ...children) DOM builder: el("button", {class: "primary", onclick: fn}, t("x")); attrs "class",
//                            "dataset" (object), "style" (object), on* (listeners), others as attributes;
//                            children are nodes, strings, numbers or arrays; null/false are skipped.
// toast(message, kind="info"|"ok"|"error", ms=4000)
// new DataTable(container, options) -- a sortable, searchable, paginated table over a list endpoint; see below.

import { fmtNumber, fmtDate, fmtDateTimeIn, fmtFieldValue, naturalCompare, idleText } from "./format.js";

export { fmtNumber, fmtDate, fmtDateTimeIn, fmtFieldValue, naturalCompare, idleText };

export function t(msgid, params) {
  const catalogue = window.I18N || {};
  let text = Object.prototype.hasOwnProperty.call(catalogue, msgid) ? catalogue[msgid] : msgid;
  if (params) text = text.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
  return text;
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export class ApiError extends Error {
  constructor(status, problem) {
    const detail = (problem && (problem.detail || problem.title)) || t("error.generic", { status });
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem || {};
    this.title = this.problem.title || "";
    this.detail = this.problem.detail || detail;
    this.errors = Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

export function loginUrl() {
  return "/login?next=" + encodeURIComponent(location.pathname + location.search);
}

export async function api(method, path, body, opts = {}) {
  const headers = { Accept: "application/json, application/problem+json" };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined && body !== null) {
    if (body instanceof FormData) {
      init.body = body;
    } else {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  if (!["GET", "HEAD", "OPTIONS"].includes(method.toUpperCase())) headers["X-CSRF-Token"] = csrfToken();
  let url = path;
  if (opts.query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) {
      if (v === undefined || v === null || v === "") continue;
      for (const one of Array.isArray(v) ? v : [v]) qs.append(k, String(one));
    }
    const s = qs.toString();
    if (s) url += (url.includes("?") ? "&" : "?") + s;
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    const error = new ApiError(0, { title: t("error.network"), detail: t("error.network") });
    if (!opts.quiet) toast(error.message, "error");
    throw error;
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (response.ok) return data;
  const error = new ApiError(response.status, data && typeof data === "object" ? data : null);
  if (!opts.quiet) {
    if (response.status === 401) {
      toast(t("error.session"), "error");
      setTimeout(() => location.assign(loginUrl()), 800);
    } else {
      toast(error.message, "error");
    }
  }
  throw error;
}

export function live(topics, onEvent, { onReconnect = () => {}, onState = () => {} } = {}) {
  const qs = topics && topics.length ? "?topics=" + encodeURIComponent(topics.join(",")) : "";
  let source = null;
  let greeted = false;
  let closed = false;
  let retry = null;
  let delay = 1000;

  function open() {
    source = new EventSource("/live/events" + qs);
    source.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      if (event.type === "Hello") {
        delay = 1000;
        onState("online");
        if (greeted) onReconnect();
        greeted = true;
        return;
      }
      if (event.type === "ListenerReconnected" || event.type === "Resync") { onReconnect(); return; }
      onEvent(event);
    };
    source.onerror = () => {
      onState("offline");
      // The browser retries by itself after a network error; after a refusal (401/403/5xx) the source is CLOSED.
      if (source.readyState === EventSource.CLOSED && !closed) {
        clearTimeout(retry);
        retry = setTimeout(open, delay);
        delay = Math.min(delay * 2, 15000);
      }
    };
  }
  open();
  return {
    close() { closed = true; clearTimeout(retry); if (source) source.close(); },
    get connected() { return source !== null && source.readyState === EventSource.OPEN && greeted; },
  };
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return "";
  const s = Math.max(0, Math.floor(Number(seconds)));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(r)}` : `${m}:${pad(r)}`;
}

export function fmtDateTime(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(window.LANG === "en" ? "en-GB" : "ru-RU");
}

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(node.style, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  const add = (child) => {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(add);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  };
  children.forEach(add);
  return node;
}

export function toast(message, kind = "info", ms = 4000) {
  let box = document.getElementById("toasts");
  if (!box) { box = el("div", { id: "toasts" }); document.body.append(box); }
  const node = el("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  box.append(node);
  setTimeout(() => node.remove(), ms);
  return node;
}

// ---- DataTable ------------------------------------------------------------------------------------------------
// A table over a list endpoint of the API (api/crud.py): GET endpoint?page=1&per_page=50&sort=-name,id&q=text&<filters>
// answering {items, total, page, per_page}.
//
//   const table = new DataTable(container, {
//     endpoint: "/api/users",
//     columns: [                                   // in display order
//       {key: "login", label: "users.login",       // label: a message id (translated) or plain text
//        sort: "login",                           // server column to sort by; leave out = not sortable
//        render: (value, row) => el("b", {}, value), // or "datetime" | "duration" | "yesno" | "number" | "date"
//        className: "num", width: "6em"},
//     ],
//     sort: "-created_at",      // initial sort (server syntax)        perPage: 50   (25/50/100/200 offered)
//     search: true,             // show the search box (server ?q=)    filters: {is_active: true}  (extra params)
//     onRowClick: (row) => ..., // rows become clickable              urlState: true (keep q/sort/page in the URL)
//     rowClass: (row) => "",    // extra class per row                 empty: "table.empty" (message id)
//     natural: ["name"],        // columns whose page is put in natural order (1, 2, 10) when sorted by them
//   });
//   table.reload();  table.setFilters({is_active: false});  table.rows  (the items shown)
// Requests that come back out of order are ignored; errors are shown as toasts (api()).
export class DataTable {
  constructor(container, options) {
    this.container = container;
    this.opts = { perPage: 50, search: true, urlState: true, filters: {}, empty: "table.empty", ...options };
    const params = this.opts.urlState ? new URLSearchParams(location.search) : new URLSearchParams();
    this.state = {
      q: params.get("q") || "",
      sort: params.get("sort") || this.opts.sort || "",
      page: Math.max(1, Number(params.get("page")) || 1),
      perPage: Number(params.get("per_page")) || this.opts.perPage,
    };
    this.filters = { ...this.opts.filters };
    this.rows = [];
    this.total = 0;
    this._seq = 0;
    this._build();
    this.reload();
  }

  _build() {
    const o = this.opts;
    this.searchBox = o.search
      ? el("input", { type: "search", placeholder: t("table.search"), value: this.state.q, "aria-label": t("table.search") })
      : null;
    if (this.searchBox) {
      let timer = null;
      this.searchBox.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(() => { this.state.q = this.searchBox.value.trim(); this.state.page = 1; this.reload(); }, 250);
      });
    }
    this.info = el("span", { class: "dt-info" });
    this.headRow = el("tr");
    for (const col of o.columns) {
      const th = el("th", { style: col.width ? { width: col.width } : null, "data-key": col.key }, t(col.label || col.key));
      if (col.sort) {
        th.classList.add("sortable");
        th.tabIndex = 0;
        const toggle = () => this.sortBy(col.sort);
        th.addEventListener("click", toggle);
        th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } });
      }
      this.headRow.append(th);
    }
    this.body = el("tbody");
    this.table = el("table", { class: "grid" }, el("thead", {}, this.headRow), this.body);
    this.prev = el("button", { type: "button", onclick: () => this.goto(this.state.page - 1) }, t("table.prev"));
    this.next = el("button", { type: "button", onclick: () => this.goto(this.state.page + 1) }, t("table.next"));
    this.perPage = el("select", { "aria-label": t("table.per_page"),
      onchange: () => { this.state.perPage = Number(this.perPage.value); this.state.page = 1; this.reload(); } },
      [25, 50, 100, 200].map((n) => el("option", { value: n, selected: n === this.state.perPage }, n)));
    // a table wider than the page scrolls inside its own box: the page (and the sidebar) stay put
    this.container.replaceChildren(
      el("div", { class: "dt-bar" }, this.searchBox, this.info),
      el("div", { class: "dt-scroll" }, this.table),
      el("div", { class: "dt-pager" }, this.prev, this.next, this.perPage, el("span", {}, t("table.per_page"))),
    );
  }

  sortBy(column) {
    const current = this.state.sort.split(",")[0];
    this.state.sort = current === column ? "-" + column : column;
    this.state.page = 1;
    this.reload();
  }

  goto(page) {
    const last = Math.max(1, Math.ceil(this.total / this.state.perPage));
    this.state.page = Math.min(Math.max(1, page), last);
    this.reload();
  }

  setFilters(filters) {
    this.filters = { ...filters };
    this.state.page = 1;
    return this.reload();
  }

  async reload() {
    const seq = ++this._seq;
    const s = this.state;
    this.container.classList.add("busy");
    try {
      const data = await api("GET", this.opts.endpoint, null, {
        query: { ...this.filters, page: s.page, per_page: s.perPage, sort: s.sort, q: s.q },
      });
      if (seq !== this._seq) return;
      this.rows = this._natural(data.items);
      this.total = data.total;
      this._render();
      if (this.opts.urlState) this._saveUrl();
    } catch (err) {
      if (seq === this._seq) this.body.replaceChildren(el("tr", {}, el("td", { class: "dt-empty", colspan: this.opts.columns.length }, err.message)));
    } finally {
      if (seq === this._seq) this.container.classList.remove("busy");
    }
  }

  // names with numbers in the page's natural order ("Оператор 2" before "Оператор 10") when sorted by one of
  // opts.natural (the server compares them as text; within a page the order is the reader's)
  _natural(items) {
    const [first] = (this.state.sort || "").split(",");
    const column = first.replace(/^-/, "");
    if (!(this.opts.natural || []).includes(column)) return items;
    const sign = first.startsWith("-") ? -1 : 1;
    return [...items].sort((a, b) => sign * naturalCompare(a[column], b[column], window.LANG));
  }

  _cell(col, row) {
    const value = row[col.key];
    if (typeof col.render === "function") return col.render(value, row);
    if (col.render === "datetime") return fmtDateTime(value);
    if (col.render === "duration") return fmtDuration(value);
    if (col.render === "yesno") return value ? t("common.yes") : t("common.no");
    if (col.render === "number") return fmtNumber(value, window.LANG);
    if (col.render === "date") return fmtDate(value, window.LANG);
    return value === null || value === undefined ? "" : String(value);
  }

  _render() {
    const o = this.opts, s = this.state;
    const [first] = s.sort.split(",");
    for (const th of this.headRow.children) {
      const col = o.columns.find((c) => c.key === th.dataset.key);
      th.removeAttribute("aria-sort");
      if (col && col.sort && first.replace(/^-/, "") === col.sort) {
        th.setAttribute("aria-sort", first.startsWith("-") ? "descending" : "ascending");
      }
    }
    if (!this.rows.length) {
      this.body.replaceChildren(el("tr", {}, el("td", { class: "dt-empty", colspan: o.columns.length }, t(o.empty))));
    } else {
      this.body.replaceChildren(...this.rows.map((row) => {
        const tr = el("tr", { class: [o.onRowClick ? "clickable" : "", o.rowClass ? o.rowClass(row) : ""].join(" ").trim() || null },
          o.columns.map((col) => {
            const content = this._cell(col, row);
            // a value cut by its column's width is whole in the tooltip
            return el("td", { class: col.className || null, title: typeof content === "string" && content.length > 30 ? content : null }, content);
          }));
        if (o.onRowClick) tr.addEventListener("click", () => o.onRowClick(row));
        return tr;
      }));
    }
    const from = this.total ? (s.page - 1) * s.perPage + 1 : 0;
    const to = Math.min(this.total, s.page * s.perPage);
    this.info.textContent = t("table.range", { from, to, total: this.total });
    this.prev.disabled = s.page <= 1;
    this.next.disabled = to >= this.total;
  }

  _saveUrl() {
    const params = new URLSearchParams(location.search);
    const s = this.state;
    const set = (k, v, dflt) => (v && v !== dflt ? params.set(k, v) : params.delete(k));
    set("q", s.q, "");
    set("sort", s.sort, this.opts.sort || "");
    set("page", String(s.page), "1");
    set("per_page", String(s.perPage), String(this.opts.perPage));
    const qs = params.toString();
    history.replaceState(history.state, "", location.pathname + (qs ? "?" + qs : "") + location.hash);
  }
}

// ---- page chrome ------------------------------------------------------------------------------------------------
const logout = document.getElementById("logout");
if (logout) {
  logout.addEventListener("click", async () => {
    try { await api("POST", "/api/auth/logout", null, { quiet: true }); } catch { /* the session is gone anyway */ }
    location.assign("/login");
  });
}
