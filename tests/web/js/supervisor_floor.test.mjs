// The supervisor floor's state (src/dialer/web/static/supervisor_floor.js) without a browser: a snapshot and live
// events in, the state and the list of what to re-render out. Run by tests/web/test_js_units.py (node --test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadStatic } from "./static.mjs";

const { Floor, Changes, callGroups, FRESH_MS, RECENT } = await loadStatic("supervisor_floor.js");

const T0 = Date.parse("2026-01-05T09:00:00Z");

// a readable translation: the message id and its parameters
function t(msgid, params) { return params ? `${msgid} ${JSON.stringify(params)}` : msgid; }

function clock(ms = T0) {
  const c = { ms, now: () => c.ms, advance(d) { c.ms += d; } };
  return c;
}

function iso(ms) { return new Date(ms).toISOString(); }

function operator(id, over = {}) {
  return { id, name: `Op ${id}`, state: "ready", reason: "", since: iso(T0 - 60000), campaign_id: null, campaign_name: null,
    attempt_id: null, number: null, contact_id: null, sip: null, calls_today: 0, talk_s_today: 0, codes_today: [],
    pool_ids: [], ...over };
}

function campaign(id, over = {}) {
  return { id, name: `Camp ${id}`, status: "running", status_reason: "", dial_mode: "progressive", dialable_left: 100,
    outcomes_today: {}, attempts_today: 0, abandoned_today: 0, live_answers_today: 0, abandon_pct: 0,
    abandon_cap_pct: 3, consecutive_errors: 0, dial_ratio: null, ...over };
}

function snap(over = {}) {
  return { at: iso(T0), engine: { running: true }, pools: [{ id: 1, name: "Sales" }], operators: [operator(7), operator(8)],
    campaigns: [campaign(1)], trunks: [], live_calls: [], ...over };
}

function floor(snapshot = snap(), c = clock()) {
  const f = new Floor({ t, now: c.now });
  f.snapshot(snapshot);
  return f;
}

const ev = {
  placed: (id, over = {}) => ({ type: "CallPlaced", at: iso(T0), attempt_id: id, campaign_id: 1, operator_id: null, number: `+7900000${id}`, ...over }),
  ringing: (id) => ({ type: "CallRinging", at: iso(T0), attempt_id: id, campaign_id: 1 }),
  answered: (id, by = "human") => ({ type: "CallAnswered", at: iso(T0), attempt_id: id, campaign_id: 1, answered_by: by }),
  connected: (id, op) => ({ type: "CallConnected", at: iso(T0), attempt_id: id, campaign_id: 1, operator_id: op, waited_s: 0.4 }),
  ended: (id, result = "hung_up") => ({ type: "CallEnded", at: iso(T0), attempt_id: id, campaign_id: 1, result, side: "remote", cause: "", sip_code: null }),
  finished: (id, over = {}) => ({ type: "AttemptFinished", at: iso(T0), attempt_id: id, campaign_id: 1, contact_id: 5, operator_id: null,
    category: "answered", completion_code_id: null, abandoned: false, waited_s: null, ...over }),
  state: (op, state, over = {}) => ({ type: "OperatorStateChanged", at: iso(T0 + 1000), operator_id: op, state, previous: "ready", reason: "",
    campaign_id: null, attempt_id: null, ...over }),
};

test("a snapshot fills the floor, follows its calls in progress and says everything is to be drawn", () => {
  const c = clock();
  const f = new Floor({ t, now: c.now });
  const ch = f.snapshot(snap({
    at: iso(T0 + 2500), // the server's clock is 2.5 s ahead
    live_calls: [
      { attempt_id: 11, campaign_id: 1, state: "ringing", number: "+79001", answered_by: null },
      { attempt_id: 12, campaign_id: 1, state: "connected", number: "+79002", answered_by: "human" },
    ],
  }));
  assert.equal(f.skew, 2500);
  assert.deepEqual([...f.ops.keys()], [7, 8]);
  assert.deepEqual(f.camps.get(1).calls, { ringing: 1, connected: 1 });
  assert.equal(f.calls.get(12).human, true);
  assert.equal(f.numbers.get(11), "+79001");
  assert.equal(f.serverNow(), iso(T0 + 2500));
  assert.equal(f.elapsed(iso(T0)), 2.5);
  assert.ok(ch.allOperators && ch.allCampaigns && ch.engine && ch.alerts);
  assert.deepEqual(f.visibleAlerts(), []);
  assert.deepEqual(f.stateCounts(), { ready: 2 });
  assert.equal(f.poolName(1), "Sales");
  assert.equal(f.poolName(9), "#9");
});

