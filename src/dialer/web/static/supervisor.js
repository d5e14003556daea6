// The supervisor's live floor (/supervisor) and the call detail card (/supervisor/attempts/{id}).
//
// startFloor(root): reads GET /api/monitoring/live, then follows /live/events: rows are patched from the events
// (operator states, calls in progress, today's outcomes, campaign statuses, SIP phones, trunks, missed offers);
// the snapshot is read again on reconnection, every SAFETY_MS, and shortly after events whose effect on the
// derived figures (talk time, completion codes, dialable contacts) only the server can compute. How the snapshot,
// the events and the page's actions change the floor's state is supervisor_floor.js (no DOM); this module does
// the requests and the timers and renders what changed.
// showAttempt(container, id): renders one attempt's card (GET /api/attempts/{id}) into container.
// The floor also lists the conversations an engine crash cut off, waiting for their result
// (GET /api/monitoring/attempts?result_pending=true); a supervisor who may control operators records the result
// with the campaign's code buttons (POST /api/attempts/{id}/result). A running campaign that places no calls says
// why (its idle_reasons, times in the campaign's time zone); an operator forced to pause during a call shows the
// pause pending.
import { api, live, t, el, toast, fmtDuration, fmtDateTime, idleText, naturalCompare } from "./app.js";
import { Floor, OUTCOMES, RECENT, abandonInterval, callGroups, overCap } from "./supervisor_floor.js";

const SAFETY_MS = 10000;
const FOLLOW_UP_MS = 1200;
const SETTLE_MS = 3500;

// ---- small helpers ----------------------------------------------------------------------------------------------
function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleTimeString(window.LANG === "en" ? "en-GB" : "ru-RU");
}

function fmtPct(x) {
  return (Math.round(Number(x || 0) * 100) / 100).toLocaleString(window.LANG === "en" ? "en-GB" : "ru-RU") + "%";
}

function dash() { return el("span", { class: "muted" }, "—"); }

function stateLabel(state) { return t("status." + state); }

// the label of a value under a message id prefix; the value itself when the catalogue has no entry for it
function label(prefix, value) {
  if (value === null || value === undefined || value === "") return "";
  const id = prefix + value;
  const text = t(id);
  return text === id ? String(value) : text;
}

function campaignStatusLabel(status) { return label("supervisor.cstatus.", status); }

function reasonLabel(reason) { return label("supervisor.reason.", reason); }

// SIP answers a call card shows with their meaning ("нет ответа · SIP 408")
const SIP_MEANINGS = new Set([403, 404, 408, 410, 480, 484, 486, 487, 488, 500, 502, 503, 504, 600, 603, 604]);

function hangupText(a) {
  const side = a.hangup_side ? label("supervisor.side.", a.hangup_side) : "";
  let cause = a.hangup_cause ? label("supervisor.cause.", a.hangup_cause) : "";
  if (a.sip_code && SIP_MEANINGS.has(a.sip_code)) {
    // the carrier's reason phrase ("486 Busy Here", "no answer") says what the code says: the code's meaning instead
    cause = t("supervisor.sip_code." + a.sip_code);
  }
  return [side, cause, a.sip_code ? `SIP ${a.sip_code}` : ""].filter(Boolean).join(" · ");
}

// an idle reason in words, its times in the campaign's time zone
function idleWords(reason, zone) { return idleText(reason, zone, t, window.LANG); }

// ---- the confirmation dialog --------------------------------------------------------------------------------------
function ask(message, { input = null, okLabel = null } = {}) {
  const dialog = document.getElementById("sup-dialog");
  const field = document.getElementById("sup-dialog-input");
  const label = document.getElementById("sup-dialog-label");
  document.getElementById("sup-dialog-text").textContent = message;
  document.getElementById("sup-dialog-ok").textContent = okLabel || t("supervisor.confirm.ok");
  label.hidden = !input;
  field.required = !!input;
  field.value = "";
  if (input) document.getElementById("sup-dialog-label-text").textContent = input;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "ok") resolve(null);
      else resolve(input ? field.value.trim() : "");
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    (input ? field : document.getElementById("sup-dialog-ok")).focus();
  });
}

// ---- the call detail card ------------------------------------------------------------------------------------------
export async function showAttempt(container, id, { isCurrent = () => true } = {}) {
  container.replaceChildren(el("p", { class: "muted" }, t("common.loading")));
  let a;
  try {
    a = await api("GET", `/api/attempts/${id}`, null, { quiet: true });
  } catch (err) {
    if (!isCurrent()) return null;
    container.replaceChildren(el("p", { class: "form-error" }, err.status === 404 ? t("supervisor.card.not_found", { id }) : err.message));
    return null;
  }
  if (!isCurrent()) return null; // something else was opened meanwhile
  renderAttempt(container, a);
  return a;
}

