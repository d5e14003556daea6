// Scheduled report delivery (/reports/schedules): the schedules, their create/edit dialog, "send now" and each
// schedule's run history with its errors. Reads and writes /api/reports/schedules (permission reports.schedule).
//
// schedulesPage(container, config): config comes from web/schedules_pages.py (reports, formats, periods,
// frequencies, the centre's time zone, default subject/body per language, whether a mail server is configured).

import { app, modal, confirmDialog } from "./admin.js";

const { api, el, t, toast, fmtDateTime, fmtDateTimeIn } = app;
const ENDPOINT = "/api/reports/schedules";
const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6];

function reportLabel(name) { return name === "slices" ? t("schedules.report.slices") : t(`nav.reports.${name}`); }

function fmtDay(iso) {
  const [y, m, d] = String(iso).split("-");
  return `${d}.${m}.${y}`;
}

function periodOf(run) {
  return run.period_from === run.period_to ? fmtDay(run.period_from) : `${fmtDay(run.period_from)} – ${fmtDay(run.period_to)}`;
}

export function whenText(s) {
  const at = String(s.at_time).slice(0, 5);
  if (s.frequency === "weekly") return t("schedules.when.weekly", { day: t(`schedules.weekday.${s.weekday}`), at });
  if (s.frequency === "monthly") return t("schedules.when.monthly", { day: s.month_day, at });
  return t("schedules.when.daily", { at });
}

function statusPill(status) {
  return el("span", { class: `pill run-${status || "none"}`, "data-status": status || "" }, t(`schedules.status.${status || "none"}`));
}

// ---- the form -------------------------------------------------------------------------------------------------
function field(name, label, input, { span = 1, help = null } = {}) {
  return el("div", { class: `fld span-${span}`, "data-field": name },
    el("label", { class: "flabel" }, label, input), help ? el("div", { class: "fhelp" }, help) : null,
    el("div", { class: "ferr", "data-error-for": name }));
}

function select(name, values, label, selected) {
  return el("select", { name }, values.map((v) => el("option", { value: v, selected: String(v) === String(selected) }, label(v))));
}