test("an engine that is not running while a campaign dials is an alert until it runs", () => {
  const f = floor(snap({ engine: { running: false } }));
  assert.deepEqual(f.visibleAlerts().map((a) => [a.key, a.kind, a.text]), [["engine", "danger", "supervisor.alert.engine"]]);
  assert.equal(f.visibleAlerts()[0].at, iso(T0)); // the server's time when nothing else gives one
  f.snapshot(snap());
  assert.deepEqual(f.visibleAlerts(), []);
  // nothing dials: still a warning (the floor shows the engine red), a milder one
  f.snapshot(snap({ engine: { running: false }, campaigns: [campaign(1, { status: "paused" })] }));
  assert.deepEqual(f.visibleAlerts().map((a) => [a.key, a.kind, a.text]), [["engine", "warn", "supervisor.alert.engine_idle"]]);
});

test("an operator's state change patches his row and asks the server for what only it knows", () => {
  const f = floor(snap({ operators: [operator(7, { attempt_id: 40, number: "+7111", contact_id: 3, state: "in_call" })] }));
  f.numbers.set(41, "+7222");
  const ch = f.apply(ev.state(7, "wrap_up", { previous: "in_call", campaign_id: 1, attempt_id: 41 }));
  const op = f.ops.get(7);
  assert.equal(op.state, "wrap_up");
  assert.equal(op.since, iso(T0 + 1000));
  assert.equal(op.campaign_name, "Camp 1");
  assert.equal(op.number, null); // another attempt: the old number and contact go
  assert.equal(op.contact_id, null);
  assert.deepEqual([...ch.operators], [7]);
  assert.equal(ch.reloadSoon, true); // he left a call: talk time and codes
  assert.deepEqual([...ch.campaigns], []);
  // same attempt, number known, not leaving a call: nothing to read
  const again = f.apply(ev.state(7, "paused", { previous: "ready", reason: "lunch", campaign_id: 1, attempt_id: 41 }));
  assert.equal(again.reloadSoon, false);
  assert.equal(f.ops.get(7).reason, "lunch");
  // an attempt whose number the page has not seen: read it
  assert.equal(f.apply(ev.state(7, "in_call", { attempt_id: 99, campaign_id: 1 })).reloadSoon, true);
});

test("a state an event told is kept until a snapshot has it", () => {
  const f = floor();
  f.apply(ev.state(7, "paused", { reason: "lunch" }));
  // the engine had not recorded it yet: the snapshot still says ready (since before the event)
  f.snapshot(snap());
  assert.equal(f.ops.get(7).state, "paused");
  assert.equal(f.ops.get(7).reason, "lunch");
  assert.ok(f.opEvents.has(7));
  // recorded now: the snapshot rules again and the event is forgotten
  f.snapshot(snap({ operators: [operator(7, { state: "paused", reason: "lunch", since: iso(T0 + 1000) }), operator(8)] }));
  assert.ok(!f.opEvents.has(7));
  // a snapshot with something newer than the event wins
  f.apply(ev.state(8, "paused"));
  f.snapshot(snap({ operators: [operator(7), operator(8, { state: "offline", since: iso(T0 + 5000) })] }));
  assert.equal(f.ops.get(8).state, "offline");
});

test("an event about an operator or a campaign the page does not know yet reads the snapshot", () => {
  const f = floor();
  assert.equal(f.apply(ev.state(99, "ready")).reloadSoon, true);
  assert.equal(f.apply({ type: "CampaignStatusChanged", at: iso(T0), campaign_id: 5, status: "paused", previous: "running", reason: "" }).reloadSoon, true);
  assert.equal(f.apply(ev.finished(1, { campaign_id: 5 })).reloadSoon, true);
  assert.equal(f.apply({ type: "EngineStopped", at: iso(T0) }).reload, true);
  assert.equal(f.apply({ type: "EngineStarted", at: iso(T0) }).reload, true);
  const nothing = f.apply({ type: "PreviewStarted", at: iso(T0), operator_id: 7 });
  assert.deepEqual(nothing, new Changes());
});

