// The agent page and coach view: rings with a handed-off call and its context, answers it
// over WebRTC, then shows the call live — both sides' transcript with partials, the
// caller's anger and its trend, the agent's stress, the intent, knowledge cards, the
// workflow checklist and the coach's prompts. Plain script, no build step;
// window.switchboard holds its state (tests and the benchmark read it).
"use strict";

const sb = (window.switchboard = {
  agent: null, state: "connecting", callId: null, context: null, transcript: [],
  partials: {}, callerPeak: 0, micPeak: 0, error: null, intent: null, anger: null,
  angerTrend: [], stress: null, cards: [], checklist: null, prompts: [], muted: false,
  muteApplied: null, supervisor: null, lastRecord: null,
  // When each event reached the screen: {kind, leg, t_audio, key, at} with ``at`` in ms
  // since the epoch (performance.timeOrigin + now, read at the next frame): the
  // event-to-screen benchmark compares it with the server's publish time.
  rendered: [],
});
const $ = (id) => document.getElementById(id);
const MAX_RENDERED = 5000;
const SPARK = "▁▂▃▄▅▆▇█";
let ws = null, pc = null, mic = null, audioCtx = null, meterTimer = null, events = null;

function setState(state) {
  sb.state = state;
  $("state").textContent = state;
  $("answer").disabled = $("decline").disabled = state !== "ringing";
  $("hangup").disabled = state !== "in call" && state !== "answering";
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- transcript

function addLine(leg, text, t) {
  sb.transcript.push({ leg, text, t });
  const item = el("li", leg, "");
  item.append(el("span", "who", leg === "caller" ? "Caller" : leg === "agent" ? "You" : "Bot"),
              document.createTextNode(" " + text));
  const partial = $(`partial-${leg}`);
  $("transcript").insertBefore(item, partial || null);
  return item;
}

function showPartial(leg, text) {
  sb.partials[leg] = text;
  let item = $(`partial-${leg}`);
  if (!item) {
    item = el("li", `${leg} partial`);
    item.id = `partial-${leg}`;
    $("transcript").append(item);
  }
  item.textContent = `${leg === "caller" ? "Caller" : "You"}: ${text} …`;
}

function endPartial(leg) {
  delete sb.partials[leg];
  const item = $(`partial-${leg}`);
  if (item) item.remove();
}

// --- the caller and the agent

function score(value) {
  return `${value.toFixed(1)} / 10`;
}

function showAnger(e) {
  const value = e.rolling_anger;
  sb.angerTrend.push(value);
  if (sb.angerTrend.length > 12) sb.angerTrend.shift();
  const past = sb.angerTrend.length > 3 ? sb.angerTrend[sb.angerTrend.length - 4]
                                        : sb.angerTrend[0];
  const trend = value - past > 0.5 ? "rising" : past - value > 0.5 ? "falling" : "steady";
  sb.anger = { value, trend, confidence: e.confidence, baselineReady: e.baseline_ready };
  $("anger-meter").value = value;
  $("anger").textContent = score(value);
  $("anger-trend").textContent = { rising: "↑ rising", falling: "↓ falling", steady: "→ steady" }[trend];
  $("anger-trend").className = trend;
  $("anger-spark").textContent = sb.angerTrend
    .map((v) => SPARK[Math.max(0, Math.min(7, Math.round((v / 10) * 7)))]).join("");
  const sure = e.confidence === undefined ? 1 : e.confidence;
  $("anger-confidence").textContent = e.baseline_ready
    ? `confidence ${Math.round(sure * 100)}%` : "learning the caller's voice";
  $("anger").classList.toggle("unsure", sure < 0.5 || !e.baseline_ready);
}

function showStress(e) {
  sb.stress = e.rolling_stress;
  $("stress-meter").value = e.rolling_stress;
  $("stress").textContent = score(e.rolling_stress);
}

function showIntent(intent, confidence) {
  sb.intent = intent;
  $("intent").textContent = intent.replace(/_/g, " ");
  $("intent-confidence").textContent =
    confidence === undefined ? "" : `(margin ${Number(confidence).toFixed(2)})`;
}

// --- the coach

function showPrompt(e) {
  const prompt = { id: e.prompt_id, rule: e.rule, spoken: e.spoken, detail: e.detail,
                   willPlay: e.played, reason: e.reason, played: false, t: e.t_audio };
  sb.prompts.push(prompt);
  const item = el("li", `prompt ${e.rule}`);
  item.id = `prompt-${e.prompt_id}`;
  item.append(el("strong", "", e.spoken || e.rule), el("span", "status hint",
              e.played ? " · to be spoken" : ` · on screen only${e.reason ? ` (${e.reason})` : ""}`));
  if (e.detail) item.append(el("div", "detail", e.detail));
  $("prompts").prepend(item);
  return item;
}

function promptPlayed(e) {
  const prompt = sb.prompts.find((p) => p.id === e.prompt_id);
  if (prompt) prompt.played = true;
  const item = $(`prompt-${e.prompt_id}`);
  if (item) {
    item.classList.add("played");
    item.querySelector(".status").textContent = " · spoken ✓";
  }
}

function showChecklist(e) {
  sb.checklist = { flow: e.flow, steps: e.steps };
  $("checklist-flow").textContent = e.flow ? `(${e.flow.replace(/_/g, " ")})` : "";
  $("checklist").replaceChildren(...e.steps.map((step) => {
    const item = el("li", step.done ? "done" : "", `${step.done ? "☑" : "☐"} ${step.label || step.name}`);
    item.dataset.step = step.name;
    return item;
  }));
}

function showCard(e) {
  if (sb.cards.some((c) => c.title === e.title && c.flow === e.flow)) return;
  sb.cards.push({ flow: e.flow, title: e.title, text: e.text, source: e.source });
  const card = el("article", "kcard");
  card.append(el("h3", "", e.title), el("p", "", e.text));
  if (e.source) card.append(el("p", "hint", e.source));
  $("cards").prepend(card);
}

function showContext(context) {
  sb.context = context;
  $("context").hidden = false;
  $("intent").textContent = context.intent ? context.intent.intent.replace(/_/g, " ") : "none yet";
  $("anger").textContent = context.anger ? score(context.anger.rolling) : "—";
  if (context.anger) $("anger-meter").value = context.anger.rolling;
  sb.angerTrend = (context.anger_trend || []).map((a) => a.rolling);
  $("transcript").replaceChildren();
  sb.transcript = [];
  for (const line of context.transcript || []) addLine(line.leg, line.text, line.t);
}

function onMessage(message) {
  if (message.kind === "hello") {
    sb.agent = message.agent;
    $("agent-name").textContent = message.agent;
    setState("available");
  } else if (message.kind === "ringing" && sb.state === "available") {
    sb.callId = message.call_id;
    resetCoach();
    showContext(message.context);
    setState("ringing");
  } else if (message.kind === "ring_ended" && message.call_id === sb.callId &&
             sb.state !== "in call") {
    hangUp("available");
  } else if (message.kind === "call_ended" && message.call_id === sb.callId) {
    showRecordLink(sb.callId);
    hangUp("available");
  } else if (message.kind === "prompts_muted") {
    sb.muted = message.on;
    sb.muteApplied = message.applied;
    showMuted();
  }
}

function resetCoach() {
  Object.assign(sb, { partials: {}, intent: null, anger: null, angerTrend: [], stress: null,
                      cards: [], checklist: null, prompts: [], supervisor: null });
  for (const id of ["prompts", "checklist", "cards"]) $(id).replaceChildren();
  for (const id of ["checklist-flow", "anger-trend", "anger-spark", "anger-confidence",
                    "intent-confidence", "supervisor"]) $(id).textContent = "";
  $("stress").textContent = $("rule").textContent = "—";
  $("stress-meter").value = $("anger-meter").value = 0;
}

function showRecordLink(callId) {
  sb.lastRecord = `/record/${encodeURIComponent(callId)}`;
  $("record-link").href = sb.lastRecord;
  $("last-record").hidden = false;
}

function showMuted() {
  $("mute").setAttribute("aria-pressed", String(sb.muted));
  $("mute").textContent = sb.muted ? "Spoken prompts muted" : "Mute spoken prompts";
}

// One event onto the screen; returns a key naming what was drawn (null: nothing).
function render(e) {
  // The events start from the call's beginning: skip what the context already showed
  // (the caller's and bot's lines up to the last one; each leg's t_audio is its own clock).
  const seen = e.leg === "caller" && e.t_audio <= lastContextT() + 0.01;
  switch (e.kind) {
    case "transcript_partial":
      if (e.text && (e.leg === "caller" || e.leg === "agent") && !seen) {
        showPartial(e.leg, e.text);
        return `partial:${e.leg}:${e.utterance}`;
      }
      return null;
    case "transcript_final":
      if (!e.text || seen) return null;
      endPartial(e.leg);
      addLine(e.leg, e.text, e.t_audio);
      return `final:${e.leg}:${e.utterance}`;
    case "bot_reply":
      if (!e.text || seen) return null;
      addLine("bot", e.text, e.t_audio);
      return `bot:${e.reply_id}`;
    case "emotion":
      if (e.leg === "caller") showAnger(e); else if (e.leg === "agent") showStress(e);
      return `emotion:${e.leg}:${e.utterance}`;
    case "intent":
      if (e.leg !== "caller" || !e.intent || e.intent === "out_of_scope") return null;
      showIntent(e.intent, e.confidence);
      return `intent:${e.utterance}`;
    case "handoff_requested":
      $("rule").textContent = e.detail ? `${e.rule} (${e.detail})` : e.rule;
      return "handoff";
    case "coach_prompt":
      showPrompt(e);
      return `prompt:${e.prompt_id}`;
    case "coach_prompt_played":
      promptPlayed(e);
      return `played:${e.prompt_id}`;
    case "checklist":
      showChecklist(e);
      return `checklist:${e.flow}:${e.steps.filter((s) => s.done).length}`;
    case "knowledge_card":
      showCard(e);
      return `card:${e.title}`;
    case "supervisor":
      sb.supervisor = e.mode ? { name: e.supervisor, mode: e.mode } : null;
      $("supervisor").textContent = e.mode ? `Supervisor ${e.supervisor}: ${e.mode}` : "";
      return `supervisor:${e.mode}`;
    default:
      return null;
  }
}

// Follow the call live (the session may read the call it is on, nothing else).
function follow(callId) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  events = new WebSocket(`${scheme}://${location.host}/api/calls/${callId}/events`);
  events.onmessage = (msg) => {
    const e = JSON.parse(msg.data);
    const key = render(e);
    if (key === null) return;
    // The frame that shows it: the next animation frame after the DOM change.
    requestAnimationFrame(() => {
      if (sb.rendered.length >= MAX_RENDERED) sb.rendered.shift();
      sb.rendered.push({ kind: e.kind, leg: e.leg, t_audio: e.t_audio, key,
                         at: performance.timeOrigin + performance.now() });
    });
  };
}

