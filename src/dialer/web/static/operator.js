// The operator's workplace (/operator): status, client card, call controls, wrap-up, manual dial.
//
// State comes from GET /api/workplace/state; the operator's live events (OperatorStateChanged, Call*, Preview*,
// CommandFailed, AttemptFinished) trigger a re-read of it (debounced), and so does a reconnection of the stream.
// Actions are the workplace commands (POST /api/workplace/...). Timers tick locally from the server's times
// (corrected by the server clock offset). Text from the card is always set as text, never as HTML.
// Beside the call: "my calls waiting for a result" (conversations an engine crash cut off: GET/POST
// /api/workplace/results-pending, the codes from /api/panels/campaigns/{id}/codes), "my callbacks" (today and
// overdue, /api/panels/my-callbacks) and "my day" (/api/panels/my-day), read again after each of my calls.
// Transfers (engine/transfers.py): the transfer dialog (F7) sends the customer to a ready operator, a pool or a
// skill (queued), or an external number (POST /api/workplace/transfer), or starts a consultation
// (POST /api/workplace/consult: then "connect" /consult/complete or "back to the customer" /consult/cancel); the
// receiving operator's card shows who transferred the customer and his note; after handing a customer over the
// wrap-up ends without a code.
import { api, live, t, el, toast, fmtDuration, fmtDateTime, fmtDateTimeIn, fmtFieldValue } from "./app.js";

const $ = (id) => document.getElementById(id);
const AUTO_READY_KEY = "dialer.operator.autoReady";
const BUSY = new Set(["reserved", "ringing", "in_call", "wrap_up"]);
const HANGABLE = new Set(["dialing", "ringing", "answered", "connected"]);

let state = null;          // the last /api/workplace/state
let offset = 0;            // server clock - local clock (ms)
let fetchedAt = 0;         // local time of the last state
let form = { attempt: null, code: null };  // the wrap-up choices of the current call
let refreshTimer = null;
let busy = false;          // a command is on its way
let dialing = false;       // a manual dial is on its way

// ---- state -------------------------------------------------------------------------------------------------
async function refresh() {
  clearTimeout(refreshTimer);
  refreshTimer = null;
  try {
    const data = await api("GET", "/api/workplace/state", null, { quiet: true });
    state = data;
    fetchedAt = Date.now();
    offset = data.server_time ? new Date(data.server_time).getTime() - fetchedAt : 0;
    render();
  } catch (err) {
    if (err.status === 401) { location.assign("/login?next=/operator"); return; }
    banner(err.status === 404 ? err.detail : t("operator.error.state", { detail: err.message }));
  }
}

function soon(ms = 80) {
  if (refreshTimer === null) refreshTimer = setTimeout(refresh, ms);
}

function now() { return Date.now() + offset; }

function banner(text) {
  const b = $("op-banner");
  b.hidden = !text;
  b.textContent = text || "";
}

// ---- rendering -------------------------------------------------------------------------------------------------
function statusLabel(st) { return t("status." + st); }

function reasonLabel(reason) {
  if (!reason) return "";
  const id = "operator.reason." + reason;
  const text = t(id);
  return text === id ? reason : text;
}

function render() {
  const s = state;
  const root = $("op");
  root.dataset.state = s.state;
  root.dataset.loaded = "1";
  const pill = $("op-pill");
  pill.className = "pill op-pill st-" + s.state;
  pill.textContent = statusLabel(s.state);
  $("op-reason").textContent = s.state === "paused" ? reasonLabel(s.reason) : "";
  banner(s.engine_running ? "" : t("operator.engine_down"));

  $("btn-ready").disabled = s.state === "ready";
  $("btn-offline").disabled = s.state === "offline";
  $("auto-answer").checked = !!s.auto_answer;
  renderPauseMenu();
  renderCall();
  renderDial();
  tick();
}

function renderPauseMenu() {
  const menu = $("pause-menu");
  if (menu.childElementCount) return;
  state.pause_reasons.forEach((reason, i) => {
    menu.append(el("button", { type: "button", role: "menuitem", dataset: { reason },
      onclick: () => { closeMenus(); command("/api/workplace/pause", { reason }); } },
      el("kbd", {}, String(i + 1)), " ", reasonLabel(reason)));
  });
}