test("a call from placed to finished moves the campaign's counters and the latest calls", () => {
  const c = clock();
  const f = floor(snap(), c);
  let ch = f.apply(ev.placed(100));
  assert.equal(f.recent[0].id, 100);
  assert.equal(f.recent[0].state, "dialing");
  assert.equal(ch.recent, true);
  assert.deepEqual([...ch.campaigns], [1]);
  assert.deepEqual(f.camps.get(1).calls, { dialing: 1 });
  assert.deepEqual(callGroups(f.camps.get(1).calls), { ringing: 1, waiting: 0, talking: 0, wrap_up: 0 });

  f.apply(ev.ringing(100));
  ch = f.apply(ev.answered(100));
  assert.equal(f.camps.get(1).live_answers_today, 1);
  assert.equal(f.calls.get(100).human, true);
  assert.deepEqual(callGroups(f.camps.get(1).calls), { ringing: 0, waiting: 1, talking: 0, wrap_up: 0 });
  assert.equal(f.recent[0].state, "answered");

  f.apply(ev.connected(100, 7));
  assert.equal(f.calls.get(100).operator_id, 7);
  f.apply(ev.ended(100));
  assert.equal(f.calls.get(100).stage, "wrap_up"); // it had an operator: he wraps up
  assert.deepEqual(callGroups(f.camps.get(1).calls), { ringing: 0, waiting: 0, talking: 0, wrap_up: 1 });

  c.advance(1000);
  ch = f.apply(ev.finished(100, { operator_id: 7, category: "answered" }));
  const camp = f.camps.get(1);
  assert.ok(!f.calls.has(100));
  assert.deepEqual(camp.calls, {});
  assert.deepEqual(camp.outcomes_today, { answered: 1 });
  assert.equal(camp.attempts_today, 1);
  assert.deepEqual(f.finished.get(100), { category: "answered", at: T0 + 1000 });
  assert.equal(f.lastFinish.get(1), T0 + 1000);
  assert.deepEqual([f.recent[0].state, f.recent[0].outcome], ["done", "answered"]);
  assert.ok(ch.recent && ch.recentSoon && ch.reloadSoon);
  assert.deepEqual([...ch.campaigns], [1]);
});

test("a call's stage never goes back, and nothing follows a finished attempt", () => {
  const f = floor();
  f.apply(ev.placed(100));
  f.apply(ev.connected(100, 7));
  f.apply(ev.ringing(100)); // late
  assert.equal(f.calls.get(100).stage, "connected");
  f.apply(ev.finished(100));
  const ch = f.apply(ev.ringing(100)); // later still
  assert.ok(!f.calls.has(100));
  assert.deepEqual([...ch.campaigns], []);
  // a call hung up before any operator took it counts in no column until it is finished
  f.apply(ev.placed(101));
  f.apply(ev.ended(101, "no_answer"));
  assert.equal(f.calls.get(101).stage, "ended");
  assert.deepEqual(callGroups(f.camps.get(1).calls), { ringing: 0, waiting: 0, talking: 0, wrap_up: 0 });
});

test("the abandon rate follows live answers and abandoned attempts", () => {
  const f = floor(snap({ campaigns: [campaign(1, { live_answers_today: 3, abandoned_today: 0, abandon_cap_pct: 3 })] }));
  f.apply(ev.answered(200));
  assert.equal(f.camps.get(1).abandon_pct, 0);
  f.apply(ev.finished(200, { category: "abandoned", abandoned: true }));
  const camp = f.camps.get(1);
  assert.equal(camp.abandoned_today, 1);
  assert.equal(camp.abandon_pct, 25);
  assert.equal(camp.over_cap, true);
  // machines do not count as live answers
  f.apply(ev.answered(201, "machine"));
  assert.equal(camp.live_answers_today, 4);
});

test("calls ending in errors in a row make a running campaign failing, one that does not clears it", () => {
  const f = floor();
  f.apply(ev.ended(1, "error"));
  f.apply(ev.ended(2, "failed"));
  assert.equal(f.camps.get(1).consecutive_errors, 2);
  assert.deepEqual(f.visibleAlerts(), []);
  const ch = f.apply(ev.ended(3, "error"));
  assert.equal(ch.alerts, true);
  assert.deepEqual(f.visibleAlerts().map((a) => [a.key, a.kind, a.text]),
    [["campfail:1", "warn", 'supervisor.alert.failing {"name":"Camp 1","n":3}']]);
  f.apply(ev.ended(4, "hung_up"));
  assert.equal(f.camps.get(1).consecutive_errors, 0);
  assert.deepEqual(f.visibleAlerts(), []);
});

