// The after-call record: summary, transcript of both sides, prompts, handoff, events.
// Reads /record/{id}/json with the session's cookie; window.switchboard holds what it read
// (tests read it).
"use strict";

const sb = (window.switchboard = { record: null, error: null, loaded: false });
const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// One line saying what an event was about (its words, its score, its step...).
function gist(e) {
  switch (e.kind) {
    case "transcript_final": case "transcript_partial": case "bot_reply": return e.text || "";
    case "intent": return `${e.intent} (${Number(e.confidence).toFixed(2)})`;
    case "emotion": return `anger ${Number(e.rolling_anger).toFixed(1)}, stress ${Number(e.rolling_stress).toFixed(1)}`;
    case "coach_prompt": return `${e.rule}: ${e.spoken}${e.played ? "" : ` (shown only: ${e.reason})`}`;
    case "coach_prompt_played": return `prompt ${e.prompt_id} spoken`;
    case "checklist": return e.steps.map((s) => `${s.done ? "☑" : "☐"} ${s.label || s.name}`).join("  ");
    case "knowledge_card": return e.title;
    case "risk_alert": return `${Number(e.level).toFixed(1)}: ${e.reason}`;
    case "handoff_requested": return `${e.rule} ${e.detail || ""}`;
    case "handoff": return `${e.status} ${e.agent || ""} ${e.detail || ""}`;
    case "call_state": return `${e.state} ${e.reason || ""}`;
    case "leg_joined": case "leg_left": return `${e.role || ""} ${e.reason || ""}`;
    case "supervisor": return `${e.supervisor} ${e.mode || "left"}`;
    case "dtmf": return e.digit;
    case "turn_resumed": return `reply ${e.reply_id} withdrawn: the caller was still talking`;
    default: return "";
  }
}

function show(record) {
  sb.record = record;
  const summary = record.summary || {};
  const after = summary.after_call || {};
  $("call-id").textContent = record.call_id;
  $("summary-text").textContent = after.text || "No summary was made for this call.";
  $("wanted").textContent = after.request ? `${after.wanted} — “${after.request}”` : (after.wanted || "—");
  $("done").replaceChildren(...(after.done || []).map((d) => el("li", "", d)));
  $("outcome").textContent = after.outcome || record.end_reason || record.status;
  $("agent").textContent = summary.agent || "—";
  const handoff = (record.handoffs || [])[0];
  $("handoff").textContent = handoff
    ? `${handoff.reason}${handoff.detail ? ` (${handoff.detail})` : ""} → ${handoff.agent || "nobody"}, ${handoff.outcome || "pending"}`
    : "none";
  $("started").textContent = new Date(record.started_at * 1000).toLocaleString();
  $("duration").textContent = record.duration_s === null ? "live" : `${record.duration_s.toFixed(0)} s`;
  $("transcript").replaceChildren(...(record.transcript || []).map((line) => {
    const item = el("li", line.speaker);
    const who = { caller: "Caller", agent: "Agent", bot: "Bot" }[line.speaker] || line.speaker;
    item.append(el("span", "who", who), document.createTextNode(` ${line.text}`));
    return item;
  }));
  const prompts = after.prompts || [];
  $("prompts").replaceChildren(...(prompts.length ? prompts.map((p) => {
    const item = el("li", `prompt ${p.rule}${p.played ? " played" : ""}`);
    item.append(el("strong", "", p.spoken || p.rule),
                el("span", "hint", p.played ? " · spoken" : ` · shown only${p.reason ? ` (${p.reason})` : ""}`));
    if (p.detail) item.append(el("div", "detail", p.detail));
    return item;
  }) : [el("li", "hint", "no prompts on this call")]));
  const events = record.events || [];
  $("event-count").textContent = `(${events.length})`;
  $("events").replaceChildren(...events.map((e) => {
    const row = el("tr");
    row.append(el("td", "", Number(e.t_audio).toFixed(2)), el("td", "", e.leg),
               el("td", "", e.kind), el("td", "", gist(e)));
    return row;
  }));
  sb.loaded = true;
}

async function load() {
  const id = decodeURIComponent(location.pathname.split("/")[2] || "");
  try {
    const response = await fetch(`/record/${encodeURIComponent(id)}/json`);
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    show(body);
  } catch (err) {
    sb.error = String(err.message || err);
    $("error").textContent = `Could not load the record: ${sb.error}`;
  }
}

load();