function renderCall() {
  const s = state;
  const call = s.call;
  const hasCall = !!call;
  $("call-box").classList.toggle("active", hasCall);
  $("call-title").textContent = hasCall ? callTitle(call) : (s.state === "ready" ? t("operator.waiting") : t("operator.no_call"));
  $("call-number").textContent = hasCall ? call.number : "";
  $("call-campaign").textContent = hasCall ? call.campaign_name : "";
  const crm = $("crm-link");
  if (hasCall && call.crm_url) { crm.href = call.crm_url; crm.hidden = false; } else { crm.hidden = true; crm.removeAttribute("href"); }

  $("call-controls").hidden = !hasCall;
  $("history-box").hidden = !hasCall;
  $("notes-box").hidden = !hasCall;
  $("dial-box").hidden = hasCall;
  const preview = hasCall && call.preview;
  $("btn-confirm").hidden = !preview;
  $("btn-skip").hidden = !preview;
  $("preview-bar").hidden = !preview;
  $("t-preview").hidden = !preview;
  $("btn-hangup").disabled = !(hasCall && HANGABLE.has(call.state));
  renderTransfer(call);
  const ringing = s.state === "ringing" || s.state === "reserved";
  $("btn-answer").disabled = !s.can_answer || !ringing;
  $("answer-hint").textContent = s.can_answer ? "" : (s.auto_answer ? t("operator.answer.auto") : t("operator.answer.phone"));

  // fields of the card template, in the list's order
  const table = $("card-fields");
  table.replaceChildren(...(hasCall ? [
    el("tr", {}, el("th", {}, t("operator.contact_id")), el("td", {}, call.contact_id ?? t("operator.no_contact"))),
    ...call.fields.map((f) => el("tr", { dataset: { field: f.name } }, el("th", {}, f.name), el("td", {}, fieldText(f)))),
  ] : []));

  // the call script with the client's values (text nodes only)
  const script = $("script");
  const parts = hasCall ? call.script_parts : [];
  $("script-box").hidden = !parts.length;
  const types = new Map(hasCall ? call.fields.map((f) => [f.name, f]) : []);
  script.replaceChildren(...parts.map((p) => p.field !== null && p.field !== undefined
    ? el("mark", { title: p.field }, p.value === "" ? "—" : scriptValue(types.get(p.field), p.value))
    : document.createTextNode(p.text || "")));

  // wrap-up: during the conversation (applied at hang-up) and after it
  // the operator being consulted (attended transfer) does not own the customer yet: no code for him
  const consulted = hasCall && call.transfer && call.transfer.kind === "attended" && call.transfer.result === "pending";
  const wrap = hasCall && (s.state === "in_call" || s.state === "wrap_up") && !consulted;
  $("wrap-box").hidden = !wrap;
  if (hasCall && form.attempt !== call.attempt_id) resetForm(call.attempt_id);
  if (wrap) renderCodes(call);

  renderHistory(hasCall ? call.history : [], hasCall ? call.attempt_id : null);
  const notes = $("notes");
  const list = hasCall ? call.notes : [];
  notes.replaceChildren(...(list.length ? list.map((n) => el("li", {},
    el("span", { class: "meta" }, fmtDateTime(n.at), " · ", n.operator || "—", n.completion_code ? " · " + n.completion_code : ""),
    el("div", {}, n.comment))) : [el("li", { class: "empty" }, t("operator.notes.none"))]));
}

function callTitle(call) {
  if (call.preview) return t("operator.title.preview");
  const st = state.state;
  if (st === "in_call") return t("operator.title.talk");
  if (st === "wrap_up") return t("operator.title.wrap");
  return t("operator.title.dialing");
}

function fieldText(f) {
  if (typeof f.value === "boolean") return f.value ? t("common.yes") : t("common.no");
  if (f.value === null || f.value === undefined) return f.text;
  const shown = fmtFieldValue(f.type, f.value, window.LANG);
  return shown === null ? f.text : shown;
}

// a placeholder's value in the script: as on the card when the field is on it (amounts, dates as Russians write them)
function scriptValue(field, text) {
  return field && field.text === text ? fieldText(field) : text;
}

// The codes an operator sets after a conversation: the campaign's own, then the system codes that can describe
// one (the others — busy, no answer, DNC hit ... — are the engine's results; "never call" is the check box).
const OPERATOR_SYSTEM_CODES = ["answered", "answering_machine", "invalid_number"];

function shownCodes(call) {
  const own = call.codes.filter((c) => !c.system_key);
  const system = OPERATOR_SYSTEM_CODES.map((k) => call.codes.find((c) => c.system_key === k)).filter(Boolean);
  const shown = [...own, ...system];
  return shown.length ? shown : call.codes;
}

function renderCodes(call) {
  const box = $("codes");
  box.replaceChildren(...shownCodes(call).map((c, i) => {
    const key = c.hotkey || (i < 9 ? String(i + 1) : "");
    return el("button", { type: "button", class: "code oc-" + c.category + (form.code === c.id ? " selected" : ""),
      dataset: { id: c.id, key }, "aria-pressed": form.code === c.id ? "true" : "false",
      onclick: () => selectCode(c.id) }, key ? el("kbd", {}, key) : null, " ", c.name);
  }));
}

