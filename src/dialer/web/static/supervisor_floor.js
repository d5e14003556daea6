// The supervisor floor's state and how it changes: no DOM, no requests, no timers (tested without a browser in
// tests/web/js/). supervisor.js asks the API, feeds the answers and the live events in here, and renders what the
// returned Changes name.
//
//   const floor = new Floor({ t, now: () => Date.now(), lang });  // t(msgid, params): alert texts; now(): ms;
//                               lang: how numbers in alert texts are written ("ru": "4,23")
//   floor.snapshot(snap)        GET /api/monitoring/live read (again)
//   floor.pendingLoaded(items)  GET /api/monitoring/attempts?result_pending=true read: conversations an engine crash
//                               cut off, waiting for their result (a warning while any waits)
//   floor.apply(event)          one live event (dialer/engine/events.py's shapes)
//   floor.recentLoaded(items)   GET /api/monitoring/attempts?limit=RECENT read
//   floor.operatorForced(id, answer, askedReason), floor.campaignChanged(id, answer), floor.poolsSaved(id, poolIds),
//   floor.showHidden(), floor.pendingRecorded(attemptId),
//   floor.dismiss(alertKey)     the page's own actions
// Each returns a Changes: the operators and campaigns whose rows changed (or all of them), whether the alerts, the
// recent calls or the engine's state changed, and what to read from the API (reload now, reloadSoon: figures only
// the server computes, recentSoon: the latest calls once the engine has recorded them).
//
// State (read by the page): ops (id → operator row of the snapshot), camps (id → campaign row), pools, trunks,
// engine, skew (server clock − ours, ms), calls (attempt id → the call in progress: {attempt_id, campaign_id,
// operator_id, number, stage, human, seen}), finished (attempt id → {category, at}), lastFinish (campaign id →
// ms), recent (the latest calls), numbers (attempt id → number), alerts (key → {key, kind, text, at}), dismissed
// (alert keys), opEvents (operator id → his latest OperatorStateChanged, until the snapshot shows it), pending (the
// conversations waiting for their result).
//
// The warnings are every condition the floor shows in red or amber: a campaign auto-stopped, failing, over its
// abandon cap, or running without placing calls (its idle reasons); a trunk down; an operator's phone unreachable;
// the engine down; results pending. A dismissed warning is hidden, not gone: hiddenAlerts() counts them, so the
// panel never says all is well while one of them holds.

export const OUTCOMES = ["answered", "no_answer", "busy", "rejected", "abandoned", "error"];
// the campaign table's columns of calls in progress, by stage
export const STAGES = { queued: "ringing", dialing: "ringing", ringing: "ringing", answered: "waiting", connected: "talking",
  wrap_up: "wrap_up", ended: null };  // ended: hung up without an operator, waiting for AttemptFinished
// the order of a call's stages: a late event never takes a call back
export const RANK = { queued: 0, dialing: 1, ringing: 2, answered: 3, connected: 4, wrap_up: 5, ended: 5, done: 6 };
export const FAILING_AFTER = 3;  // calls ending in errors in a row before a running campaign is "failing"
export const FRESH_MS = 10000;   // how long a fact an event told us outlives a snapshot that does not have it yet
export const RECENT = 15;        // the latest calls shown
// idle reasons that are the campaign's own red state (auto-stop, the cap) and have warnings of their own
const OWN_ALERT = new Set(["auto_stopped", "over_abandon_cap"]);
const KEEP = 5000;               // attempts remembered (finished ones, numbers)

export class Changes {
  constructor() {
    this.operators = new Set();   // ids of operators whose rows changed
    this.campaigns = new Set();   // ids of campaigns whose rows changed
    this.allOperators = false;    // every row (a new snapshot)
    this.allCampaigns = false;
    this.engine = false;
    this.alerts = false;
    this.recent = false;
    this.pending = false;         // the conversations waiting for their result
    this.reload = false;          // read the snapshot now
    this.reloadSoon = false;      // read it shortly: figures the server computes (talk time, codes, dialable contacts)
    this.recentSoon = false;      // read the latest calls shortly (names and codes the engine records)
  }
}