function lastContextT() {
  const lines = (sb.context && sb.context.transcript) || [];
  return lines.length ? lines[lines.length - 1].t : -1;
}

async function answer() {
  setState("answering");
  audioCtx = new AudioContext();
  try {
    mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    const meters = [meter(mic, $("mic-level"), "micPeak")];
    pc = new RTCPeerConnection({ iceServers: [] });
    mic.getTracks().forEach((track) => pc.addTrack(track, mic));
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      $("caller-audio").srcObject = stream;
      meters.push(meter(stream, $("caller-level"), "callerPeak"));
    };
    pc.onconnectionstatechange = () => {
      if (!pc) return;
      if (pc.connectionState === "connected") {
        setState("in call");
        follow(sb.callId);
        // A mute chosen before (or between) calls holds for this one's coach too.
        if (sb.muted) sendMute(true);
      }
      if (pc.connectionState === "failed") hangUp("available");
    };
    meterTimer = setInterval(() => meters.forEach((m) => m()), 100);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const response = await fetch("/agent/answer", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ call_id: sb.callId, sdp: pc.localDescription.sdp }),
    });
    const reply = await response.json();
    if (!response.ok) throw new Error(reply.error || response.statusText);
    await pc.setRemoteDescription({ sdp: reply.sdp, type: reply.type });
  } catch (err) {
    sb.error = String(err.message || err);
    hangUp("available");
  }
}

function hangUp(next) {
  if (meterTimer) clearInterval(meterTimer);
  if (events) events.close();
  if (pc) pc.close();
  if (mic) mic.getTracks().forEach((t) => t.stop());
  if (audioCtx) audioCtx.close();
  if (sb.state === "in call" && sb.callId) showRecordLink(sb.callId);
  meterTimer = events = pc = mic = audioCtx = null;
  setState(next);
}

function sendMute(on) {
  sb.muted = on;
  showMuted();
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ kind: "mute_prompts", on }));
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/agent/ws`);
  ws.onmessage = (msg) => onMessage(JSON.parse(msg.data));
  ws.onclose = () => {
    setState("offline");
    setTimeout(connect, 3000);  // the server restarted or the network blinked
  };
}

$("answer").addEventListener("click", answer);
$("decline").addEventListener("click", () => {
  if (ws) ws.send(JSON.stringify({ kind: "decline", call_id: sb.callId }));
  setState("available");
});
$("hangup").addEventListener("click", () => hangUp("available"));
$("mute").addEventListener("click", () => sendMute(!sb.muted));
$("logout").addEventListener("click", async () => {
  await fetch("/logout", { method: "POST" });
  window.location.assign("/login");
});
connect();