function renderHistory(rows, current) {
  const body = $("history").tBodies[0];
  if (!rows.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "dt-empty" }, t("operator.history.none"))));
    return;
  }
  body.replaceChildren(...rows.map((h) => el("tr", { class: h.attempt_id === current ? "current" : null },
    el("td", { title: fmtDateTime(h.at) }, shortTime(h.at)),
    el("td", {}, h.number),
    el("td", {}, h.outcome ? el("span", { class: "pill oc-" + h.outcome }, t("outcome." + h.outcome))
      : el("span", { class: "muted" }, t("operator.h.in_progress"))),
    el("td", {}, h.completion_code || ""),
    el("td", {}, h.operator || ""),
    el("td", { class: "comment", title: h.comment || "" }, h.comment || ""))));
}

function shortTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(window.LANG === "en" ? "en-GB" : "ru-RU",
    { day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit" });
}

function renderDial() {
  const s = state;
  const select = $("dial-campaign");
  const current = select.value;
  const ids = s.campaigns.map((c) => String(c.id)).join(",");
  if (select.dataset.ids !== ids) {
    select.dataset.ids = ids;
    select.replaceChildren(...s.campaigns.map((c) => el("option", { value: c.id },
      c.name + (c.status === "running" ? "" : " (" + t("operator.campaign." + c.status) + ")"))));
    if (current && s.campaigns.some((c) => String(c.id) === current)) select.value = current;
    else if (s.campaign_id && s.campaigns.some((c) => c.id === s.campaign_id)) select.value = String(s.campaign_id);
  }
  const can = (s.state === "ready" || s.state === "paused") && !s.call && s.campaigns.length > 0;
  $("btn-dial").disabled = !can || dialing;
  $("dial-box").classList.toggle("disabled", !can);
}

// ---- timers -----------------------------------------------------------------------------------------------------
function tick() {
  if (!state) return;
  const elapsed = (Date.now() - fetchedAt) / 1000;
  $("op-time").textContent = fmtDuration(state.seconds_in_state + elapsed);
  const call = state.call;
  const at = (iso) => (iso ? new Date(iso).getTime() : null);
  const nowMs = now();
  const talkFrom = call && at(call.connected_at);
  const talkTo = call && at(call.hung_up_at);
  $("t-talk").hidden = !talkFrom;
  if (talkFrom) $("t-talk-v").textContent = fmtDuration(((talkTo || nowMs) - talkFrom) / 1000);
  const wrapping = call && state.state === "wrap_up" && talkTo;
  $("t-wrap").hidden = !wrapping;
  if (wrapping) $("t-wrap-v").textContent = fmtDuration((nowMs - talkTo) / 1000);
  if (call && call.preview && call.preview_deadline) {
    const left = Math.max(0, (at(call.preview_deadline) - nowMs) / 1000);
    $("t-preview-v").textContent = String(Math.ceil(left));
    const total = call.preview_seconds || 1;
    $("preview-fill").style.width = Math.min(100, (100 * left) / total) + "%";
  }
}

// ---- commands ---------------------------------------------------------------------------------------------------
async function command(path, body, okText) {
  busy = true;
  try {
    const result = await api("POST", path, body || {});
    if (okText) toast(okText, "ok", 2500);
    return result;
  } catch (err) {
    return null;  // api() showed the reason
  } finally {
    busy = false;
    soon(0);
  }
}

function resetForm(attemptId) {
  form = { attempt: attemptId, code: null };
  $("callback-at").value = "";
  $("never-call").checked = false;
  $("comment").value = "";
  $("wrap-error").textContent = "";
  document.querySelector('input[name=cbkind][value=shared]').checked = true;
}

function selectCode(id) {
  form.code = id;
  if (state && state.call) renderCodes(state.call);
}

function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function postpone(minutes) {
  $("callback-at").value = localInput(new Date(now() + minutes * 60000));
}

function confirmNeverCall() {
  const dialog = $("never-dialog");
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function complete() {
  const call = state && state.call;
  if (!call || !(state.state === "in_call" || state.state === "wrap_up") || busy) return;
  const error = $("wrap-error");
  error.textContent = "";
  const handedOver = call.handed_over && state.state === "wrap_up";
  if (!form.code && !handedOver) { error.textContent = t("operator.error.no_code"); return; }
  const never = $("never-call").checked;
  if (never && !(await confirmNeverCall())) return;
  const raw = $("callback-at").value;
  let callbackAt = null;
  if (raw) {
    const date = new Date(raw);
    if (Number.isNaN(date.getTime()) || date.getTime() <= now()) { error.textContent = t("operator.error.past"); return; }
    callbackAt = date.toISOString();
  }
  const personal = document.querySelector("input[name=cbkind]:checked").value === "personal";
  const body = { completion_code_id: form.code || null, comment: $("comment").value, callback_at: callbackAt,
                 callback_personal: !!callbackAt && personal, never_call: never };
  const inCall = state.state === "in_call";
  busy = true;
  try {
    if (!autoReady()) await api("POST", "/api/workplace/pause", { reason: "after_call" }, { quiet: true });
    await api("POST", "/api/workplace/complete", body);
    toast(inCall ? t("operator.done.at_hangup") : t("operator.done"), "ok", 2500);
  } catch (err) {
    if (err.errors && err.errors.length) error.textContent = err.errors.map((e) => e.reason).join("; ");
  } finally {
    busy = false;
    soon(0);
  }
}

async function dial(event) {
  event.preventDefault();
  const err = $("dial-error");
  err.textContent = "";
  const number = $("dial-number").value.trim();
  const contact = $("dial-contact").value.trim();
  if (!number && !contact) { err.textContent = t("operator.manual.need"); $("dial-number").focus(); return; }
  if (contact && !/^\d+$/.test(contact)) { err.textContent = t("operator.manual.bad_contact"); return; }
  const body = { campaign_id: Number($("dial-campaign").value), number: number || null,
                 contact_id: contact ? Number(contact) : null };
  busy = dialing = true;
  $("btn-dial").disabled = true;
  try {
    const result = await api("POST", "/api/workplace/manual-dial", body, { quiet: true });
    if (result) { $("dial-number").value = ""; $("dial-contact").value = ""; toast(t("operator.manual.placed"), "ok", 2500); }
  } catch (e) {
    err.textContent = e.errors && e.errors.length ? e.errors.map((x) => reasonText(x.reason)).join("; ")
      : reasonText(e.detail || e.message);
  } finally {
    busy = dialing = false;
    soon(0);
  }
}

// The engine's refusals are English sentences: the common ones are shown in the page's language.
const REASONS = [
  [/^(\+\d+) is on a do-not-call list/, "operator.refused.dnc"],
  [/^(\S+) is being called right now/, "operator.refused.busy"],
  [/^contact (\d+) is being called right now/, "operator.refused.busy"],
  [/is not a valid phone number/, "operator.refused.invalid"],
  [/^contact (\d+) (does not exist|is not in a contact list)/, "operator.refused.contact"],
  [/^contact (\d+) has no phone number/, "operator.refused.no_phone"],
  [/needs the operator ready or on a break/, "operator.refused.state"],
  [/is not running/, "operator.refused.campaign"],
  [/^operator .+ is [a-z-]+, not ready/, "operator.refused.target_busy"],
  [/^the phone of operator .+ is offline/, "operator.refused.target_phone"],
  [/needs the permission transfers\.external/, "operator.refused.external"],
  [/^no trunk can call/, "operator.refused.trunk"],
  [/cannot transfer calls/, "operator.refused.no_transfer"],
];

function reasonText(detail) {
  const text = String(detail || "");
  for (const [re, id] of REASONS) {
    const m = text.match(re);
    if (m) return t(id, { value: m[1] || "" });
  }
  return text;
}

async function setAutoAnswer(enabled) {
  try {
    await api("POST", "/api/workplace/auto-answer", { enabled });
    toast(enabled ? t("operator.auto_answer.on") : t("operator.auto_answer.off"), "ok", 2000);
  } catch {
    $("auto-answer").checked = !enabled;
  }
}

function autoReady() { return localStorage.getItem(AUTO_READY_KEY) !== "0"; }

// ---- menus and keyboard -------------------------------------------------------------------------------------------
function toggle(buttonId, boxId) {
  const box = $(boxId);
  const open = box.hidden;
  closeMenus();
  box.hidden = !open;
  $(buttonId).setAttribute("aria-expanded", String(open));
  if (open) { const first = box.querySelector("button"); if (first) first.focus(); }
}

function closeMenus() {
  for (const [b, m] of [["btn-pause", "pause-menu"], ["btn-help", "help"]]) {
    $(m).hidden = true;
    $(b).setAttribute("aria-expanded", "false");
  }
}

function typing(target) {
  return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
}

function onKey(e) {
  if (e.key === "?" && !typing(e.target)) { e.preventDefault(); toggle("btn-help", "help"); return; }
  if (e.key === "Escape") { closeMenus(); return; }
  if (!state) return;
  if (e.key === "F2") { e.preventDefault(); command("/api/workplace/ready"); return; }
  if (e.key === "F3") { e.preventDefault(); toggle("btn-pause", "pause-menu"); return; }
  if (e.key === "F4") { e.preventDefault(); if (!$("btn-hangup").disabled) command("/api/workplace/hangup"); return; }
  if (e.key === "F7" && !(state.call && state.call.codes.some((c) => c.hotkey === "F7"))) {
    e.preventDefault();
    openTransfer();
    return;
  }
  if (e.key === "F8") { e.preventDefault(); if (!$("btn-confirm").hidden) command("/api/workplace/preview/confirm"); return; }
  if (e.key === "F9") { e.preventDefault(); if (!$("btn-skip").hidden) command("/api/workplace/preview/skip"); return; }
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); complete(); return; }
  // a code's own function-key hotkey (F5, F6 ...) works anywhere, also while typing the comment
  if (/^F\d+$/.test(e.key) && pickCode(e)) return;
  if (typing(e.target) || e.ctrlKey || e.altKey || e.metaKey) return;
  if (!$("pause-menu").hidden && /^[1-9]$/.test(e.key)) {
    const item = $("pause-menu").querySelectorAll("button")[Number(e.key) - 1];
    if (item) { e.preventDefault(); item.click(); }
    return;
  }
  if (e.key === "/") { e.preventDefault(); $("dial-number").focus(); return; }
  pickCode(e);
}