function scheduleForm(config, item) {
  const lang = (item && item.language) || (window.LANG === "en" ? "en" : "ru");
  const v = item || {
    name: "", report: "shift", view_id: null, filters: {}, format: "pdf", period: "yesterday", frequency: "daily",
    at_time: "08:00", weekday: 0, month_day: 1, time_zone: config.time_zone, language: lang, recipients: [],
    subject: config.default_subject[lang], body: config.default_body[lang], is_active: true,
  };
  const inputs = {
    name: el("input", { type: "text", name: "name", value: v.name, maxlength: 200 }),
    report: select("report", config.reports, reportLabel, v.report),
    view_id: el("select", { name: "view_id" }),
    format: select("format", config.formats, (f) => f.toUpperCase(), v.format),
    period: select("period", config.periods, (p) => t(`schedules.period.${p}`), v.period),
    frequency: select("frequency", config.frequencies, (f) => t(`schedules.frequency.${f}`), v.frequency),
    at_time: el("input", { type: "time", name: "at_time", value: String(v.at_time).slice(0, 5), required: true }),
    weekday: select("weekday", WEEKDAYS, (d) => t(`schedules.weekday.${d}`), v.weekday ?? 0),
    month_day: el("input", { type: "number", name: "month_day", min: 1, max: 31, value: v.month_day ?? 1 }),
    time_zone: el("input", { type: "text", name: "time_zone", value: v.time_zone || config.time_zone }),
    language: select("language", ["ru", "en"], (l) => t(`schedules.language.${l}`), v.language),
    recipients: el("textarea", { name: "recipients", rows: 3, placeholder: "head@example.ru" }),
    subject: el("input", { type: "text", name: "subject", value: v.subject, maxlength: 300 }),
    body: el("textarea", { name: "body", rows: 6 }),
    is_active: el("input", { type: "checkbox", name: "is_active" }),
  };
  inputs.recipients.value = (v.recipients || []).join("\n");
  inputs.body.value = v.body;
  inputs.is_active.checked = Boolean(v.is_active);
  const wrapWeekday = field("weekday", t("schedules.f.weekday"), inputs.weekday);
  const wrapMonthDay = field("month_day", t("schedules.f.month_day"), inputs.month_day, { help: t("schedules.help.month_day") });
  const followFrequency = () => {
    wrapWeekday.hidden = inputs.frequency.value !== "weekly";
    wrapMonthDay.hidden = inputs.frequency.value !== "monthly";
  };
  inputs.frequency.addEventListener("change", followFrequency);
  followFrequency();
  // the saved views of the chosen report (the user's own); their filters go with the report
  const loadViews = async () => {
    inputs.view_id.replaceChildren(el("option", { value: "" }, t("schedules.view.none")));
    if (!config.can_views) return;
    try {
      const views = await api("GET", "/api/reports/views", null, { quiet: true, query: { report: inputs.report.value } });
      for (const view of views) inputs.view_id.append(el("option", { value: view.id, selected: view.id === v.view_id }, view.name));
    } catch { /* no views */ }
  };
  inputs.report.addEventListener("change", loadViews);
  const ready = loadViews();
  // a language change swaps the default texts (not texts someone wrote)
  inputs.language.addEventListener("change", () => {
    const other = inputs.language.value === "ru" ? "en" : "ru";
    if (inputs.subject.value === config.default_subject[other]) inputs.subject.value = config.default_subject[inputs.language.value];
    if (inputs.body.value === config.default_body[other]) inputs.body.value = config.default_body[inputs.language.value];
  });
  const placeholders = config.placeholders.map((p) => `{${p}}`).join(", ");
  const grid = el("div", { class: "fgrid" },
    field("name", t("schedules.f.name") + " *", inputs.name, { span: 2 }),
    field("report", t("schedules.f.report"), inputs.report),
    field("view_id", t("schedules.f.view"), inputs.view_id, { help: t("schedules.help.view") }),
    field("format", t("schedules.f.format"), inputs.format),
    field("period", t("schedules.f.period"), inputs.period),
    field("frequency", t("schedules.f.frequency"), inputs.frequency),
    field("at_time", t("schedules.f.at_time"), inputs.at_time),
    wrapWeekday, wrapMonthDay,
    field("time_zone", t("schedules.f.time_zone"), inputs.time_zone, { help: t("schedules.help.time_zone", { tz: config.time_zone }) }),
    field("language", t("schedules.f.language"), inputs.language),
    field("recipients", t("schedules.f.recipients") + " *", inputs.recipients, { span: 4, help: t("schedules.help.recipients") }),
    field("subject", t("schedules.f.subject"), inputs.subject, { span: 4, help: t("schedules.help.placeholders", { list: placeholders }) }),
    field("body", t("schedules.f.body"), inputs.body, { span: 4 }),
    el("div", { class: "fld span-2 fld-check", "data-field": "is_active" },
      el("label", { class: "chk" }, inputs.is_active, " ", t("schedules.f.is_active")), el("div", { class: "ferr", "data-error-for": "is_active" })),
  );
  const formError = el("div", { class: "form-error", role: "alert" });
  const node = el("form", { class: "aform", novalidate: true, onsubmit: (e) => e.preventDefault() }, formError, grid);
  return {
    node, ready,
    values() {
      const frequency = inputs.frequency.value;
      return {
        name: inputs.name.value.trim(), report: inputs.report.value,
        view_id: inputs.view_id.value ? Number(inputs.view_id.value) : null,
        filters: (item && item.filters) || {}, format: inputs.format.value, period: inputs.period.value, frequency,
        at_time: inputs.at_time.value || null,
        weekday: frequency === "weekly" ? Number(inputs.weekday.value) : null,
        month_day: frequency === "monthly" ? (inputs.month_day.value === "" ? null : Number(inputs.month_day.value)) : null,
        time_zone: inputs.time_zone.value.trim() || null, language: inputs.language.value,
        recipients: inputs.recipients.value.split(/[\n,;]+/).map((s) => s.trim()).filter(Boolean),
        subject: inputs.subject.value, body: inputs.body.value, is_active: inputs.is_active.checked,
      };
    },
    showErrors(err) {
      formError.textContent = "";
      node.querySelectorAll(".ferr").forEach((e) => { e.textContent = ""; });
      const rest = [];
      for (const e of err.errors || []) {
        // "recipients.1", "body.weekday" (a model check names its field first: "weekday: required ...")
        let name = String(e.field || "").split(".").find((part) => part in inputs);
        let reason = e.reason;
        const named = /^(\w+): (.*)$/.exec(reason || "");
        if (!name && named && named[1] in inputs) { name = named[1]; reason = named[2]; }
        const slot = name ? node.querySelector(`[data-error-for="${name}"]`) : null;
        if (slot) slot.textContent = (slot.textContent ? slot.textContent + "; " : "") + reason;
        else rest.push(`${e.field}: ${e.reason}`);
      }
      if (!(err.errors || []).length) rest.push(err.message);
      formError.textContent = rest.join("; ");
    },
  };
}

function openForm(config, item, onSaved) {
  const form = scheduleForm(config, item);
  const save = el("button", { type: "submit", class: "primary", "data-action": "save", onclick: async (e) => {
    e.preventDefault();
    save.disabled = true;
    try {
      const saved = item
        ? await api("PUT", `${ENDPOINT}/${item.id}`, form.values(), { quiet: true })
        : await api("POST", ENDPOINT, form.values(), { quiet: true });
      toast(t("schedules.saved"), "ok");
      m.close();
      onSaved(saved);
    } catch (err) {
      form.showErrors(err);
    } finally { save.disabled = false; }
  } }, t("admin.save"));
  const m = modal(item ? t("schedules.edit", { name: item.name }) : t("schedules.new"), form.node,
    [save, el("button", { type: "button", "data-action": "cancel", onclick: () => m.close() }, t("admin.cancel"))],
    { wide: true, className: "form-dialog sched-dialog" });
  return { form, close: m.close };
}

