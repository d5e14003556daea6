// The audit log (/admin/audit): filters (user, object type / id, action, time range) kept in the address, the
// table (newest first) with the changes of an entry on click, and CSV / XLSX export of the filtered log.
// Config: {can_export}. Tables, actions and events are shown by the labels the API gives in the page's language
// (object_label, action_label, event_label), the codes themselves where an entry has none.
const A = await import(document.querySelector('link[rel=modulepreload][href*="/static/admin.js"]').href);
const { el, t } = A.app;

const ACTIONS = ["created", "updated", "deleted", "custom"];

// a table's name from the server's catalogue (table.<name>) when an entry comes without its label
function tableName(code) {
  const id = `table.${code}`;
  const text = t(id);
  return text === id ? code : text;
}

export function auditPage(root, config) {
  const params = new URLSearchParams(location.search);
  const inputs = {
    user_login: el("input", { type: "text", name: "user_login", value: params.get("user_login") || "" }),
    object_type: el("input", { type: "text", name: "object_type", value: params.get("object_type") || "", placeholder: "campaigns" }),
    object_id: el("input", { type: "text", name: "object_id", value: params.get("object_id") || "" }),
    action: el("select", { name: "action" }, el("option", { value: "" }, t("admin.audit.any")),
      ACTIONS.map((a) => el("option", { value: a }, t(`admin.audit.action.${a}`)))),
    since: el("input", { type: "datetime-local", name: "since" }),
    until: el("input", { type: "datetime-local", name: "until" }),
  };
  inputs.action.value = params.get("action") || "";
  const exports = el("span", { class: "exports" });
  function filters() {
    const f = {};
    for (const [k, input] of Object.entries(inputs)) {
      const v = input.value.trim();
      if (!v) continue;
      f[k] = k === "since" || k === "until" ? new Date(v).toISOString() : v;
    }
    return f;
  }
  function links(f) {
    if (!config.can_export) return;
    const qs = (format) => "/api/audit/export?" + new URLSearchParams({ ...f, format }).toString();
    exports.replaceChildren(t("admin.audit.export"), " ",
      el("a", { href: qs("csv"), class: "export", "data-format": "csv", download: "" }, "CSV"), " ",
      el("a", { href: qs("xlsx"), class: "export", "data-format": "xlsx", download: "" }, "XLSX"));
  }
  function apply() {
    const f = filters();
    const url = new URLSearchParams(location.search);
    for (const k of ["user_login", "object_type", "object_id", "action"]) { if (f[k]) url.set(k, f[k]); else url.delete(k); }
    history.replaceState(history.state, "", location.pathname + (url.toString() ? "?" + url : ""));
    links(f);
    table.setFilters(f);
  }
  const form = el("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); apply(); } },
    el("label", {}, t("admin.f.login"), inputs.user_login),
    el("label", {}, t("admin.audit.object_type"), inputs.object_type),
    el("label", {}, t("admin.audit.object_id"), inputs.object_id),
    el("label", {}, t("admin.audit.action"), inputs.action),
    el("label", {}, t("admin.audit.since"), inputs.since),
    el("label", {}, t("admin.audit.until"), inputs.until),
    el("button", { type: "submit", class: "primary", "data-action": "filter" }, t("admin.audit.apply")),
    el("button", { type: "button", "data-action": "reset", onclick: () => { for (const i of Object.values(inputs)) i.value = ""; apply(); } }, t("admin.audit.reset")));
  inputs.action.addEventListener("change", apply);
  root.append(form);
  const table = A.listTable(root, {
    endpoint: "/api/audit", sort: "-at", search: true, filters: filters(), tools: [exports],
    columns: [
      { key: "at", label: "admin.audit.at", sort: "at", render: "datetime", width: "11em" },
      { key: "user_login", label: "admin.f.login", sort: "user_login" },
      { key: "action", label: "admin.audit.action", sort: "action", render: (v, row) => row.action_label || t(`admin.audit.action.${v}`) },
      { key: "event", label: "admin.audit.event", render: (v, row) => row.event_label || v },
      { key: "object_type", label: "admin.audit.object_type", sort: "object_type",
        render: (v, row) => el("span", { class: "object-type", title: v, dataset: { type: v } }, row.object_label || tableName(v)) },
      { key: "object_id", label: "admin.audit.object_id" },
      { key: "changes", label: "admin.audit.changes", render: (v) => (v && Object.keys(v).length ? Object.keys(v).join(", ") : "") },
      { key: "client", label: "admin.audit.client" },
    ],
    open: (row) => A.modal(`${row.action_label || t(`admin.audit.action.${row.action}`)} · ${row.object_label || tableName(row.object_type)} ${row.object_id ?? ""}`,
      el("div", {}, el("dl", { class: "kv" },
        el("dt", {}, t("admin.audit.at")), el("dd", {}, A.app.fmtDateTime(row.at)),
        el("dt", {}, t("admin.f.login")), el("dd", {}, `${row.user_login} (${row.user_roles})`),
        el("dt", {}, t("admin.audit.event")), el("dd", {}, row.event_label || row.event),
        el("dt", {}, t("admin.audit.client")), el("dd", {}, row.client)),
      el("pre", { class: "changes" }, JSON.stringify(row.changes, null, 2))), [], { wide: false, className: "audit-dialog" }),
  });
  links(filters());
}