test("an auto-paused campaign is an alert until it runs again, even after being dismissed once", () => {
  const f = floor();
  let ch = f.apply({ type: "CampaignAutoPaused", at: iso(T0 + 3000), campaign_id: 1, reason: "abandon rate 4%" });
  const camp = f.camps.get(1);
  assert.deepEqual([camp.status, camp.status_reason, camp.auto_stopped], ["auto_paused", "abandon rate 4%", true]);
  assert.deepEqual([...ch.campaigns], [1]);
  const [alert] = f.visibleAlerts();
  assert.equal(alert.key, "camp:1");
  assert.equal(alert.at, iso(T0 + 3000));
  assert.equal(alert.text, 'supervisor.alert.auto_paused {"name":"Camp 1","reason":"abandon rate 4%"}');
  f.dismiss("camp:1");
  assert.deepEqual(f.visibleAlerts(), []);
  // the status event that follows says the same: still dismissed
  f.apply({ type: "CampaignStatusChanged", at: iso(T0 + 3000), campaign_id: 1, status: "auto_paused", previous: "running", reason: "abandon rate 4%" });
  assert.deepEqual(f.visibleAlerts(), []);
  // it stops again later: shown again
  f.apply({ type: "CampaignAutoPaused", at: iso(T0 + 9000), campaign_id: 1, reason: "abandon rate 4%" });
  assert.equal(f.visibleAlerts().length, 1);
  ch = f.apply({ type: "CampaignStatusChanged", at: iso(T0 + 10000), campaign_id: 1, status: "running", previous: "auto_paused", reason: "" });
  assert.equal(ch.alerts, true);
  assert.equal(f.camps.get(1).auto_stopped, false);
  assert.deepEqual(f.visibleAlerts(), []);
  f.apply({ type: "CampaignFinished", at: iso(T0), campaign_id: 1 });
  assert.equal(f.camps.get(1).status, "finished");
});

test("missed offers are an alert until the operator takes a call", () => {
  const f = floor();
  f.apply({ type: "OperatorMissedCall", at: iso(T0), operator_id: 7, campaign_id: 1, missed_in_row: 2, paused: false });
  f.apply({ type: "OperatorMissedCall", at: iso(T0), operator_id: 42, campaign_id: 1, missed_in_row: 3, paused: true });
  assert.deepEqual(f.visibleAlerts().map((a) => a.text).sort(), [
    'supervisor.alert.missed {"name":"Op 7","n":2,"campaign":"Camp 1"}',
    'supervisor.alert.missed_paused_n {"name":"#42","n":3,"campaign":"Camp 1"}',
  ]);
  f.apply(ev.state(7, "in_call", { campaign_id: 1, attempt_id: 5 }));
  assert.deepEqual(f.visibleAlerts().map((a) => a.key), ["missed:42"]);
  // paused for missed calls, as the snapshot shows it
  f.snapshot(snap({ operators: [operator(7), operator(8, { state: "paused", reason: "missed_calls" })] }));
  assert.ok(f.alerts.has("missed:8"));
});

test("SIP phones: a registration lost is an alert on the operator's row, found again clears it", () => {
  const f = floor(snap({ operators: [operator(7, { sip: { login: "op7", online: true, reachable: true, detail: "", changed_at: null } }), operator(8)] }));
  let ch = f.apply({ type: "DeviceStateChanged", at: iso(T0 + 100), login: "op7", operator_id: null, state: "unreachable", detail: "no OPTIONS answer" });
  assert.deepEqual([...ch.operators], [7]);
  assert.deepEqual(f.ops.get(7).sip, { login: "op7", online: true, reachable: false, detail: "no OPTIONS answer", changed_at: iso(T0 + 100) });
  assert.deepEqual(f.visibleAlerts().map((a) => [a.key, a.text]),
    [["dev:7", 'supervisor.alert.device {"login":"op7","name":"Op 7","state":"supervisor.sip.unreachable"}']]);
  f.apply({ type: "DeviceStateChanged", at: iso(T0 + 200), login: "op7", operator_id: 7, state: "registered", detail: "" });
  assert.deepEqual(f.visibleAlerts(), []);
  // a phone of an operator without one so far, by operator id
  f.apply({ type: "DeviceStateChanged", at: iso(T0 + 300), login: "op8", operator_id: 8, state: "unregistered", detail: "" });
  assert.equal(f.ops.get(8).sip.online, false);
  assert.ok(f.alerts.has("dev:8"));
  // an offline operator's phone is nobody's worry after the next snapshot
  f.snapshot(snap({ operators: [operator(7), operator(8, { state: "offline", sip: f.ops.get(8).sip })] }));
  assert.ok(f.alerts.has("dev:8")); // the snapshot does not resolve it by itself while the phone is down...
  f.apply({ type: "DeviceStateChanged", at: iso(T0 + 400), login: "op8", operator_id: 8, state: "reachable", detail: "" });
  assert.ok(!f.alerts.has("dev:8")); // ...the phone's return does
  // unknown phones and states change nothing
  assert.deepEqual(f.apply({ type: "DeviceStateChanged", at: iso(T0), login: "nobody", operator_id: null, state: "unreachable" }), new Changes());
  assert.deepEqual(f.apply({ type: "DeviceStateChanged", at: iso(T0), login: "op7", operator_id: 7, state: "weird" }), new Changes());
});