// A completion code by its own hotkey, else 1–9 by its position; true when one was picked.
function pickCode(e) {
  if ($("wrap-box").hidden || !state.call) return false;
  const codes = shownCodes(state.call);
  // by the key's character, or by its place on the keyboard (a Latin hotkey works on a Russian layout too)
  const physical = /^Key[A-Z]$/.test(e.code) ? e.code.slice(3).toLowerCase()
    : /^(Digit|Numpad)[0-9]$/.test(e.code) ? e.code.slice(-1) : null;
  const byHotkey = codes.find((c) => c.hotkey && c.hotkey.toLowerCase() === e.key.toLowerCase())
    || codes.find((c) => c.hotkey && physical !== null && c.hotkey.toLowerCase() === physical);
  const digit = /^[1-9]$/.test(e.key) ? e.key : (physical && /^[1-9]$/.test(physical) ? physical : null);
  const byPos = digit ? codes[Number(digit) - 1] : null;
  const code = byHotkey || byPos;
  if (!code) return false;
  e.preventDefault();
  selectCode(code.id);
  return true;
}

// ---- transfers ----------------------------------------------------------------------------------------------------
let consultTimer = null;
let targets = null;  // the last /api/workplace/transfer-targets

function renderTransfer(call) {
  const s = state;
  const consulting = call && call.consulting;
  $("btn-transfer").disabled = !(call && s.state === "in_call" && call.state === "connected" && !consulting);
  const bar = $("consult-bar");
  bar.hidden = !consulting;
  clearTimeout(consultTimer);
  if (consulting) {
    $("consult-text").textContent = t(consulting.answered ? "operator.transfer.consult.talking"
      : "operator.transfer.consult.ringing", { name: consulting.operator_name || "#" + consulting.operator_id });
    $("btn-consult-complete").disabled = !consulting.answered;
    consultTimer = setTimeout(() => soon(0), 1500);  // the consulted operator's answer is his state, not mine
  }
  const note = call && call.transfer;
  $("transfer-note").hidden = !note;
  if (note) {
    const pending = note.kind === "attended" && note.result === "pending";
    $("transfer-note-from").textContent = t(note.kind === "rescue" ? "operator.transfer.rescued"
      : pending ? "operator.transfer.consulted_by" : "operator.transfer.from", { name: note.from_operator_name || "—" });
    $("transfer-note-comment").textContent = note.comment || "";
  }
  $("btn-complete").dataset.optional = call && call.handed_over && s.state === "wrap_up" ? "1" : "";
}