function renderAttempt(container, a) {
  const facts = [
    ["supervisor.card.campaign", a.campaign_name || `#${a.campaign_id}`],
    ["supervisor.card.number", a.number],
    ["supervisor.card.direction", t("supervisor.direction." + (a.direction || "outbound"))],
    ["supervisor.card.contact", a.contact_id ? `#${a.contact_id}` : null],
    ["supervisor.card.operator", a.operator_name],
    ["supervisor.card.code", a.completion_code],
    ["supervisor.card.caller_id", a.caller_id],
    ["supervisor.card.answered_by", a.answered_by ? label("supervisor.answered_by.", a.answered_by) : null],
    ["supervisor.card.hangup", hangupText(a) || null],
    ["supervisor.card.waited", a.waited_s !== null ? fmtSeconds(a.waited_s) : null],
    ["supervisor.card.abandoned", a.waited_s !== null ? (a.abandoned ? t("common.yes") : t("common.no")) : null],
    ["supervisor.card.ring", a.ring_s !== null ? fmtSeconds(a.ring_s) : null],
    ["supervisor.card.talk", a.talk_s !== null ? fmtSeconds(a.talk_s) : null],
    ["supervisor.card.wrap_up", a.wrap_up_s !== null ? fmtSeconds(a.wrap_up_s) : null],
    ["supervisor.card.comment", a.comment || null],
  ].filter(([, v]) => v !== null && v !== undefined && v !== "");
  const head = el("div", { class: "sup-card-head" },
    el("b", {}, `#${a.id}`), " ",
    a.outcome ? el("span", { class: `pill oc-${a.outcome}` }, t("outcome." + a.outcome))
      : el("span", { class: "pill st-in_call" }, label("supervisor.astate.", a.state)),
    " ", el("span", { class: "muted" }, fmtDateTime(a.timeline.length ? a.timeline[0].at : null)));
  const total = a.timeline.reduce((s, e) => s + (e.duration_s || 0), 0) || 1;
  const timeline = el("table", { class: "grid sup-timeline" },
    el("thead", {}, el("tr", {}, el("th", {}, t("supervisor.card.stage")), el("th", {}, t("supervisor.card.at")),
      el("th", { class: "num" }, t("supervisor.card.duration")), el("th", {}, ""))),
    el("tbody", {}, a.timeline.map((e) => el("tr", { dataset: { stage: e.stage } },
      el("td", {}, label("supervisor.stage.", e.stage)),
      el("td", {}, fmtTime(e.at)),
      el("td", { class: "num" }, e.duration_s !== null ? fmtSeconds(e.duration_s) : ""),
      el("td", { class: "sup-barcell" }, e.duration_s !== null
        ? el("span", { class: `sup-stagebar stage-${e.stage}`, style: { width: Math.max(2, 100 * e.duration_s / total) + "%" } })
        : null)))));
  const periods = (a.operator_periods || []).map((p) => el("tr", {},
    el("td", {}, el("span", { class: `pill st-${p.state}` }, stateLabel(p.state)), " ", reasonLabel(p.reason)),
    el("td", {}, fmtTime(p.started_at)),
    el("td", {}, p.ended_at ? fmtTime(p.ended_at) : "…"),
    el("td", { class: "num" }, p.ended_at ? fmtSeconds((new Date(p.ended_at) - new Date(p.started_at)) / 1000) : "")));
  const card = a.card || {};
  const fields = Object.entries(card.fields || {});
  const history = (card.history || []).filter((h) => h.attempt_id !== a.id);
  container.replaceChildren(...[
    head,
    el("dl", { class: "sup-facts" }, facts.map(([k, v]) => [el("dt", {}, t(k)), el("dd", {}, v)])),
    el("h3", {}, t("supervisor.card.timeline")),
    a.timeline.length ? timeline : el("p", { class: "muted" }, "—"),
    (a.transfers || []).length ? [el("h3", {}, t("supervisor.card.transfers")),
      el("table", { class: "grid sup-transfers" },
        el("thead", {}, el("tr", {}, el("th", {}, t("supervisor.card.at")), el("th", {}, t("supervisor.card.transfer_kind")),
          el("th", {}, t("supervisor.card.transfer_from")), el("th", {}, t("supervisor.card.transfer_to")),
          el("th", {}, t("supervisor.card.transfer_result")), el("th", {}, t("supervisor.card.comment")))),
        el("tbody", {}, a.transfers.map((x) => el("tr", { dataset: { transfer: x.id, kind: x.kind, result: x.result } },
          el("td", {}, fmtTime(x.requested_at)),
          el("td", {}, t("supervisor.transfer.kind." + x.kind), el("span", { class: "muted" }, " · " + t("supervisor.transfer.source." + x.source))),
          el("td", {}, x.from_operator_name || "—"),
          el("td", {}, transferTarget(x)),
          el("td", { title: x.detail || "" }, t("supervisor.transfer.result." + x.result)),
          el("td", { class: "comment" }, x.comment || "")))))] : null,
    periods.length ? [el("h3", {}, t("supervisor.card.operator_events")),
      el("table", { class: "grid sup-periods" },
        el("thead", {}, el("tr", {}, el("th", {}, t("supervisor.card.state")), el("th", {}, t("supervisor.card.from")),
          el("th", {}, t("supervisor.card.to")), el("th", { class: "num" }, t("supervisor.card.duration")))),
        el("tbody", {}, periods))] : null,
    fields.length ? [el("h3", {}, t("supervisor.card.client")),
      el("dl", { class: "sup-facts" }, fields.map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v ?? ""))]))] : null,
    history.length ? [el("h3", {}, t("supervisor.card.history")),
      el("table", { class: "grid sup-history" }, el("tbody", {}, history.map((h) => el("tr", {},
        el("td", {}, fmtDateTime(h.at)), el("td", {}, h.number),
        el("td", {}, h.outcome ? el("span", { class: `pill oc-${h.outcome}` }, t("outcome." + h.outcome)) : ""),
        el("td", {}, h.completion_code || ""), el("td", {}, h.operator || "")))))] : null,
  ].flat().filter(Boolean));
}

// a call's transfer on the floor: "transferring" while it is carried out, "transferred" once it was (a rescue from a
// dead phone says so)
function transferPill(a) {
  const kind = a.transfer_kind || (a.transfers ? "operator" : null);
  if (!kind) return "";
  const pending = a.transfer_result === "pending";
  const id = kind === "rescue" ? (pending ? "supervisor.transfer.rescuing" : "supervisor.transfer.rescued")
    : (pending ? "supervisor.transfer.pending" : "supervisor.transfer.done");
  return el("span", { class: "pill sup-transfer" + (pending ? " pending" : ""), dataset: { transfer: kind },
    title: t("supervisor.transfer.kind." + kind) }, t(id));
}