test("a trunk down is an alert unless the trunk is switched off", () => {
  const f = floor(snap({ trunks: [{ id: 3, name: "Carrier", is_active: true, up: true }, { id: 4, name: "Spare", is_active: false, up: true }] }));
  f.apply({ type: "TrunkStateChanged", at: iso(T0), trunk_id: 3, name: "Carrier", up: false, detail: "408" });
  f.apply({ type: "TrunkStateChanged", at: iso(T0), trunk_id: 4, name: "Spare", up: false, detail: "" });
  assert.deepEqual(f.visibleAlerts().map((a) => [a.key, a.text]), [["trunk:3", 'supervisor.alert.trunk {"name":"Carrier","detail":"408"}']]);
  f.apply({ type: "TrunkStateChanged", at: iso(T0), trunk_id: 3, name: "Carrier", up: true, detail: "" });
  assert.deepEqual(f.visibleAlerts(), []);
  // one the snapshot did not have
  f.apply({ type: "TrunkStateChanged", at: iso(T0), trunk_id: 9, name: "New", up: false, detail: "" });
  assert.deepEqual(f.trunks.get(9), { id: 9, name: "New", is_active: true, up: false, detail: "", changed_at: iso(T0) });
  assert.ok(f.alerts.has("trunk:9"));
});

test("the dangerous alerts come first, the newest first among them", () => {
  const f = floor();
  f.apply({ type: "OperatorMissedCall", at: iso(T0 + 1000), operator_id: 7, campaign_id: 1, missed_in_row: 1, paused: false });
  f.apply({ type: "OperatorMissedCall", at: iso(T0 + 5000), operator_id: 8, campaign_id: 1, missed_in_row: 1, paused: false });
  f.apply({ type: "TrunkStateChanged", at: iso(T0 + 3000), trunk_id: 3, name: "Carrier", up: false, detail: "" });
  assert.deepEqual(f.visibleAlerts().map((a) => a.key), ["trunk:3", "missed:8", "missed:7"]);
});

test("a snapshot keeps calls the engine has announced but not recorded yet, for a while", () => {
  const c = clock();
  const f = floor(snap(), c);
  f.apply(ev.placed(100));
  f.apply(ev.connected(100, 7));
  f.apply(ev.placed(101));
  f.apply(ev.finished(101));
  // the snapshot lags: it still has 100 ringing and 101 dialing
  const lagging = [
    { attempt_id: 100, campaign_id: 1, state: "ringing", number: "+79000000100", answered_by: null },
    { attempt_id: 101, campaign_id: 1, state: "dialing", number: "+79000000101", answered_by: null },
  ];
  f.snapshot(snap({ live_calls: lagging }));
  assert.equal(f.calls.get(100).stage, "connected"); // never back
  assert.ok(!f.calls.has(101)); // finished meanwhile
  assert.deepEqual(f.camps.get(1).calls, { connected: 1 });
  // the snapshot does not have it at all: kept while fresh, dropped after
  f.snapshot(snap());
  assert.ok(f.calls.has(100));
  c.advance(FRESH_MS + 1);
  f.snapshot(snap());
  assert.ok(!f.calls.has(100));
});

test("today's counters never go down when a snapshot lags just after an attempt finished", () => {
  const c = clock();
  const f = floor(snap({ campaigns: [campaign(1, { outcomes_today: { answered: 4 }, live_answers_today: 4 })] }), c);
  f.apply(ev.answered(100));
  f.apply(ev.finished(100, { category: "abandoned", abandoned: true }));
  assert.deepEqual(f.camps.get(1).outcomes_today, { answered: 4, abandoned: 1 });
  // the snapshot has not counted it yet
  f.snapshot(snap({ campaigns: [campaign(1, { outcomes_today: { answered: 4 }, live_answers_today: 4 })] }));
  const camp = f.camps.get(1);
  assert.deepEqual(camp.outcomes_today, { answered: 4, abandoned: 1 });
  assert.deepEqual([camp.abandoned_today, camp.live_answers_today, camp.abandon_pct], [1, 5, 20]);
  // long after the last finish the snapshot is the truth, even when lower
  c.advance(FRESH_MS + 1);
  f.snapshot(snap({ campaigns: [campaign(1, { outcomes_today: { answered: 2 } })] }));
  assert.deepEqual(f.camps.get(1).outcomes_today, { answered: 2 });
});