function stateLabel(o) {
  const st = t("status." + o.state);
  return o.state === "paused" && o.reason ? st + " (" + reasonLabel(o.reason) + ")" : st;
}

function transferKind() { return document.querySelector("#transfer-form input[name=to]:checked").value; }

function showTransferKind() {
  const kind = transferKind();
  for (const box of document.querySelectorAll(".op-transfer-target")) box.hidden = box.dataset.to !== kind;
  $("transfer-consult").hidden = kind !== "operator";
  $("transfer-error").textContent = "";
}

async function openTransfer() {
  if ($("btn-transfer").disabled) return;
  const dialog = $("transfer-dialog");
  $("transfer-error").textContent = "";
  $("transfer-comment").value = "";
  $("transfer-number").value = "";
  try {
    targets = await api("GET", "/api/workplace/transfer-targets", null, { quiet: true });
  } catch (err) {
    toast(err.detail || err.message, "error");
    return;
  }
  const ops = $("transfer-operator");
  ops.replaceChildren(...(targets.operators.length ? targets.operators.map((o) => el("option", {
    value: o.id, disabled: o.state !== "ready" || o.phone_online === false, dataset: { state: o.state } },
    `${o.name} — ${stateLabel(o)}${o.phone_online === false ? " · " + t("operator.transfer.phone_off") : ""}`))
    : [el("option", { disabled: true, value: "" }, t("operator.transfer.nobody"))]));
  const firstReady = targets.operators.find((o) => o.state === "ready" && o.phone_online !== false);
  if (firstReady) ops.value = String(firstReady.id);
  $("transfer-pool").replaceChildren(...targets.pools.map((p) => el("option", { value: p.id },
    t("operator.transfer.group", { name: p.name, ready: p.ready, members: p.members }))));
  $("transfer-skill").replaceChildren(...targets.skills.map((p) => el("option", { value: p.id },
    t("operator.transfer.group", { name: p.name, ready: p.ready, members: p.members }))));
  $("transfer-external-kind").hidden = !targets.external_allowed;
  document.querySelector("#transfer-form input[name=to][value=operator]").checked = true;
  showTransferKind();
  dialog.showModal();
}