// the calls in progress of a campaign ({stage: n}) grouped by the table's columns
export function callGroups(calls) {
  const group = { ringing: 0, waiting: 0, talking: 0, wrap_up: 0 };
  for (const [stage, n] of Object.entries(calls || {})) if (STAGES[stage]) group[STAGES[stage]] += n;
  return group;
}

// the abandon rate's 95% Wilson interval, in percent ({low, high}; null without live answers): on a small sample
// the rate says little, the interval says how little ("5 of 118": 1.8–9.6%)
export function abandonInterval(abandoned, live, z = 1.96) {
  const n = Number(live || 0);
  if (!n) return null;
  const p = Math.min(1, Number(abandoned || 0) / n);
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  const round = (x) => Math.round(x * 10000) / 100;
  return { low: round(Math.max(0, centre - half)), high: round(Math.min(1, centre + half)) };
}

// over its abandon cap: the server's word (over_cap), or the figures the events have moved since
export function overCap(c) {
  return !!c.over_cap || Number(c.abandon_pct || 0) > Number(c.abandon_cap_pct ?? Infinity);
}

function plainT(msgid, params) { return params ? `${msgid} ${JSON.stringify(params)}` : msgid; }

export class Floor {
  constructor({ t = plainT, now = () => Date.now(), lang = "ru" } = {}) {
    this.t = t;
    this.now = now;
    this.lang = lang;
    this.pending = [];
    this.ops = new Map();
    this.camps = new Map();
    this.pools = [];
    this.trunks = new Map();
    this.engine = null;
    this.skew = 0;
    this.calls = new Map();
    this.finished = new Map();
    this.lastFinish = new Map();
    this.recent = [];
    this.numbers = new Map();
    this.alerts = new Map();
    this.dismissed = new Set();
    this.opEvents = new Map();
  }

  // ---- reading ----
  campaignName(id) {
    const c = this.camps.get(id);
    return c ? c.name : `#${id}`;
  }

  poolName(id) {
    const p = this.pools.find((x) => x.id === id);
    return p ? p.name : `#${id}`;
  }

  serverNow() { return new Date(this.now() + this.skew).toISOString(); }

  // seconds since an ISO time of the server's clock
  elapsed(since) {
    return Math.max(0, (this.now() + this.skew - new Date(since).getTime()) / 1000);
  }