function transferTarget(x) {
  if (x.to_operator_name) return x.to_operator_name;
  if (x.to_pool_name) return t("supervisor.transfer.to_pool", { name: x.to_pool_name });
  if (x.to_skill_name) return t("supervisor.transfer.to_skill", { name: x.to_skill_name });
  if (x.to_number) return x.to_number;
  return "—";
}

function fmtSeconds(s) {
  const n = Number(s);
  if (n < 60) return (Math.round(n * 10) / 10).toLocaleString(window.LANG === "en" ? "en-GB" : "ru-RU") + " " + t("supervisor.sec");
  return fmtDuration(n);
}

// ---- the floor ------------------------------------------------------------------------------------------------------
export function startFloor(root) {
  const can = JSON.parse(root.dataset.can || "{}");
  const reasons = JSON.parse(root.dataset.reasons || "[]");
  const S = new Floor({ t, lang: window.LANG }); // the state; rendered below
  const zones = new Map(); // campaign id → its time zone (the idle reasons' times are the campaign's local time)
  const opTable = document.getElementById("sup-operators");
  const campTable = document.getElementById("sup-campaigns");
  const alertList = document.getElementById("sup-alerts");
  const recentList = document.getElementById("sup-recent");
  const liveState = document.getElementById("sup-live");
  const drawer = document.getElementById("sup-drawer");
  const popover = document.getElementById("sup-popover");
  let loading = null;
  let followUp = null;
  let settle = null;
  let recentTimer = null;

  // ---- tables: built once, rows patched ----
  const opCols = [["name", "supervisor.col.operator"], ["state", "supervisor.col.state"], ["reason", "supervisor.col.reason"],
    ["sip", "supervisor.col.sip"], ["campaign", "supervisor.col.campaign"], ["client", "supervisor.col.client"],
    ["calls", "supervisor.col.calls", "num"], ["talk", "supervisor.col.talk", "num"], ["codes", "supervisor.col.codes"],
    ["pools", "supervisor.col.pools"], ...(can.operators_control ? [["actions", "supervisor.col.actions"]] : [])];
  const campCols = [["name", "supervisor.col.campaign"], ["status", "supervisor.col.status"], ["left", "supervisor.col.left", "num"],
    ["ringing", "supervisor.col.ringing", "num"], ["waiting", "supervisor.col.waiting", "num"], ["talking", "supervisor.col.talking", "num"],
    ["outcomes", "supervisor.col.outcomes"], ["abandon", "supervisor.col.abandon"], ["ratio", "supervisor.col.ratio", "num"],
    ["autostop", "supervisor.col.autostop"], ...(can.campaigns_control ? [["actions", "supervisor.col.actions"]] : [])];
  const header = (cols) => el("thead", {}, el("tr", {}, cols.map(([key, label, cls]) =>
    el("th", { class: cls || null, "data-key": key, title: t(label + ".hint") !== label + ".hint" ? t(label + ".hint") : null }, t(label)))));
  const opBody = el("tbody");
  const campBody = el("tbody");
  opTable.replaceChildren(header(opCols), opBody);
  campTable.replaceChildren(header(campCols), campBody);

  function cellsOf(tr) {
    const out = {};
    for (const td of tr.children) out[td.dataset.key] = td;
    return out;
  }

  // ---- operators ----
  function opRow(op) {
    let tr = opBody.querySelector(`tr[data-id="${op.id}"]`);
    if (!tr) {
      tr = el("tr", { dataset: { id: op.id } }, opCols.map(([key, , cls]) => el("td", { class: cls || null, dataset: { key } })));
      if (can.operators_control) cellsOf(tr).actions.append(opActions(op));
    }
    const c = cellsOf(tr);
    tr.dataset.state = op.state;
    c.name.replaceChildren(el("button", { type: "button", class: "link sup-opname", title: t("supervisor.latest_of", { name: op.name }),
      onclick: () => openList(t("supervisor.latest_of", { name: op.name }), { operator_id: op.id }) }, op.name));
    c.state.replaceChildren(el("span", { class: `pill st-${op.state}` }, stateLabel(op.state)), " ",
      el("span", { class: "sup-time", dataset: { since: op.since || "" } }, op.since ? fmtDuration(S.elapsed(op.since)) : ""));
    c.reason.replaceChildren(op.state === "paused" ? reasonLabel(op.reason) : "",
      op.pause_pending && op.state !== "paused" ? el("span", { class: "pill sup-pause-pending", title: reasonLabel(op.pause_pending) },
        t("supervisor.pause_pending", { reason: reasonLabel(op.pause_pending) })) : "");
    c.sip.replaceChildren(sipBadge(op.sip));
    c.campaign.replaceChildren(op.campaign_id ? (op.campaign_name || S.campaignName(op.campaign_id)) : "");
    const number = op.number || (op.attempt_id ? S.numbers.get(op.attempt_id) : null);
    c.client.replaceChildren(op.attempt_id
      ? el("button", { type: "button", class: "link sup-open", title: t("supervisor.card.open"),
        onclick: () => openAttempt(op.attempt_id) }, number || `#${op.attempt_id}`)
      : "");
    c.calls.textContent = String(op.calls_today ?? 0);
    c.talk.textContent = fmtDuration(op.talk_s_today || 0);
    const codes = op.codes_today || [];
    c.codes.replaceChildren(...codes.slice(0, 3).map((k) => el("span", { class: `sup-code oc-${k.category}`,
      title: `${k.name || t("outcome." + k.category)}: ${k.count}` }, `${k.name || t("outcome." + k.category)} ${k.count}`)),
    codes.length > 3 ? el("span", { class: "muted", title: codes.slice(3).map((k) => `${k.name || t("outcome." + k.category)}: ${k.count}`).join("\n") }, `+${codes.length - 3}`) : "");
    c.codes.title = codes.map((k) => `${k.name || t("outcome." + k.category)}: ${k.count}`).join("\n");
    const names = (op.pool_ids || []).map((id) => S.poolName(id));
    const poolText = names.length ? names.join(", ") : "—";
    c.pools.replaceChildren(can.pools_edit
      ? el("button", { type: "button", class: "link sup-pools-edit", title: t("supervisor.pools.edit"),
        "aria-haspopup": "true", onclick: (e) => openPools(op.id, e.currentTarget) }, poolText, " ✎")
      : el("span", { class: names.length ? "" : "muted" }, poolText));
    return tr;
  }

  function opActions(op) {
    const select = el("select", { class: "sup-action", "aria-label": t("supervisor.action.label") },
      el("option", { value: "" }, t("supervisor.action.choose")),
      el("option", { value: "ready" }, t("supervisor.action.ready")),
      el("optgroup", { label: t("supervisor.action.pause") },
        reasons.map((r) => el("option", { value: "pause:" + r }, reasonLabel(r)))),
      el("option", { value: "offline" }, t("supervisor.action.offline")),
      el("option", { value: "release" }, t("supervisor.action.release")),
      el("option", { value: "transfer" }, t("supervisor.action.transfer")));
    select.addEventListener("change", async () => {
      const value = select.value;
      select.value = "";
      if (value === "transfer") await openTransfer(op.id);
      else if (value) await forceOperator(op.id, value);
    });
    return select;
  }

  // ---- a supervisor transfers the customer of an operator's conversation (POST /api/supervisor/.../transfer) ----
  const transferDialog = document.getElementById("sup-transfer");
  let transferFrom = null;

  function transferKind() { return transferDialog.querySelector("input[name=to]:checked").value; }

  function showTransferKind() {
    for (const box of transferDialog.querySelectorAll("label[data-to]")) box.hidden = box.dataset.to !== transferKind();
    document.getElementById("sup-transfer-error").textContent = "";
  }

  async function openTransfer(id) {
    const op = S.ops.get(id);
    if (!op || op.state !== "in_call") { toast(t("supervisor.transfer.no_call", { name: op ? op.name : `#${id}` }), "error"); return; }
    let targets;
    try {
      targets = await api("GET", "/api/supervisor/transfer-targets", null, { quiet: true });
    } catch (err) { toast(err.detail || err.message, "error"); return; }
    transferFrom = id;
    document.getElementById("sup-transfer-title").textContent = t("supervisor.transfer.title", { name: op.name });
    const ready = targets.operators.filter((o) => o.id !== id && o.state === "ready" && o.phone_online !== false);
    document.getElementById("sup-transfer-operator").replaceChildren(...(ready.length
      ? ready.map((o) => el("option", { value: o.id }, o.name))
      : [el("option", { value: "", disabled: true }, t("supervisor.transfer.nobody_ready"))]));
    document.getElementById("sup-transfer-pool").replaceChildren(...targets.pools.map((p) => el("option", { value: p.id },
      t("supervisor.transfer.group", { name: p.name, ready: p.ready, members: p.members }))));
    document.getElementById("sup-transfer-external-kind").hidden = !targets.external_allowed;
    document.getElementById("sup-transfer-number").value = "";
    document.getElementById("sup-transfer-comment").value = "";
    transferDialog.querySelector("input[name=to][value=operator]").checked = true;
    showTransferKind();
    transferDialog.showModal();
  }

  async function sendTransfer() {
    const kind = transferKind();
    const error = document.getElementById("sup-transfer-error");
    const body = { to: kind, comment: document.getElementById("sup-transfer-comment").value };
    if (kind === "operator") body.operator_id = Number(document.getElementById("sup-transfer-operator").value) || null;
    if (kind === "pool") body.pool_id = Number(document.getElementById("sup-transfer-pool").value) || null;
    if (kind === "external") body.number = document.getElementById("sup-transfer-number").value.trim();
    if ((kind === "operator" && !body.operator_id) || (kind === "pool" && !body.pool_id) || (kind === "external" && !body.number)) {
      error.textContent = t("supervisor.transfer.need_target");
      return;
    }
    try {
      await api("POST", `/api/supervisor/operators/${transferFrom}/transfer`, body, { quiet: true });
      transferDialog.close();
      toast(t("supervisor.transfer.sent"), "ok");
    } catch (err) {
      error.textContent = err.errors && err.errors.length ? err.errors.map((x) => x.reason).join("; ") : (err.detail || err.message);
    }
  }
  for (const r of transferDialog.querySelectorAll("input[name=to]")) r.addEventListener("change", showTransferKind);
  document.getElementById("sup-transfer-ok").addEventListener("click", sendTransfer);

  async function forceOperator(id, value) {
    const op = S.ops.get(id);
    const name = op ? op.name : `#${id}`;
    try {
      let result;
      if (value === "release") {
        if (await ask(t("supervisor.confirm.release", { name }), { okLabel: t("supervisor.action.release") }) === null) return;
        result = await api("POST", `/api/supervisor/operators/${id}/release`);
      } else if (value === "offline") {
        if (await ask(t("supervisor.confirm.offline", { name }), { okLabel: t("supervisor.action.offline") }) === null) return;
        result = await api("POST", `/api/supervisor/operators/${id}/state`, { state: "offline" });
      } else if (value === "ready") {
        result = await api("POST", `/api/supervisor/operators/${id}/state`, { state: "ready" });
      } else {
        result = await api("POST", `/api/supervisor/operators/${id}/state`, { state: "paused", reason: value.slice(6) });
      }
      if (result && result.queued) {
        toast(t("supervisor.queued"), "info");
        return;
      }
      toast(t("supervisor.done", { name }), "ok");
      show(S.operatorForced(id, result, value.startsWith("pause:") ? value.slice(6) : null));
    } catch { /* shown by api() */ }
  }

  function sipBadge(sip) {
    if (!sip) return dash();
    const ok = sip.online && sip.reachable;
    const state = !sip.online ? "unregistered" : (!sip.reachable ? "unreachable" : "registered");
    return el("span", { class: `sup-sip ${ok ? "ok" : "bad"}`, dataset: { state },
      title: [sip.login, sip.detail, sip.changed_at ? fmtDateTime(sip.changed_at) : ""].filter(Boolean).join(" · ") },
    el("span", { class: "dot" }), " ", t("supervisor.sip." + state));
  }

  function renderOperators() {
    // the ones at work first, the offline ones after them; by name within each
    const ops = [...S.ops.values()].sort((a, b) => (a.state === "offline") - (b.state === "offline")
      || naturalCompare(a.name, b.name, window.LANG) || a.id - b.id);
    if (!ops.length) {
      opBody.replaceChildren(el("tr", {}, el("td", { class: "dt-empty", colspan: opCols.length }, t("supervisor.no_operators"))));
      return;
    }
    opBody.replaceChildren(...ops.map(opRow));
    renderCounts();
  }

  function patchOperator(op) {
    const tr = opBody.querySelector(`tr[data-id="${op.id}"]`);
    if (tr) opRow(op); else renderOperators();
    renderCounts();
  }

  function renderCounts() {
    const counts = S.stateCounts();
    const box = document.getElementById("sup-counts");
    box.replaceChildren(...["ready", "reserved", "ringing", "in_call", "wrap_up", "paused", "offline"]
      .filter((s) => counts[s] || ["ready", "in_call", "wrap_up", "paused"].includes(s))
      .map((s) => el("span", { class: "sup-count", dataset: { state: s }, title: stateLabel(s) },
        el("span", { class: `dot st-${s}` }), " ", stateLabel(s), " ", el("b", {}, counts[s] || 0))));
  }

  // ---- campaigns ----
  function campRow(c) {
    let tr = campBody.querySelector(`tr[data-id="${c.id}"]`);
    if (!tr) tr = el("tr", { dataset: { id: c.id } }, campCols.map(([key, , cls]) => el("td", { class: cls || null, dataset: { key } })));
    const k = cellsOf(tr);
    tr.dataset.status = c.status;
    k.name.replaceChildren(el("button", { type: "button", class: "link sup-campname", title: t("supervisor.latest_of", { name: c.name }),
      onclick: () => openList(t("supervisor.latest_of", { name: c.name }), { campaign_id: c.id }) }, c.name), " ",
      el("span", { class: "muted sup-mode" }, label("supervisor.mode.", c.dial_mode)));
    const zone = c.time_zone || zones.get(c.id);
    const idle = c.idle_reasons || [];
    k.status.replaceChildren(el("span", { class: `pill cs-${c.status}`, title: c.status_reason || "" }, campaignStatusLabel(c.status)),
      idle.length ? el("ul", { class: "sup-idle", title: zone ? t("supervisor.idle.zone", { zone }) : null },
        idle.map((r) => el("li", { dataset: { code: r.code } }, idleWords(r, zone)))) : "");
    k.left.textContent = String(c.dialable_left ?? 0);
    const group = callGroups(c.calls);
    k.ringing.textContent = String(group.ringing);
    k.waiting.textContent = String(group.waiting);
    k.waiting.classList.toggle("sup-hot", group.waiting > 0);
    k.talking.textContent = String(group.talking + group.wrap_up);
    k.talking.title = t("supervisor.talking_detail", { talking: group.talking, wrap_up: group.wrap_up });
    const out = c.outcomes_today || {};
    k.outcomes.replaceChildren(...OUTCOMES.map((cat) => el("span", { class: `sup-oc oc-${cat}${out[cat] ? "" : " zero"}`,
      dataset: { cat }, title: t("outcome." + cat) }, String(out[cat] || 0))));
    const cap = Number(c.abandon_cap_pct || 0);
    const pct = Number(c.abandon_pct || 0);
    const over = overCap(c);
    k.abandon.replaceChildren(el("div", { class: `sup-abandon${over ? " over" : ""}`,
      title: t("supervisor.abandon_detail", { abandoned: c.abandoned_today || 0, live: c.live_answers_today || 0 }) },
    el("div", { class: "sup-bar" }, el("span", { style: { width: Math.min(100, cap ? (100 * pct) / (cap * 2) : 0) + "%" } }),
      el("i", { style: { left: "50%" } })),
    el("span", { class: "sup-abandon-text" }, `${fmtPct(pct)} / ${fmtPct(cap)}`, sampleText(c))));
    k.ratio.textContent = c.dial_ratio === null || c.dial_ratio === undefined ? "—" : String(Math.round(c.dial_ratio * 100) / 100);
    k.autostop.replaceChildren(c.status === "auto_paused"
      ? el("span", { class: "sup-stop", title: c.status_reason || "" }, c.status_reason || t("supervisor.cstatus.auto_paused"))
      : (c.consecutive_errors ? el("span", { class: "sup-warn" }, t("supervisor.errors_in_row", { n: c.consecutive_errors })) : dash()));
    if (can.campaigns_control && k.actions.dataset.status !== c.status) {
      k.actions.dataset.status = c.status;
      k.actions.replaceChildren(...campActions(c));
    }
    return tr;
  }

  // the sample behind the rate, and how far the rate may be from the truth on it
  function sampleText(c) {
    const abandoned = c.abandoned_today || 0, live = c.live_answers_today || 0;
    const range = abandonInterval(abandoned, live);
    return el("span", { class: "sup-sample", title: range ? t("supervisor.abandon_interval", { low: fmtPct(range.low), high: fmtPct(range.high) }) : null },
      t("supervisor.abandon_sample", { abandoned, live }),
      range ? el("span", { class: "sup-bound" }, " · " + t("supervisor.abandon_upto", { high: fmtPct(range.high) })) : null);
  }

  function campActions(c) {
    const out = [];
    const button = (action, label, cls) => el("button", { type: "button", class: `sup-btn ${cls || ""}`, dataset: { action },
      title: t(label + ".hint") !== label + ".hint" ? t(label + ".hint") : null,
      onclick: () => campaignAction(c.id, action) }, t(label));
    if (c.status === "running") out.push(button("pause", "supervisor.action.pause_campaign"));
    if (c.status === "paused") out.push(button("resume", "supervisor.action.resume", "primary"));
    if (c.status === "auto_paused") out.push(button("acknowledge", "supervisor.action.acknowledge", "primary"));
    return out;
  }

  async function campaignAction(id, action) {
    const c = S.camps.get(id);
    const name = c ? c.name : `#${id}`;
    let body = null;
    if (action === "pause") {
      if (await ask(t("supervisor.confirm.pause", { name }), { okLabel: t("supervisor.action.pause_campaign") }) === null) return;
    } else if (action === "acknowledge") {
      const comment = await ask(t("supervisor.confirm.acknowledge", { name, reason: c ? c.status_reason : "" }),
        { input: t("supervisor.confirm.comment"), okLabel: t("supervisor.action.acknowledge") });
      if (comment === null) return;
      body = { comment };
    }
    try {
      const updated = await api("POST", `/api/campaigns/${id}/${action}`, body);
      show(S.campaignChanged(id, updated));
    } catch { /* shown by api() */ }
  }

  function renderCampaigns() {
    const camps = [...S.camps.values()];
    if (!camps.length) {
      campBody.replaceChildren(el("tr", {}, el("td", { class: "dt-empty", colspan: campCols.length }, t("supervisor.no_campaigns"))));
      return;
    }
    campBody.replaceChildren(...camps.map(campRow));
  }

  function patchCampaign(c) {
    if (campBody.querySelector(`tr[data-id="${c.id}"]`)) campRow(c); else renderCampaigns();
  }

  // ---- pool membership (a checkbox popover per operator) ----
  function openPools(opId, anchor) {
    const op = S.ops.get(opId);
    if (!op) return;
    const current = new Set(op.pool_ids || []);
    const boxes = S.pools.map((p) => el("label", { class: "sup-check" },
      el("input", { type: "checkbox", value: p.id, checked: current.has(p.id), dataset: { pool: p.name } }), " ", p.name));
    const save = el("button", { type: "button", class: "primary", onclick: async () => {
      const ids = [...popover.querySelectorAll("input[type=checkbox]")].filter((x) => x.checked).map((x) => Number(x.value));
      save.disabled = true;
      try {
        const updated = await api("PATCH", `/api/operators/${opId}`, { pool_ids: ids });
        show(S.poolsSaved(opId, updated.pool_ids));
        toast(t("supervisor.pools.saved", { name: op.name }), "ok");
        closePopover();
      } catch { save.disabled = false; }
    } }, t("supervisor.pools.save"));
    popover.replaceChildren(el("div", { class: "sup-popover-title" }, t("supervisor.pools.of", { name: op.name })),
      ...(S.pools.length ? boxes : [el("p", { class: "muted" }, t("supervisor.pools.none"))]),
      el("div", { class: "sup-dialog-buttons" }, save, el("button", { type: "button", onclick: closePopover }, t("supervisor.confirm.cancel"))));
    popover.dataset.operator = String(opId);
    popover.hidden = false;
    const r = anchor.getBoundingClientRect();
    popover.style.top = `${window.scrollY + r.bottom + 2}px`;
    popover.style.left = `${Math.max(4, Math.min(window.scrollX + r.left, window.scrollX + document.documentElement.clientWidth - popover.offsetWidth - 8))}px`;
    const first = popover.querySelector("input");
    if (first) first.focus();
  }

  function closePopover() {
    popover.hidden = true;
    delete popover.dataset.operator;
  }
  document.addEventListener("mousedown", (e) => {
    if (!popover.hidden && !popover.contains(e.target) && !e.target.closest(".sup-pools-edit")) closePopover();
  });

  // ---- alerts ----
  function renderAlerts() {
    const items = S.visibleAlerts();
    const hidden = S.hiddenAlerts();
    document.getElementById("sup-alerts-count").textContent = items.length + hidden.length ? String(items.length + hidden.length) : "";
    // "all is well" only when no condition holds: hidden warnings are still there, counted with a way back
    const rest = hidden.length ? el("li", { class: "sup-hidden" },
      el("span", { class: "sup-alert-text" }, t("supervisor.alerts_hidden", { n: hidden.length })),
      el("button", { type: "button", class: "link", onclick: () => show(S.showHidden()) }, t("supervisor.alerts_show"))) : null;
    if (!items.length) {
      alertList.replaceChildren(rest || el("li", { class: "muted sup-none" }, t("supervisor.no_alerts")));
      return;
    }
    alertList.replaceChildren(...items.map((a) => el("li", { class: `sup-alert ${a.kind}`, dataset: { key: a.key } },
      el("span", { class: "sup-alert-time" }, fmtTime(a.at)),
      el("span", { class: "sup-alert-text" }, a.text),
      el("button", { type: "button", class: "link sup-dismiss", title: t("supervisor.dismiss"), "aria-label": t("supervisor.dismiss"),
        onclick: () => show(S.dismiss(a.key)) }, "✕"))), rest || []);
  }

  // ---- conversations an engine crash cut off, waiting for their result ----
  const pendingBox = document.getElementById("sup-pending-box");
  const pendingList = document.getElementById("sup-pending");
  const codesOf = new Map(); // campaign id → Promise<codes>
  let pendingTimer = null;

  function campaignCodes(id) {
    if (!codesOf.has(id)) {
      codesOf.set(id, api("GET", `/api/panels/campaigns/${id}/codes`, null, { quiet: true })
        .catch(() => { codesOf.delete(id); return []; }));
    }
    return codesOf.get(id);
  }

  async function loadPending() {
    clearTimeout(pendingTimer);
    pendingTimer = null;
    try {
      const items = await api("GET", "/api/monitoring/attempts", null, { quiet: true, query: { result_pending: true, limit: 200 } });
      show(S.pendingLoaded(items));
    } catch { /* read again with the snapshot */ }
  }

  function pendingSoon(ms = 4000) {
    if (pendingTimer === null) pendingTimer = setTimeout(loadPending, ms);
  }

  async function renderPending() {
    const items = S.pending;
    pendingBox.hidden = !items.length;
    document.getElementById("sup-pending-count").textContent = items.length ? String(items.length) : "";
    const rows = await Promise.all(items.map(async (a) => {
      const codes = can.operators_control
        ? (await campaignCodes(a.campaign_id)).filter((c) => !c.system_key || ["answered", "answering_machine", "invalid_number"].includes(c.system_key))
        : [];
      const error = el("span", { class: "form-error", role: "alert" });
      const buttons = codes.map((c) => el("button", { type: "button", class: `sup-btn sup-code-btn oc-${c.category}`, dataset: { id: c.id },
        onclick: async (e) => {
          const all = e.currentTarget.parentElement.querySelectorAll("button");
          all.forEach((b) => { b.disabled = true; });
          try {
            await api("POST", `/api/attempts/${a.id}/result`, { completion_code_id: c.id, comment: "" }, { quiet: true });
            toast(t("supervisor.pending.saved", { number: a.number }), "ok");
            show(S.pendingRecorded(a.id));
          } catch (err) {
            error.textContent = err.errors && err.errors.length ? err.errors.map((x) => x.reason).join("; ") : err.message;
            all.forEach((b) => { b.disabled = false; });
          }
        } }, c.name));
      return el("li", { class: "sup-pending-item", dataset: { attempt: a.id } },
        el("div", {},
          el("button", { type: "button", class: "link", onclick: () => openAttempt(a.id) }, a.number), " ",
          el("span", { class: "muted" }, [a.operator_name, a.campaign_name, fmtDateTime(a.queued_at)].filter(Boolean).join(" · "))),
        buttons.length ? el("div", { class: "sup-pending-codes" }, buttons) : null, error);
    }));
    if (S.pending === items) pendingList.replaceChildren(...rows);
  }

  async function loadZones() {
    // the campaigns' time zones, for the times in their idle reasons (when the snapshot does not carry them)
    try {
      const data = await api("GET", "/api/campaigns", null, { quiet: true, query: { per_page: 1000 } });
      for (const c of data.items) zones.set(c.id, c.time_zone);
      renderCampaigns();
    } catch { /* times shown in the browser's zone */ }
  }

  // ---- the snapshot ----
  async function load() {
    if (loading) return loading;
    loading = (async () => {
      try {
        const snap = await api("GET", "/api/monitoring/live", null, { quiet: true });
        show(S.snapshot(snap));
        if (!popover.hidden && popover.dataset.operator && !S.ops.has(Number(popover.dataset.operator))) closePopover();
      } catch (err) {
        if (err && err.status === 401) location.assign("/login?next=/supervisor");
      } finally {
        loading = null;
      }
    })();
    return loading;
  }

  function soon() {
    // the server-side figures an event changes (talk time, codes, dialable contacts): read again shortly, once,
    // and once more a little later (the engine records some facts a moment after it announces them)
    clearTimeout(settle);
    settle = setTimeout(() => { settle = null; load(); }, SETTLE_MS);
    if (followUp) return;
    followUp = setTimeout(() => { followUp = null; load(); }, FOLLOW_UP_MS);
  }

  function renderEngine() {
    const box = document.getElementById("sup-engine");
    const running = S.engine && S.engine.running;
    box.className = `sup-engine ${running ? "ok" : "bad"}`;
    box.replaceChildren(el("span", { class: "dot" }), " ", t(running ? "supervisor.engine.running" : "supervisor.engine.stopped"));
  }

  // ---- recent calls: read from the API, then followed by the call events ----
  async function loadRecent() {
    try {
      const items = await api("GET", "/api/monitoring/attempts", null, { quiet: true, query: { limit: RECENT } });
      show(S.recentLoaded(items));
    } catch { /* the next event tries again */ }
  }

  function renderRecent() {
    const items = S.recent;
    recentList.replaceChildren(...(items.length ? items.map((a) => el("li", {},
      el("button", { type: "button", class: "link sup-recent-row", dataset: { id: a.id, state: a.state }, onclick: () => openAttempt(a.id) },
        el("span", { class: "sup-alert-time" }, fmtTime(a.queued_at)), " ",
        el("span", { class: "sup-recent-number" }, a.number), " ",
        a.direction === "inbound" ? el("span", { class: "pill sup-inbound" }, t("supervisor.direction.inbound")) : "",
        transferPill(a),
        a.outcome ? el("span", { class: `pill oc-${a.outcome}` }, t("outcome." + a.outcome))
          : el("span", { class: "pill st-in_call" }, label("supervisor.astate.", a.state)),
        a.operator_name ? el("span", { class: "muted" }, " " + a.operator_name) : ""))) : [el("li", { class: "muted sup-none" }, "—")]));
  }

  function recentSoon() {
    // names and codes come from the API; once the engine has recorded the attempt
    if (recentTimer) return;
    recentTimer = setTimeout(() => { recentTimer = null; loadRecent(); }, SETTLE_MS);
  }

  // ---- the call detail drawer and the search ----
  let drawerSeq = 0; // what the drawer shows: a late answer for an earlier request is dropped
  async function openAttempt(id) {
    const seq = ++drawerSeq;
    drawer.hidden = false;
    document.getElementById("sup-drawer-title").textContent = `${t("supervisor.card.title")} #${id}`;
    document.getElementById("sup-drawer-link").href = `/supervisor/attempts/${id}`;
    document.getElementById("sup-drawer-link").hidden = false;
    await showAttempt(document.getElementById("sup-drawer-body"), id, { isCurrent: () => seq === drawerSeq });
  }

  function closeDrawer() {
    drawerSeq += 1;
    drawer.hidden = true;
    document.getElementById("sup-drawer-body").replaceChildren();
  }
  document.getElementById("sup-drawer-close").addEventListener("click", closeDrawer);
  document.addEventListener("keydown", (e) => {
    const typing = e.target.closest && e.target.closest("input, select, textarea, dialog");
    if (e.key === "/" && !typing) {
      e.preventDefault();
      document.querySelector("#sup-search input").focus();
      return;
    }
    if (e.key !== "Escape") return;
    if (!popover.hidden) closePopover();
    else if (!drawer.hidden) closeDrawer();
  });

  document.getElementById("sup-search").addEventListener("submit", async (e) => {
    e.preventDefault();
    const q = e.target.elements.q.value.trim();
    if (!q) return;
    const asId = q.replace(/^#/, "");
    if (/^\d{1,9}$/.test(asId)) {
      try {
        await api("GET", `/api/attempts/${asId}`, null, { quiet: true });
        await openAttempt(Number(asId));
        return;
      } catch (err) {
        if (err.status !== 404 || q.startsWith("#")) { toast(t("supervisor.card.not_found", { id: asId }), "error"); return; }
      }
    }
    await openList(t("supervisor.search.results", { q }), { number: q }, true);
  });

  // the latest attempts of a number, an operator or a campaign, in the drawer; a row opens its card
  async function openList(title, query, single = false) {
    const seq = ++drawerSeq;
    let found;
    try {
      found = await api("GET", "/api/monitoring/attempts", null, { query: { ...query, limit: 50 } });
    } catch { return; }
    if (seq !== drawerSeq) return;
    if (single && found.length === 1) { await openAttempt(found[0].id); return; }
    drawer.hidden = false;
    document.getElementById("sup-drawer-title").textContent = title;
    document.getElementById("sup-drawer-link").hidden = true;
    document.getElementById("sup-drawer-body").replaceChildren(found.length
      ? el("table", { class: "grid sup-found" }, el("tbody", {}, found.map((a) => el("tr", { class: "clickable", tabindex: 0,
        onclick: () => openAttempt(a.id), onkeydown: (ev) => { if (ev.key === "Enter") openAttempt(a.id); } },
      el("td", {}, `#${a.id}`), el("td", {}, fmtDateTime(a.queued_at)), el("td", {}, a.campaign_name || ""),
      el("td", {}, a.outcome ? el("span", { class: `pill oc-${a.outcome}` }, t("outcome." + a.outcome)) : label("supervisor.astate.", a.state)),
      el("td", {}, a.number, a.direction === "inbound"
        ? el("span", { class: "pill sup-inbound" }, " " + t("supervisor.direction.inbound")) : ""),
      el("td", {}, a.operator_name || "")))))
      : el("p", { class: "muted" }, t(query.number ? "supervisor.search.nothing" : "supervisor.no_calls")));
  }

  // ---- live events: the state changes in supervisor_floor.js, the page shows what changed ----
  function tick() {
    for (const span of opBody.querySelectorAll(".sup-time")) {
      if (span.dataset.since) span.textContent = fmtDuration(S.elapsed(span.dataset.since));
    }
  }

  function show(ch) {
    if (ch.engine) renderEngine();
    if (ch.allCampaigns) renderCampaigns();
    else for (const id of ch.campaigns) patchCampaign(S.camps.get(id));
    if (ch.allOperators) renderOperators();
    else for (const id of ch.operators) patchOperator(S.ops.get(id));
    if (ch.alerts) renderAlerts();
    if (ch.recent) renderRecent();
    if (ch.pending) renderPending();
    if (ch.reload) load();
    if (ch.reloadSoon) soon();
    if (ch.recentSoon) recentSoon();
  }

  function onEvent(ev) {
    show(S.apply(ev));
    // a restarted engine hands the conversations it cut off back for their result
    if (ev.type === "EngineStarted") pendingSoon();
  }

  live([], onEvent, {
    onReconnect: () => { load(); loadRecent(); loadPending(); },
    onState: (state) => {
      liveState.className = `live-state ${state}`;
      liveState.textContent = t(state === "online" ? "live.online" : "live.offline");
    },
  });
  load();
  loadRecent();
  loadPending();
  loadZones();
  setInterval(tick, 1000);
  setInterval(() => { if (!document.hidden) load(); }, SAFETY_MS);
  setInterval(() => { if (!document.hidden) loadPending(); }, 6 * SAFETY_MS);
  return { reload: load, state: S };
}
