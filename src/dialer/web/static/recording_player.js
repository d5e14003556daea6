// The call recordings' player in the call card (/supervisor/attempts/{id}; issue #16 §1).
//
// mountPlayer(box, attemptId, {canDownload}): lists GET /api/attempts/{id}/recordings and renders, per recording,
// an HTML5 <audio> playing GET /api/recordings/{id}/stream (HTTP Range: the browser seeks by asking for the bytes
// it needs; the file is decrypted as it is sent), a playback-speed choice (SPEEDS), the recording's time, length and
// retention, and — only for users with recordings.download — a download link. Every listen is in the audit log
// (the server writes it). Without recordings.listen (403) the box is emptied and hidden, so a page may mount the
// player without knowing the user's permissions. Labels: locales recordings.*.json ("recording.*").
import { api, el, t, fmtDuration, fmtDateTime } from "./app.js";

export const SPEEDS = [0.75, 1, 1.25, 1.5, 2];

export function speedLabel(speed, lang = window.LANG) {
  const text = lang === "ru" ? String(speed).replace(".", ",") : String(speed);
  return `${text}×`;
}

export async function mountPlayer(box, attemptId, { canDownload = false } = {}) {
  const head = el("h2", {}, t("recording.title"));
  box.replaceChildren(head, el("p", { class: "muted" }, t("common.loading")));
  let list;
  try {
    list = await api("GET", `/api/attempts/${attemptId}/recordings`, null, { quiet: true });
  } catch (err) {
    if (err.status === 403) {
      // a user without recordings.listen: no player at all (the floor's drawer may mount it for everyone)
      box.replaceChildren();
      box.hidden = true;
      return [];
    }
    box.replaceChildren(head, el("p", { class: "rec-error" }, err.message));
    return [];
  }
  if (!list.length) {
    box.replaceChildren(head, el("p", { class: "muted rec-none" }, t("recording.none")));
    return [];
  }
  const players = list.map((rec) => recordingPlayer(rec, canDownload));
  box.replaceChildren(head, ...players.map((p) => p.node));
  return players;
}

export function recordingPlayer(rec, canDownload) {
  const audio = el("audio", { class: "rec-audio", controls: true, preload: "metadata", src: rec.stream_url,
    "aria-label": t("recording.audio") });
  const error = el("p", { class: "rec-error", hidden: true });
  audio.addEventListener("error", () => {
    error.hidden = false;
    error.textContent = t("recording.unplayable");
  });
  const speed = el("select", { class: "rec-speed", "aria-label": t("recording.speed") },
    SPEEDS.map((s) => el("option", { value: String(s) }, speedLabel(s))));
  speed.value = "1";
  const setSpeed = () => {
    const rate = Number(speed.value);
    audio.defaultPlaybackRate = rate;
    audio.playbackRate = rate;
  };
  speed.addEventListener("change", setSpeed);
  // a new source (seeking far in some browsers reloads) keeps the chosen speed
  audio.addEventListener("loadedmetadata", setSpeed);
  const facts = el("div", { class: "rec-facts muted" },
    el("span", {}, fmtDateTime(rec.started_at)), " · ",
    el("span", { class: "rec-length" }, fmtDuration(Math.round(rec.duration_ms / 1000))), " · ",
    el("span", {}, rec.expires_at ? t("recording.expires", { at: fmtDateTime(rec.expires_at) }) : t("recording.kept")));
  const tools = el("div", { class: "rec-tools" },
    el("label", { class: "rec-speed-label" }, t("recording.speed"), " ", speed),
    canDownload ? el("a", { class: "button rec-download", href: rec.download_url, download: "" }, t("recording.download")) : null);
  const node = el("div", { class: "rec-item", dataset: { id: rec.id } },
    audio, tools, facts, el("p", { class: "rec-channels muted" }, t("recording.channels")), error);
  return { node, audio, speed };
}