function transferBody() {
  const kind = transferKind();
  // the call on screen: the engine refuses a transfer of any other call (one that ended and was followed by the next)
  const body = { to: kind, comment: $("transfer-comment").value, attempt_id: state.call ? state.call.attempt_id : null };
  if (kind === "operator") {
    if (!$("transfer-operator").value) return [null, t("operator.transfer.need_operator")];
    body.operator_id = Number($("transfer-operator").value);
  } else if (kind === "pool") {
    if (!$("transfer-pool").value) return [null, t("operator.transfer.need_pool")];
    body.pool_id = Number($("transfer-pool").value);
  } else if (kind === "skill") {
    if (!$("transfer-skill").value) return [null, t("operator.transfer.need_skill")];
    body.skill_id = Number($("transfer-skill").value);
    body.min_level = Math.max(1, Number($("transfer-level").value) || 1);
  } else {
    const number = $("transfer-number").value.trim();
    if (!number) return [null, t("operator.transfer.need_number")];
    body.number = number;
  }
  return [body, null];
}

async function sendTransfer(consult) {
  const [body, problem] = transferBody();
  const error = $("transfer-error");
  if (problem) { error.textContent = problem; return; }
  busy = true;
  for (const id of ["transfer-blind", "transfer-consult"]) $(id).disabled = true;
  try {
    if (consult) await api("POST", "/api/workplace/consult", { operator_id: body.operator_id, comment: body.comment, attempt_id: body.attempt_id }, { quiet: true });
    else await api("POST", "/api/workplace/transfer", body, { quiet: true });
    $("transfer-dialog").close();
    toast(consult ? t("operator.transfer.consulting") : t("operator.transfer.done"), "ok", 2500);
  } catch (err) {
    error.textContent = err.errors && err.errors.length ? err.errors.map((x) => reasonText(x.reason)).join("; ")
      : reasonText(err.detail || err.message);
  } finally {
    busy = false;
    for (const id of ["transfer-blind", "transfer-consult"]) $(id).disabled = false;
    soon(0);
  }
}

// ---- live events --------------------------------------------------------------------------------------------------
function onEvent(event) {
  if (!state) { soon(); return; }
  const mine = event.operator_id === state.operator_id;
  const myCall = state.call && event.attempt_id === state.call.attempt_id;
  switch (event.type) {
    case "OperatorStateChanged":
      if (mine) {
        // the status changes on screen at once; the details (call, card) follow with the state
        state.state = event.state;
        state.reason = event.reason;
        state.seconds_in_state = 0;
        fetchedAt = Date.now();
        if (event.attempt_id === null || !state.call || state.call.attempt_id !== event.attempt_id) state.call = null;
        render();
        soon();
      }
      break;
    case "CommandFailed":
      // a refusal of our own request is shown where it was made; this one came from elsewhere (a supervisor)
      if (mine && !busy) toast(reasonText(event.reason), "error");
      if (mine) soon();
      break;
    case "PreviewStarted": case "PreviewEnded":
      if (mine) soon();
      break;
    case "CallPlaced": case "CallRinging": case "CallAnswered": case "CallConnected": case "CallEnded":
    case "CallOnHold": case "AttemptFinished": case "CallTransferred":
      if (mine || myCall) soon();
      if (event.type === "AttemptFinished" && (mine || myCall)) sideSoon();
      break;
    case "CampaignStatusChanged": case "CampaignFinished": case "CampaignAutoPaused":
      soon(300);
      break;
    case "EngineStarted": case "EngineStopped":
      soon(300);
      sideSoon(3000);  // a restarted engine hands conversations it cut off back for their result
      break;
    default:
      break;
  }
}