test("the latest calls read from the API take what the events already told", () => {
  const f = floor();
  f.apply(ev.placed(100));
  f.apply(ev.connected(100, 7));
  f.apply(ev.finished(101, { category: "busy" }));
  f.apply(ev.placed(102));
  f.apply(ev.ended(102, "no_answer"));
  const ch = f.recentLoaded([
    { id: 100, state: "ringing", outcome: null, number: "+1" },
    { id: 101, state: "dialing", outcome: null, number: "+2" },
    { id: 102, state: "ringing", outcome: null, number: "+3" },
  ]);
  assert.equal(ch.recent, true);
  assert.deepEqual(f.recent.map((a) => [a.id, a.state, a.outcome]),
    [[100, "connected", null], [101, "done", "busy"], [102, "ringing", null]]);
  // a call placed afterwards comes first; the list keeps RECENT items
  for (let i = 0; i < RECENT + 2; i++) f.apply(ev.placed(300 + i));
  assert.equal(f.recent.length, RECENT);
  assert.equal(f.recent[0].id, 300 + RECENT + 1);
  // one already listed is not listed twice
  f.apply(ev.placed(300 + RECENT + 1));
  assert.equal(f.recent.filter((a) => a.id === 300 + RECENT + 1).length, 1);
});

test("a call placed for an operator shows its number on his row", () => {
  const f = floor(snap({ operators: [operator(7, { state: "reserved", attempt_id: 500, campaign_id: 1 })] }));
  const ch = f.apply(ev.placed(500, { operator_id: 7 }));
  assert.deepEqual([...ch.operators], [7]);
  assert.equal(f.numbers.get(500), "+7900000500");
  assert.equal(f.recent[0].operator_name, "Op 7");
  assert.equal(f.calls.get(500).operator_id, 7);
});

test("the page's own actions: a forced state, a campaign action, pools", () => {
  const c = clock();
  const f = floor(snap({ at: iso(T0 + 1000) }), c);
  let ch = f.operatorForced(7, { state: "paused", reason: "training" });
  assert.deepEqual([...ch.operators], [7]);
  assert.deepEqual([f.ops.get(7).state, f.ops.get(7).reason, f.ops.get(7).since], ["paused", "training", iso(T0 + 1000)]);
  assert.deepEqual([...f.operatorForced(7, { queued: true }).operators], []);
  assert.deepEqual([...f.operatorForced(99, { state: "ready" }).operators], []);

  ch = f.campaignChanged(1, { status: "auto_paused", status_reason: "no lines" });
  assert.deepEqual([...ch.campaigns], [1]);
  assert.ok(f.alerts.has("camp:1"));
  f.campaignChanged(1, { status: "running", status_reason: null });
  assert.deepEqual([f.camps.get(1).status_reason, f.camps.get(1).auto_stopped], ["", false]);
  assert.ok(!f.alerts.has("camp:1"));

  ch = f.poolsSaved(8, [1]);
  assert.deepEqual(f.ops.get(8).pool_ids, [1]);
  assert.deepEqual([...ch.operators], [8]);
});

test("the attempts remembered are bounded", () => {
  const f = floor();
  for (let i = 1; i <= 5001; i++) f.apply(ev.finished(i, { campaign_id: 2 }));
  assert.equal(f.finished.size, 5000);
  assert.ok(!f.finished.has(1) && f.finished.has(5001));
});

// ---- #13 §2: every red condition on the floor is a warning; #11: results pending ----
const { overCap } = await loadStatic("supervisor_floor.js");

function floorSnap(over = {}) {
  return {
    at: iso(T0), engine: { running: true }, operators: [], pools: [], trunks: [], live_calls: [],
    campaigns: [{ id: 1, name: "Взыскание", status: "running", status_reason: "", calls: {}, outcomes_today: {},
      abandoned_today: 0, live_answers_today: 0, abandon_pct: 0, abandon_cap_pct: 3, over_cap: false, idle_reasons: [] }],
    ...over,
  };
}