// ---- the run history ------------------------------------------------------------------------------------------
async function showRuns(box, schedule) {
  const data = await api("GET", `${ENDPOINT}/${schedule.id}/runs`, null, { query: { per_page: 50 } });
  const rows = data.items.map((run) => el("tr", { "data-run": run.id, "data-status": run.status },
    el("td", {}, fmtDateTime(run.due_at), run.manual ? el("span", { class: "muted" }, " · " + t("schedules.manual")) : null),
    el("td", {}, periodOf(run)),
    el("td", {}, statusPill(run.status),
      run.status === "retrying" ? el("div", { class: "muted" }, t("schedules.retry_at", { at: fmtDateTime(run.next_attempt_at) })) : null),
    el("td", { class: "num" }, String(run.attempts)),
    el("td", {}, fmtDateTime(run.started_at)),
    el("td", {}, fmtDateTime(run.finished_at)),
    el("td", { class: "run-error" }, run.error || "")));
  box.replaceChildren(
    el("h2", {}, t("schedules.runs.title", { name: schedule.name })),
    data.items.length
      ? el("table", { class: "sched runs" },
        el("thead", {}, el("tr", {}, ["due", "period", "status", "attempts", "started", "finished", "error"]
          .map((k) => el("th", {}, t(`schedules.runs.${k}`))))),
        el("tbody", {}, rows))
      : el("p", { class: "muted" }, t("schedules.runs.none")));
}

// ---- the page -------------------------------------------------------------------------------------------------
export function schedulesPage(container, config) {
  const list = el("div", { class: "sched-list" });
  const runs = el("div", { class: "sched-runs" });
  let selected = null;
  const reload = async () => {
    const items = await api("GET", ENDPOINT);
    if (!items.length) { list.replaceChildren(el("p", { class: "muted" }, t("schedules.none"))); return; }
    list.replaceChildren(el("table", { class: "sched schedules" },
      el("thead", {}, el("tr", {}, ["name", "report", "when", "recipients", "next", "last", ""].map((k) => el("th", {}, k ? t(`schedules.col.${k}`) : "")))),
      el("tbody", {}, items.map((s) => el("tr", { "data-id": s.id, class: s.id === selected ? "selected" : null },
        el("td", {}, s.name, s.is_active ? null : el("span", { class: "muted" }, " · " + t("schedules.inactive"))),
        el("td", {}, reportLabel(s.report), " · ", s.format.toUpperCase(), " · ", t(`schedules.period.${s.period}`)),
        el("td", {}, whenText(s), el("div", { class: "muted" }, s.time_zone)),
        el("td", {}, s.recipients.join(", ")),
        el("td", { "data-col": "next" }, s.next_run_at ? fmtDateTimeIn(s.next_run_at, window.LANG, s.time_zone) : "—"),
        el("td", {}, statusPill(s.last_run && s.last_run.status),
          s.last_run && s.last_run.error ? el("div", { class: "run-error" }, s.last_run.error) : null),
        el("td", { class: "actions" },
          el("button", { type: "button", class: "small", "data-action": "edit", onclick: () => openForm(config, s, () => reload()) }, t("schedules.action.edit")),
          el("button", { type: "button", class: "small", "data-action": "send", onclick: async () => {
            await api("POST", `${ENDPOINT}/${s.id}/send`);
            toast(t("schedules.queued"), "ok");
            selected = s.id;
            await reload();
            await showRuns(runs, s);
          } }, t("schedules.action.send")),
          el("button", { type: "button", class: "small", "data-action": "runs", onclick: async () => {
            selected = s.id;
            list.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
            list.querySelector(`tr[data-id="${s.id}"]`).classList.add("selected");
            await showRuns(runs, s);
          } }, t("schedules.action.runs")),
          el("button", { type: "button", class: "small danger", "data-action": "delete", onclick: async () => {
            if (!(await confirmDialog(t("schedules.confirm.delete", { name: s.name })))) return;
            await api("DELETE", `${ENDPOINT}/${s.id}`);
            toast(t("admin.deleted"), "ok");
            if (selected === s.id) { selected = null; runs.replaceChildren(); }
            await reload();
          } }, "✕")))))));
  };
  if (!config.smtp_configured) container.append(el("p", { class: "sched-warn", "data-warning": "smtp" }, t("schedules.smtp_missing")));
  container.append(
    el("p", { class: "muted" }, t("schedules.intro", { tz: config.time_zone, retries: config.retries_after_s.map((s) => s / 60).join(", ") })),
    el("div", { class: "sched-bar" },
      el("button", { type: "button", class: "primary", "data-action": "create", onclick: () => openForm(config, null, () => reload()) },
        "+ " + t("schedules.create")),
      el("button", { type: "button", "data-action": "refresh", onclick: async () => {
        await reload();
        if (selected !== null) {
          const one = await api("GET", `${ENDPOINT}/${selected}`);
          await showRuns(runs, one);
        }
      } }, t("schedules.refresh"))),
    list, runs);
  reload();
}