function onLiveState(st) {
  const node = $("live-state");
  node.textContent = st === "online" ? t("live.online") : t("live.offline");
  node.classList.toggle("offline", st !== "online");
}

// ---- my calls waiting for a result, my callbacks, my day ------------------------------------------------------------
const campaignCodes = new Map();  // campaign id → Promise<codes>
let sideTimer = null;
let sideSeq = 0;

function codesOf(campaignId) {
  if (!campaignCodes.has(campaignId)) {
    const p = api("GET", `/api/panels/campaigns/${campaignId}/codes`, null, { quiet: true })
      .catch(() => { campaignCodes.delete(campaignId); return []; });
    campaignCodes.set(campaignId, p);
  }
  return campaignCodes.get(campaignId);
}

async function refreshSide() {
  clearTimeout(sideTimer);
  sideTimer = null;
  const seq = ++sideSeq;
  const [pending, callbacks, day] = await Promise.all([
    api("GET", "/api/workplace/results-pending", null, { quiet: true }).catch(() => null),
    api("GET", "/api/panels/my-callbacks", null, { quiet: true }).catch(() => null),
    api("GET", "/api/panels/my-day", null, { quiet: true }).catch(() => null),
  ]);
  if (seq !== sideSeq) return;
  if (pending) await renderPending(pending);
  if (callbacks) renderCallbacks(callbacks);
  if (day) renderDay(day);
}

function sideSoon(ms = 1500) {
  if (sideTimer === null) sideTimer = setTimeout(refreshSide, ms);
}

async function renderPending(items) {
  const box = $("pending-box");
  box.hidden = !items.length;
  $("pending-count").textContent = items.length ? String(items.length) : "";
  const list = $("pending");
  const rows = await Promise.all(items.map(async (a) => {
    const codes = shownCodes({ codes: (await codesOf(a.campaign_id)).filter((c) => c.system_key !== "engine_restarted") });
    const comment = el("input", { type: "text", maxlength: 4000, class: "op-pending-comment",
      placeholder: t("operator.comment"), "aria-label": t("operator.comment") });
    const error = el("span", { class: "form-error", role: "alert" });
    const buttons = codes.map((c) => el("button", { type: "button", class: "code oc-" + c.category, dataset: { id: c.id },
      onclick: async (e) => {
        const all = e.currentTarget.parentElement.querySelectorAll("button");
        all.forEach((b) => { b.disabled = true; });
        error.textContent = "";
        try {
          await api("POST", `/api/workplace/results-pending/${a.id}`, { completion_code_id: c.id, comment: comment.value }, { quiet: true });
          toast(t("operator.pending.saved", { number: a.number }), "ok", 2500);
          refreshSide();
        } catch (err) {
          error.textContent = err.errors && err.errors.length ? err.errors.map((x) => x.reason).join("; ") : err.message;
          all.forEach((b) => { b.disabled = false; });
        }
      } }, c.name));
    return el("li", { class: "op-pending-item", dataset: { attempt: a.id } },
      el("div", { class: "op-pending-head" },
        el("b", { class: "op-number" }, a.number), " ",
        el("span", { class: "muted" }, [a.campaign_name || "", fmtDateTimeIn(a.queued_at, window.LANG)].filter(Boolean).join(" · "))),
      el("div", { class: "op-codes", role: "group", "aria-label": t("operator.codes") }, buttons),
      comment, error);
  }));
  list.replaceChildren(...rows);
}