test("a campaign over its abandon cap is a warning with its rate and sample", () => {
  const floor = new Floor({ t, now: clock().now });
  const s = floorSnap();
  Object.assign(s.campaigns[0], { abandoned_today: 5, live_answers_today: 118, abandon_pct: 4.23, over_cap: true });
  floor.snapshot(s);
  const alerts = floor.visibleAlerts();
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0].key, "cap:1");
  assert.equal(alerts[0].kind, "danger");
  assert.match(alerts[0].text, /"pct":"4,23%"/);
  assert.match(alerts[0].text, /"abandoned":5,"live":118/);
  // back under the cap: the warning goes
  floor.snapshot(floorSnap());
  assert.deepEqual(floor.visibleAlerts(), []);
});

test("the live events that push a campaign over its cap raise the warning before the next snapshot", () => {
  const floor = new Floor({ t, now: clock().now });
  const s = floorSnap();
  Object.assign(s.campaigns[0], { abandoned_today: 0, live_answers_today: 9 });
  floor.snapshot(s);
  floor.apply({ type: "AttemptFinished", attempt_id: 7, campaign_id: 1, category: "abandoned", abandoned: true, at: iso(T0) });
  assert.equal(overCap(floor.camps.get(1)), true);
  assert.deepEqual(floor.visibleAlerts().map((a) => a.key), ["cap:1"]);
});

test("a running campaign that places no calls is a warning naming why; its own red states are not doubled", () => {
  const floor = new Floor({ t, now: clock().now });
  const s = floorSnap();
  s.campaigns[0].idle_reasons = [{ code: "no_operator_with_skill", params: { skills: ["Продажи"] } },
    { code: "over_abandon_cap", params: { abandon_pct: 4.2, cap_pct: 3 } }];
  floor.snapshot(s);
  const idle = floor.visibleAlerts().find((a) => a.key === "idle:1");
  assert.ok(idle);
  assert.match(idle.text, /supervisor.idle_short.no_operator_with_skill/);
  assert.doesNotMatch(idle.text, /over_abandon_cap/);
  s.campaigns[0].status = "paused";
  floor.snapshot(s);
  assert.equal(floor.visibleAlerts().find((a) => a.key === "idle:1"), undefined);
});

test("the engine down is a warning even with no campaign running", () => {
  const floor = new Floor({ t, now: clock().now });
  const s = floorSnap({ engine: { running: false } });
  s.campaigns[0].status = "paused";
  floor.snapshot(s);
  assert.deepEqual(floor.visibleAlerts().map((a) => [a.key, a.kind]), [["engine", "warn"]]);
  s.campaigns[0].status = "running";
  floor.snapshot(s);
  assert.deepEqual(floor.visibleAlerts().map((a) => [a.key, a.kind]), [["engine", "danger"]]);
});

test("dismissed warnings are hidden, not gone: the panel can count them and show them again", () => {
  const floor = new Floor({ t, now: clock().now });
  floor.snapshot(floorSnap({ engine: { running: false } }));
  floor.dismiss("engine");
  assert.deepEqual(floor.visibleAlerts(), []);
  assert.deepEqual(floor.hiddenAlerts().map((a) => a.key), ["engine"]);
  const ch = floor.showHidden();
  assert.equal(ch.alerts, true);
  assert.deepEqual(floor.visibleAlerts().map((a) => a.key), ["engine"]);
});

test("results pending after an engine restart are a warning until each is recorded", () => {
  const floor = new Floor({ t, now: clock().now });
  floor.snapshot(floorSnap());
  const items = [{ id: 11, number: "+79160000001", queued_at: iso(T0 - 60000) },
    { id: 12, number: "+79160000002", queued_at: iso(T0 - 30000) }];
  const ch = floor.pendingLoaded(items);
  assert.equal(ch.pending, true);
  const alert = floor.visibleAlerts().find((a) => a.key === "pending");
  assert.match(alert.text, /"n":2/);
  assert.equal(alert.at, iso(T0 - 30000));
  floor.pendingRecorded(11);
  assert.match(floor.visibleAlerts().find((a) => a.key === "pending").text, /"n":1/);
  floor.pendingRecorded(12);
  assert.deepEqual(floor.visibleAlerts(), []);
});

test("a pause forced during a call shows pending until the operator reaches it", () => {
  const floor = new Floor({ t, now: clock().now });
  floor.snapshot(floorSnap({ operators: [{ id: 5, name: "Анна", state: "in_call", reason: "", since: iso(T0), attempt_id: 3 }] }));
  const ch = floor.operatorForced(5, { ok: true, state: "in_call", pending: "paused", reason: "" }, "lunch");
  assert.ok(ch.operators.has(5));
  assert.equal(floor.ops.get(5).pause_pending, "lunch");
  floor.apply({ type: "OperatorStateChanged", operator_id: 5, state: "paused", reason: "lunch", previous: "in_call",
    at: iso(T0 + 1000), attempt_id: null, campaign_id: null });
  assert.equal(floor.ops.get(5).pause_pending, null);
});