  // the alerts shown: not dismissed, the dangerous ones first, then newest first
  visibleAlerts() {
    const rank = (a) => (a.kind === "danger" ? 0 : 1);
    return [...this.alerts.values()].filter((a) => !this.dismissed.has(a.key))
      .sort((a, b) => rank(a) - rank(b) || (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  }

  // the alerts dismissed while their condition still holds
  hiddenAlerts() {
    return [...this.alerts.values()].filter((a) => this.dismissed.has(a.key));
  }

  showHidden() {
    const ch = new Changes();
    this.dismissed.clear();
    ch.alerts = true;
    return ch;
  }

  pct(x) {
    const n = Math.round(Number(x || 0) * 100) / 100;
    return new Intl.NumberFormat(this.lang === "en" ? "en-GB" : "ru-RU", { maximumFractionDigits: 2 }).format(n) + "%";
  }

  // operators per state
  stateCounts() {
    const counts = {};
    for (const op of this.ops.values()) counts[op.state] = (counts[op.state] || 0) + 1;
    return counts;
  }

  // ---- the snapshot ----
  snapshot(snap) {
    const ch = new Changes();
    const now = this.now();
    this.skew = new Date(snap.at).getTime() - now;
    this.engine = snap.engine;
    this.pools = snap.pools || [];
    this.ops = new Map(snap.operators.map((o) => [o.id, o]));
    const previous = this.camps;
    this.camps = new Map(snap.campaigns.map((c) => [c.id, c]));
    this.trunks = new Map((snap.trunks || []).map((x) => [x.id, x]));
    // the engine records a state a moment after it announces it: a state an event told us is kept until the
    // snapshot has it (or something newer)
    for (const [id, ev] of this.opEvents) {
      const op = this.ops.get(id);
      if (op && op.state !== ev.state && (!op.since || new Date(ev.at) > new Date(op.since))) {
        if (op.attempt_id !== ev.attempt_id) { op.number = null; op.contact_id = null; }
        Object.assign(op, { state: ev.state, reason: ev.reason || "", since: ev.at, campaign_id: ev.campaign_id,
          attempt_id: ev.attempt_id, campaign_name: ev.campaign_id ? this.campaignName(ev.campaign_id) : null });
      } else {
        this.opEvents.delete(id);
      }
    }
    const followed = this.calls;
    this.calls = new Map();
    for (const lc of snap.live_calls || []) {
      if (this.finished.has(lc.attempt_id)) continue; // recorded a moment after it was announced
      const known = followed.get(lc.attempt_id);
      const stage = known && RANK[known.stage] > RANK[lc.state] ? known.stage : lc.state;
      this.calls.set(lc.attempt_id, { ...lc, stage, human: lc.answered_by === "human" || !!(known && known.human), seen: known ? known.seen : now });
      if (lc.number) this.numbers.set(lc.attempt_id, lc.number);
    }
    for (const [id, call] of followed) {
      // announced but not recorded yet: kept for a while (a call we never hear the end of is dropped then)
      if (!this.calls.has(id) && !this.finished.has(id) && now - (call.seen || 0) < FRESH_MS) this.calls.set(id, call);
    }
    for (const c of this.camps.values()) {
      const counts = {};
      for (const call of this.calls.values()) if (call.campaign_id === c.id) counts[call.stage] = (counts[call.stage] || 0) + 1;
      c.calls = counts;
      // today's counters only grow: just after an attempt finished, the snapshot may not have it yet
      const before = previous.get(c.id);
      if (before && now - (this.lastFinish.get(c.id) || 0) < FRESH_MS) {
        for (const [cat, n] of Object.entries(before.outcomes_today || {})) {
          c.outcomes_today[cat] = Math.max(n, c.outcomes_today[cat] || 0);
        }
        c.abandoned_today = Math.max(before.abandoned_today || 0, c.abandoned_today || 0);
        c.live_answers_today = Math.max(before.live_answers_today || 0, c.live_answers_today || 0);
        c.abandon_pct = c.live_answers_today ? Math.round((10000 * c.abandoned_today) / c.live_answers_today) / 100 : 0;
      }
    }
    ch.engine = true;
    ch.allCampaigns = true;
    ch.allOperators = true;
    ch.alerts = true;
    for (const c of this.camps.values()) this.syncCampaignAlerts(c, ch);
    for (const op of this.ops.values()) this.syncDeviceAlert(op, ch);
    for (const tr of this.trunks.values()) this.syncTrunkAlert(tr, ch);
    for (const op of this.ops.values()) {
      if (op.state === "paused" && /missed/i.test(op.reason || "")) {
        this.raise(`missed:${op.id}`, "warn", this.t("supervisor.alert.missed_paused", { name: op.name }), op.since, ch);
      }
    }
    // the engine down is red on the floor whether or not a campaign runs: nothing could be dialled
    this.syncEngineAlert(ch);
    return ch;
  }

  syncEngineAlert(ch) {
    if (this.engine && !this.engine.running) {
      const dialling = [...this.camps.values()].some((c) => c.status === "running");
      this.raise("engine", dialling ? "danger" : "warn", this.t(dialling ? "supervisor.alert.engine" : "supervisor.alert.engine_idle"), null, ch);
    } else this.resolve("engine", ch);
  }

  // ---- conversations waiting for their result ----
  pendingLoaded(items) {
    const ch = new Changes();
    this.pending = items;
    ch.pending = true;
    if (items.length) {
      this.raise("pending", "warn", this.t("supervisor.alert.pending", { n: items.length }),
        items.reduce((m, a) => (a.queued_at > m ? a.queued_at : m), items[0].queued_at), ch);
    } else this.resolve("pending", ch);
    return ch;
  }

  pendingRecorded(id) {
    return this.pendingLoaded(this.pending.filter((a) => a.id !== id));
  }

  // ---- the latest calls: read from the API, then followed by the call events ----
  recentLoaded(items) {
    for (const a of items) {
      const done = this.finished.get(a.id);
      if (done && a.state !== "done") { a.state = "done"; a.outcome = done.category; }
      const call = this.calls.get(a.id);
      if (call && a.state !== "done" && RANK[call.stage] > RANK[a.state]) a.state = call.stage === "ended" ? a.state : call.stage;
    }
    this.recent = items;
    const ch = new Changes();
    ch.recent = true;
    return ch;
  }

  // ---- live events ----
  apply(ev) {
    const ch = new Changes();
    switch (ev.type) {
      case "OperatorStateChanged": {
        this.opEvents.set(ev.operator_id, ev);
        const op = this.ops.get(ev.operator_id);
        if (!op) { ch.reloadSoon = true; break; }
        op.state = ev.state; op.reason = ev.reason || ""; op.since = ev.at;
        if (ev.state === "paused" || ev.state === "offline") op.pause_pending = null;
        if (op.attempt_id !== ev.attempt_id) { op.number = null; op.contact_id = null; }
        op.campaign_id = ev.campaign_id; op.attempt_id = ev.attempt_id;
        op.campaign_name = ev.campaign_id ? this.campaignName(ev.campaign_id) : null;
        ch.operators.add(op.id);
        this.syncDeviceAlert(op, ch);
        if (ev.state === "in_call" || ev.state === "wrap_up") this.resolve(`missed:${op.id}`, ch);
        if (ev.attempt_id && !this.numbers.has(ev.attempt_id)) ch.reloadSoon = true;
        if (ev.previous === "in_call" || ev.previous === "wrap_up") ch.reloadSoon = true; // talk time and codes
        break;
      }
      case "CallPlaced": {
        this.numbers.set(ev.attempt_id, ev.number);
        if (this.numbers.size > KEEP) this.numbers.delete(this.numbers.keys().next().value);
        const op = ev.operator_id ? this.ops.get(ev.operator_id) : null;
        if (!this.recent.some((r) => r.id === ev.attempt_id) && !this.finished.has(ev.attempt_id)) {
          this.recent.unshift({ id: ev.attempt_id, number: ev.number, state: "dialing", outcome: null, queued_at: ev.at,
            operator_name: op ? op.name : null, campaign_id: ev.campaign_id });
          this.recent.length = Math.min(this.recent.length, RECENT);
          ch.recent = true;
        }
        this.setStage(ev, "dialing", { number: ev.number, operator_id: ev.operator_id }, ch);
        if (op && op.attempt_id === ev.attempt_id) ch.operators.add(op.id);
        break;
      }
      case "CallIncoming": {
        // a customer's own call (engine/inbound.py): on the floor at once, ringing, marked inbound
        this.numbers.set(ev.attempt_id, ev.number);
        if (!this.recent.some((r) => r.id === ev.attempt_id) && !this.finished.has(ev.attempt_id)) {
          this.recent.unshift({ id: ev.attempt_id, number: ev.number, state: "ringing", outcome: null, queued_at: ev.at,
            operator_name: null, campaign_id: ev.campaign_id, direction: "inbound" });
          this.recent.length = Math.min(this.recent.length, RECENT);
          ch.recent = true;
        }
        this.setStage(ev, "ringing", { number: ev.number, direction: "inbound", operator_id: ev.operator_id || null }, ch);
        break;
      }
      case "CallTransferred": {
        // a transfer of the customer (engine/transfers.py): while it is carried out he waits again (blind, pool,
        // skill, external, rescue) or is on hold while his operator consults another (attended)
        const call = this.calls.get(ev.attempt_id);
        if (call && !this.finished.has(ev.attempt_id)) {
          Object.assign(call, { transfer_kind: ev.kind, transfer_result: ev.result, seen: this.now() });
          if (ev.result === "pending" && ev.kind !== "attended" && call.stage === "connected") {
            call.stage = "answered";
            call.operator_id = null;
            this.countCalls(ev.campaign_id, ch);
          }
        }
        this.patchRecent(ev.attempt_id, { transfer_kind: ev.kind, transfer_result: ev.result }, ch);
        const key = `rescue:${ev.attempt_id}`;
        if (ev.kind === "rescue" && ev.result === "pending") {
          const op = ev.from_operator_id ? this.ops.get(ev.from_operator_id) : null;
          this.raise(key, "warn", this.t("supervisor.alert.rescue", { name: op ? op.name : `#${ev.from_operator_id}`,
            number: this.numbers.get(ev.attempt_id) || "" }), ev.at, ch);
        } else if (ev.kind === "rescue") {
          this.resolve(key, ch);
        }
        break;
      }
      case "CallRinging": this.setStage(ev, "ringing", {}, ch); break;
      case "CallAnswered": {
        const human = ev.answered_by === "human";
        if (human) {
          const c = this.camps.get(ev.campaign_id);
          if (c) { c.live_answers_today = (c.live_answers_today || 0) + 1; this.recomputeAbandon(c, ch); }
        }
        this.setStage(ev, "answered", { human }, ch);
        break;
      }
      case "CallOnHold": this.setStage(ev, "answered", {}, ch); break;
      case "CallConnected": this.setStage(ev, "connected", { operator_id: ev.operator_id }, ch); break;
      case "CallEnded": {
        // failing: calls ending in errors one after another (the engine's own count comes with the snapshot)
        const c = this.camps.get(ev.campaign_id);
        if (c) {
          c.consecutive_errors = ev.result === "error" || ev.result === "failed" ? (c.consecutive_errors || 0) + 1 : 0;
          ch.campaigns.add(c.id);
          this.syncCampaignAlerts(c, ch);
        }
        const call = this.calls.get(ev.attempt_id);
        this.setStage(ev, call && call.stage === "connected" ? "wrap_up" : "ended", {}, ch);
        break;
      }
      case "AttemptFinished": {
        this.finish(ev, ch);
        this.resolveRescue(ev.attempt_id, ch);
        const c = this.camps.get(ev.campaign_id);
        if (c) {
          c.outcomes_today = c.outcomes_today || {};
          c.outcomes_today[ev.category] = (c.outcomes_today[ev.category] || 0) + 1;
          c.attempts_today = (c.attempts_today || 0) + 1;
          if (ev.abandoned) c.abandoned_today = (c.abandoned_today || 0) + 1;
          this.recomputeAbandon(c, ch);
        } else {
          ch.reloadSoon = true;
        }
        if (ev.operator_id) ch.reloadSoon = true; // his talk time and completion codes
        ch.recentSoon = true;
        break;
      }
      case "CampaignStatusChanged": {
        const c = this.camps.get(ev.campaign_id);
        if (!c) { ch.reloadSoon = true; break; }
        c.status = ev.status; c.status_reason = ev.reason || ""; c.auto_stopped = ev.status === "auto_paused";
        ch.campaigns.add(c.id);
        this.syncCampaignAlerts(c, ch);
        break;
      }
      case "CampaignAutoPaused": {
        const c = this.camps.get(ev.campaign_id);
        if (c) {
          c.status = "auto_paused"; c.status_reason = ev.reason || ""; c.auto_stopped = true;
          ch.campaigns.add(c.id);
        } else ch.reloadSoon = true;
        this.dismissed.delete(`camp:${ev.campaign_id}`);
        this.raise(`camp:${ev.campaign_id}`, "danger", this.t("supervisor.alert.auto_paused",
          { name: this.campaignName(ev.campaign_id), reason: ev.reason || "—" }), ev.at, ch);
        break;
      }
      case "CampaignFinished": {
        const c = this.camps.get(ev.campaign_id);
        if (c) { c.status = "finished"; ch.campaigns.add(c.id); this.syncCampaignAlerts(c, ch); }
        break;
      }
      case "OperatorMissedCall": {
        const op = this.ops.get(ev.operator_id);
        const name = op ? op.name : `#${ev.operator_id}`;
        this.dismissed.delete(`missed:${ev.operator_id}`);
        this.raise(`missed:${ev.operator_id}`, "warn", this.t(ev.paused ? "supervisor.alert.missed_paused_n" : "supervisor.alert.missed",
          { name, n: ev.missed_in_row, campaign: this.campaignName(ev.campaign_id) }), ev.at, ch);
        break;
      }
      case "DeviceStateChanged": {
        const op = ev.operator_id ? this.ops.get(ev.operator_id) : [...this.ops.values()].find((o) => o.sip && o.sip.login === ev.login);
        if (!op) break;
        const sip = op.sip || { login: ev.login, online: false, reachable: false, detail: "", changed_at: null };
        if (ev.state === "registered" || ev.state === "reachable") { sip.online = true; sip.reachable = true; }
        else if (ev.state === "unregistered") { sip.online = false; sip.reachable = false; }
        else if (ev.state === "unreachable") { sip.reachable = false; }
        else break;
        sip.detail = ev.detail || ""; sip.changed_at = ev.at;
        op.sip = sip;
        ch.operators.add(op.id);
        const key = `dev:${op.id}`;
        if (ev.state === "unreachable" || ev.state === "unregistered") {
          this.dismissed.delete(key);
          this.raise(key, "danger", this.t("supervisor.alert.device",
            { login: ev.login, name: op.name, state: this.t("supervisor.sip." + ev.state) }), ev.at, ch);
        } else this.resolve(key, ch);
        break;
      }
      case "TrunkStateChanged": {
        const tr = this.trunks.get(ev.trunk_id) || { id: ev.trunk_id, name: ev.name, is_active: true };
        tr.up = ev.up; tr.detail = ev.detail || ""; tr.changed_at = ev.at; tr.name = ev.name || tr.name;
        this.trunks.set(tr.id, tr);
        if (!ev.up) this.dismissed.delete(`trunk:${tr.id}`);
        this.syncTrunkAlert(tr, ch);
        break;
      }
      case "EngineStarted": case "EngineStopped":
        ch.reload = true;
        break;
      default:
    }
    return ch;
  }

  // calls in progress are followed by attempt id: every call event carries its campaign, so a call placed before
  // the snapshot is followed as well as a new one; the counts per campaign and stage are derived from calls
  setStage(ev, stage, extra, ch) {
    if (this.finished.has(ev.attempt_id)) return null;
    let call = this.calls.get(ev.attempt_id);
    if (!call) {
      call = { attempt_id: ev.attempt_id, campaign_id: ev.campaign_id, operator_id: null, number: this.numbers.get(ev.attempt_id) || "",
        stage, human: false, queued_at: ev.at };
      this.calls.set(ev.attempt_id, call);
    } else if (RANK[stage] < RANK[call.stage]) {
      return call; // an older event, late
    }
    Object.assign(call, extra, { stage, seen: this.now() });
    this.countCalls(ev.campaign_id, ch);
    if (stage !== "ended") this.patchRecent(ev.attempt_id, { state: stage }, ch);
    return call;
  }

  countCalls(campaignId, ch) {
    const c = this.camps.get(campaignId);
    if (!c) return;
    const counts = {};
    for (const call of this.calls.values()) {
      if (call.campaign_id === campaignId) counts[call.stage] = (counts[call.stage] || 0) + 1;
    }
    c.calls = counts;
    ch.campaigns.add(c.id);
  }

  finish(ev, ch) {
    this.calls.delete(ev.attempt_id);
    this.finished.set(ev.attempt_id, { category: ev.category, at: this.now() });
    if (this.finished.size > KEEP) this.finished.delete(this.finished.keys().next().value);
    this.lastFinish.set(ev.campaign_id, this.now());
    this.countCalls(ev.campaign_id, ch);
    this.patchRecent(ev.attempt_id, { state: "done", outcome: ev.category }, ch);
  }

  // the rescue alert of a finished call is over
  resolveRescue(id, ch) { this.resolve(`rescue:${id}`, ch); }

  patchRecent(id, changes, ch) {
    const item = this.recent.find((r) => r.id === id);
    if (!item || item.state === "done") return;
    Object.assign(item, changes);
    ch.recent = true;
  }

  recomputeAbandon(c, ch) {
    c.abandon_pct = c.live_answers_today ? Math.round((10000 * (c.abandoned_today || 0)) / c.live_answers_today) / 100 : 0;
    c.over_cap = c.abandon_pct > c.abandon_cap_pct;
    ch.campaigns.add(c.id);
    this.syncCampaignAlerts(c, ch);
  }

  // ---- the page's own actions, with the API's answers ----
  operatorForced(id, result, askedReason = null) {
    // the engine's answer; its event follows (and carries the exact time)
    const ch = new Changes();
    const known = this.ops.get(id);
    if (known && result && result.state && known.state !== result.state) {
      Object.assign(known, { state: result.state, reason: result.reason || "", since: this.serverNow() });
      ch.operators.add(id);
    }
    // a pause asked for during a call applies when the call ends: shown pending until then
    if (known && result && result.pending === "paused") {
      known.pause_pending = askedReason || result.reason || "supervisor";
      ch.operators.add(id);
    }
    return ch;
  }

  campaignChanged(id, updated) {
    const ch = new Changes();
    const known = this.camps.get(id);
    if (known && updated) {
      known.status = updated.status;
      known.status_reason = updated.status_reason || "";
      known.auto_stopped = updated.status === "auto_paused";
      ch.campaigns.add(id);
      this.syncCampaignAlerts(known, ch);
    }
    return ch;
  }

  poolsSaved(id, poolIds) {
    const ch = new Changes();
    const known = this.ops.get(id);
    if (known) { known.pool_ids = poolIds; ch.operators.add(id); }
    return ch;
  }

  dismiss(key) {
    const ch = new Changes();
    this.dismissed.add(key);
    ch.alerts = true;
    return ch;
  }

  // ---- alerts ----
  raise(key, kind, text, at, ch) {
    const existing = this.alerts.get(key);
    if (existing && existing.text === text) return;
    this.alerts.set(key, { key, kind, text, at: at || this.serverNow() });
    ch.alerts = true;
  }

  resolve(key, ch) {
    this.dismissed.delete(key);
    if (this.alerts.delete(key)) ch.alerts = true;
  }

  syncCampaignAlerts(c, ch) {
    const t = this.t;
    if (c.status === "auto_paused") this.raise(`camp:${c.id}`, "danger", t("supervisor.alert.auto_paused", { name: c.name, reason: c.status_reason || "—" }), null, ch);
    else this.resolve(`camp:${c.id}`, ch);
    if (c.status === "running" && (c.consecutive_errors || 0) >= FAILING_AFTER) {
      this.raise(`campfail:${c.id}`, "warn", t("supervisor.alert.failing", { name: c.name, n: c.consecutive_errors }), null, ch);
    } else this.resolve(`campfail:${c.id}`, ch);
    if (overCap(c)) {
      this.raise(`cap:${c.id}`, "danger", t("supervisor.alert.over_cap", { name: c.name, pct: this.pct(c.abandon_pct),
        cap: this.pct(c.abandon_cap_pct), abandoned: c.abandoned_today || 0, live: c.live_answers_today || 0 }), null, ch);
    } else this.resolve(`cap:${c.id}`, ch);
    const idle = c.status === "running" ? (c.idle_reasons || []).filter((r) => !OWN_ALERT.has(r.code)) : [];
    if (idle.length) {
      this.raise(`idle:${c.id}`, "warn", t("supervisor.alert.idle", { name: c.name,
        reasons: idle.map((r) => t("supervisor.idle_short." + r.code)).join(", ") }), null, ch);
    } else this.resolve(`idle:${c.id}`, ch);
    // a campaign started or stopped changes how bad an engine down is
    if (this.engine) this.syncEngineAlert(ch);
  }

  syncDeviceAlert(op, ch) {
    const key = `dev:${op.id}`;
    if (op.sip && op.state !== "offline" && !(op.sip.online && op.sip.reachable)) {
      const state = !op.sip.online ? "unregistered" : "unreachable";
      this.raise(key, "danger", this.t("supervisor.alert.device", { login: op.sip.login, name: op.name, state: this.t("supervisor.sip." + state) }),
        op.sip.changed_at, ch);
    } else if (!op.sip || (op.sip.online && op.sip.reachable)) this.resolve(key, ch);
  }

  syncTrunkAlert(tr, ch) {
    const key = `trunk:${tr.id}`;
    if (tr.is_active !== false && tr.up === false) {
      this.raise(key, "danger", this.t("supervisor.alert.trunk", { name: tr.name, detail: tr.detail || "—" }), tr.changed_at, ch);
    } else this.resolve(key, ch);
  }
}