function renderCallbacks(items) {
  const body = $("callbacks").tBodies[0];
  $("callbacks-count").textContent = items.length ? String(items.length) : "";
  if (!items.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "dt-empty" }, t("operator.callbacks.none"))));
    return;
  }
  body.replaceChildren(...items.map((cb) => el("tr", { class: cb.overdue ? "overdue" : null, dataset: { id: cb.id } },
    el("td", { class: "op-cb-when" }, fmtDateTimeIn(cb.window_start, window.LANG),
      cb.overdue ? el("span", { class: "pill op-overdue" }, t("operator.callbacks.overdue")) : null),
    el("td", {}, el("span", { class: "op-number" }, cb.number), el("div", { class: "muted" }, cb.campaign_name)),
    el("td", {}, t("operator.callbacks.kind." + cb.kind)),
    el("td", { class: "comment" }, cb.comment || el("span", { class: "muted" }, "—"),
      el("button", { type: "button", class: "small op-cb-dial", "data-action": "callback-dial", title: t("operator.callbacks.dial_hint"),
        onclick: () => prepareDial(cb) }, t("operator.callbacks.dial"))))));
}

// a callback into the manual dial form (campaign, number, contact): the operator places it with one more press
function prepareDial(cb) {
  if (!$("dial-box").hidden && [...$("dial-campaign").options].some((o) => o.value === String(cb.campaign_id))) {
    $("dial-campaign").value = String(cb.campaign_id);
    $("dial-number").value = cb.number;
    $("dial-contact").value = cb.contact_id ?? "";
    $("btn-dial").focus();
  } else {
    toast(t("operator.callbacks.dial_later"), "info", 3000);
  }
}

function renderDay(day) {
  const figures = [
    ["operator.day.calls", String(day.calls)],
    ["operator.day.conversations", String(day.conversations)],
    ["operator.day.talk", fmtDuration(day.talk_s)],
    ["operator.day.avg_talk", fmtDuration(day.avg_talk_s)],
    ["operator.day.callbacks", String(day.callbacks_booked)],
  ];
  $("day").replaceChildren(...figures.map(([id, value]) => el("div", { class: "op-figure", dataset: { figure: id.split(".").pop() } },
    el("b", {}, value), el("span", {}, t(id)))));
  const codes = day.codes.slice(0, 6);
  $("day-codes").replaceChildren(...codes.map((c) => el("span", { class: `pill oc-${c.category}` },
    (c.name || t("outcome." + c.category)) + " " + c.count)));
}

// ---- start --------------------------------------------------------------------------------------------------------
function start() {
  $("btn-ready").addEventListener("click", () => command("/api/workplace/ready"));
  $("btn-offline").addEventListener("click", () => command("/api/workplace/offline"));
  $("btn-pause").addEventListener("click", () => toggle("btn-pause", "pause-menu"));
  $("btn-help").addEventListener("click", () => toggle("btn-help", "help"));
  $("btn-hangup").addEventListener("click", () => command("/api/workplace/hangup"));
  $("btn-confirm").addEventListener("click", () => command("/api/workplace/preview/confirm"));
  $("btn-skip").addEventListener("click", () => command("/api/workplace/preview/skip"));
  $("btn-complete").addEventListener("click", complete);
  $("callback-clear").addEventListener("click", () => { $("callback-at").value = ""; });
  for (const b of document.querySelectorAll("[data-postpone]")) {
    b.addEventListener("click", () => postpone(Number(b.dataset.postpone)));
  }
  $("dial-form").addEventListener("submit", dial);
  $("btn-transfer").addEventListener("click", openTransfer);
  for (const r of document.querySelectorAll("#transfer-form input[name=to]")) r.addEventListener("change", showTransferKind);
  $("transfer-blind").addEventListener("click", () => sendTransfer(false));
  $("transfer-consult").addEventListener("click", () => sendTransfer(true));
  $("transfer-close").addEventListener("click", () => $("transfer-dialog").close());
  $("btn-consult-complete").addEventListener("click", () => command("/api/workplace/consult/complete", {},
    t("operator.transfer.done")));
  $("btn-consult-cancel").addEventListener("click", () => command("/api/workplace/consult/cancel"));
  $("auto-answer").addEventListener("change", (e) => setAutoAnswer(e.target.checked));
  const ready = $("auto-ready");
  ready.checked = autoReady();
  ready.addEventListener("change", () => localStorage.setItem(AUTO_READY_KEY, ready.checked ? "1" : "0"));
  document.addEventListener("keydown", onKey);
  document.addEventListener("click", (e) => {
    if (!e.target.closest(".op-pause") && !e.target.closest(".op-help")) closeMenus();
  });
  live(["operators", "calls", "campaigns", "engine", "CallTransferred"], onEvent,
    { onReconnect: () => { refresh(); refreshSide(); }, onState: onLiveState });
  setInterval(tick, 250);
  // a safety net for a missed event (the stream itself recovers by onReconnect)
  setInterval(() => { if (document.visibilityState === "visible") soon(0); }, 30000);
  setInterval(() => { if (document.visibilityState === "visible") sideSoon(0); }, 60000);
  refresh();
  refreshSide();
}

start();