test("the abandon rate's uncertainty on a small sample (Wilson 95%)", async () => {
  const { abandonInterval } = await loadStatic("supervisor_floor.js");
  assert.equal(abandonInterval(0, 0), null);
  const small = abandonInterval(5, 118);
  assert.ok(small.low > 1.5 && small.low < 2.0, JSON.stringify(small));
  assert.ok(small.high > 9.0 && small.high < 10.0, JSON.stringify(small));
  // the same rate on ten times the answers is known much more closely
  const large = abandonInterval(50, 1180);
  assert.ok(large.high - large.low < (small.high - small.low) / 2);
  assert.ok(abandonInterval(0, 10).high > 20);  // nothing abandoned of ten says little
});

test("an engine down grows worse when a campaign starts running", () => {
  const f = new Floor({ t, now: clock().now });
  const s = floorSnap({ engine: { running: false } });
  s.campaigns[0].status = "paused";
  f.snapshot(s);
  assert.equal(f.alerts.get("engine").kind, "warn");
  f.campaignChanged(1, { status: "running", status_reason: "" });
  assert.equal(f.alerts.get("engine").kind, "danger");
});

test("an inbound call is on the floor at once, and a transfer marks its call and its line in the latest calls", () => {
  const f = floor();
  let ch = f.apply({ type: "CallIncoming", at: iso(T0), attempt_id: 41, campaign_id: 1, contact_id: 5, number: "+79001112233",
    dialled: "+74950001122", how: "last campaign", operator_id: null });
  assert.equal(f.calls.get(41).stage, "ringing");
  assert.equal(f.calls.get(41).direction, "inbound");
  assert.equal(f.recent[0].id, 41);
  assert.equal(f.recent[0].direction, "inbound");
  assert.ok(ch.recent);
  assert.deepEqual(f.camps.get(1).calls, { ringing: 1 });
  f.apply(ev.answered(41));
  f.apply(ev.connected(41, 7));
  assert.equal(f.calls.get(41).stage, "connected");
  // a blind transfer: the customer waits again until the next operator takes him
  const transferred = (result, kind = "operator") => ({ type: "CallTransferred", at: iso(T0), transfer_id: 3, attempt_id: 41,
    campaign_id: 1, kind, source: "panel", from_operator_id: 7, to_operator_id: 8, to_pool_id: null, to_skill_id: null,
    to_number: null, result, detail: "" });
  ch = f.apply(transferred("pending"));
  assert.equal(f.calls.get(41).stage, "answered");
  assert.equal(f.calls.get(41).operator_id, null);
  assert.deepEqual(f.camps.get(1).calls, { answered: 1 });
  assert.equal(f.recent[0].transfer_result, "pending");
  f.apply(ev.connected(41, 8));
  f.apply(transferred("connected"));
  assert.equal(f.calls.get(41).stage, "connected");
  assert.equal(f.calls.get(41).operator_id, 8);
  assert.deepEqual([f.recent[0].transfer_kind, f.recent[0].transfer_result], ["operator", "connected"]);
});

test("a rescue from a dead phone is an alert until the customer has an operator again", () => {
  const f = floor(snap({ live_calls: [{ attempt_id: 50, campaign_id: 1, operator_id: 7, number: "+79005550000", direction: "outbound",
    state: "connected", answered_by: "human", queued_at: iso(T0) }] }));
  const rescue = (result) => ({ type: "CallTransferred", at: iso(T0), transfer_id: 9, attempt_id: 50, campaign_id: 1, kind: "rescue",
    source: "engine", from_operator_id: 7, to_operator_id: null, to_pool_id: null, to_skill_id: null, to_number: null, result, detail: "" });
  let ch = f.apply(rescue("pending"));
  assert.ok(ch.alerts);
  const [alert] = f.visibleAlerts();
  assert.equal(alert.key, "rescue:50");
  assert.match(alert.text, /supervisor\.alert\.rescue/);
  assert.match(alert.text, /Op 7/);
  ch = f.apply(rescue("connected"));
  assert.ok(ch.alerts);
  assert.equal(f.visibleAlerts().filter((a) => a.key === "rescue:50").length, 0);
});
