// The supervisor board: every live call, riskiest first, fed by /board/ws; listen, whisper
// or barge on any call over one WebRTC connection (a mode switch is a POST, the
// connection stays). Plain script, no build step; window.switchboard holds its state
// (tests read it).
"use strict";

const sb = (window.switchboard = {
  supervisor: null, state: "connecting", rows: {}, updates: 0, joined: null, mode: null,
  callPeak: 0, micPeak: 0, error: null, alertsSeen: 0,
});
const $ = (id) => document.getElementById(id);
const MODES = ["listen", "whisper", "barge"];
let ws = null, pc = null, mic = null, audioCtx = null, meterTimer = null, clockSkew = 0;
let renderPending = false;
const rowsById = new Map();

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setState(state) {
  sb.state = state;
  $("state").textContent = state;
}

// --- the table

function duration(row) {
  const s = Math.max(0, Math.round(Date.now() / 1000 + clockSkew - row.started_at));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function ordered() {
  return Object.values(sb.rows).sort((a, b) => b.risk - a.risk || a.started_at - b.started_at);
}

function rowElement(row) {
  let tr = rowsById.get(row.call_id);
  if (!tr) {
    tr = el("tr");
    tr.dataset.call = row.call_id;
    for (const name of ["risk", "number", "state", "time", "agent", "intent", "anger",
                        "alerts", "supervisors", "actions"]) tr.append(el("td", name));
    for (const mode of MODES) {
      const button = el("button", `mode ${mode}`, mode[0].toUpperCase() + mode.slice(1));
      button.type = "button";
      button.dataset.mode = mode;
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => stepIn(row.call_id, mode));
      tr.querySelector(".actions").append(button, " ");
    }
    rowsById.set(row.call_id, tr);
  }
  return tr;
}

function fill(tr, row) {
  const cell = (name) => tr.querySelector(`.${name}`);
  cell("risk").textContent = row.risk.toFixed(1);
  cell("number").textContent = row.number;
  cell("state").textContent = row.state + (row.handoff && row.state === "waiting" ? ` (${row.handoff})` : "");
  cell("time").textContent = duration(row);
  cell("agent").textContent = row.agent || "—";
  cell("intent").textContent = row.intent ? row.intent.replace(/_/g, " ") : "—";
  cell("anger").textContent = row.anger === null || row.anger === undefined ? "—" : row.anger.toFixed(1);
  const alerts = cell("alerts");
  const latest = row.alerts[row.alerts.length - 1];
  const shown = alerts.dataset.count || "0";
  if (String(row.alerts.length) !== shown || (latest && alerts.dataset.at !== String(latest.at))) {
    alerts.replaceChildren();
    if (latest) {
      alerts.append(el("strong", "alert-level", latest.level.toFixed(0)), " ",
                    el("span", "", latest.reason + (latest.detail ? ` — ${latest.detail}` : "")));
      if (row.alerts.length > 1) alerts.append(el("span", "hint", ` (+${row.alerts.length - 1})`));
      alerts.classList.remove("alert-new");
      void alerts.offsetWidth; // restart the flash
      alerts.classList.add("alert-new");
    }
    alerts.dataset.count = String(row.alerts.length);
    alerts.dataset.at = latest ? String(latest.at) : "";
  }
  cell("supervisors").textContent = Object.entries(row.supervisors)
    .map(([name, mode]) => `${name} (${mode})`).join(", ") || "—";
  tr.className = row.risk >= 7 ? "high" : row.risk >= 4 ? "medium" : "";
  if (sb.joined === row.call_id) tr.classList.add("joined");
  for (const button of tr.querySelectorAll("button.mode"))
    button.setAttribute("aria-pressed", String(sb.joined === row.call_id && sb.mode === button.dataset.mode));
}

function render() {
  renderPending = false;
  const body = $("rows");
  const rows = ordered();
  rows.forEach((row, i) => {
    const tr = rowElement(row);
    fill(tr, row);
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  for (const [id, tr] of rowsById) {
    if (!(id in sb.rows)) { tr.remove(); rowsById.delete(id); }
  }
  sb.order = rows.map((r) => r.call_id);
  $("count").textContent = `${rows.length} call${rows.length === 1 ? "" : "s"}`;
  $("empty").hidden = rows.length > 0;
}

function scheduleRender() {
  if (!renderPending) { renderPending = true; requestAnimationFrame(render); }
}

function onMessage(message) {
  if (message.kind === "hello") {
    sb.supervisor = message.supervisor;
    $("supervisor-name").textContent = message.supervisor;
    setState("watching");
  } else if (message.kind === "rows") {
    sb.updates += 1;
    clockSkew = message.now - Date.now() / 1000;
    for (const row of message.rows) sb.rows[row.call_id] = row;
    for (const id of message.removed) {
      delete sb.rows[id];
      if (sb.joined === id) leave(false);
    }
    sb.alertsSeen = Object.values(sb.rows).reduce((n, r) => n + r.alerts.length, 0);
    scheduleRender();
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/board/ws`);
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = () => { setState("disconnected"); setTimeout(connect, 2000); };
}

// --- stepping in

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = {};
  try { parsed = JSON.parse(text); } catch { parsed = { error: text }; }
  if (!response.ok) throw new Error(parsed.error || `${path}: ${response.status}`);
  return parsed;
}

async function join(callId, mode) {
  audioCtx = audioCtx || new AudioContext();
  mic = mic || await navigator.mediaDevices.getUserMedia({ audio: true });
  pc = new RTCPeerConnection({ iceServers: [] });
  mic.getTracks().forEach((track) => pc.addTrack(track, mic));
  const meters = [meter(mic, $("mic-level"), "micPeak")];
  pc.ontrack = (e) => {
    const stream = e.streams[0] || new MediaStream([e.track]);
    $("call-audio").srcObject = stream;
    meters.push(meter(stream, $("call-level"), "callPeak"));
  };
  pc.createDataChannel("events").onmessage = (e) => {
    const message = JSON.parse(e.data);
    if (message.kind === "ended" && sb.joined === callId) leave(false);
  };
  pc.onconnectionstatechange = () => {
    if (pc && pc.connectionState === "connected") setState("on call");
    if (pc && pc.connectionState === "failed") leave(false);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const answer = await post("/board/supervise", { call_id: callId, mode, sdp: pc.localDescription.sdp });
  await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
  sb.joined = callId;
  sb.mode = answer.mode;
  meterTimer = setInterval(() => meters.forEach((m) => m()), 100);
}

async function stepIn(callId, mode) {
  sb.error = null;
  try {
    if (sb.joined === callId) {
      const result = await post("/board/mode", { call_id: callId, mode });
      sb.mode = result.mode;
    } else {
      if (sb.joined) await leave(true);
      setState("joining");
      await join(callId, mode);
    }
  } catch (err) {
    sb.error = String(err.message || err);
    setState(`error: ${sb.error}`);
  }
  showJoined();
}

async function leave(tellServer) {
  const callId = sb.joined;
  if (tellServer && callId) {
    try { await post("/board/leave", { call_id: callId }); } catch { /* ended already */ }
  }
  if (meterTimer) clearInterval(meterTimer);
  if (pc) pc.close();
  pc = null;
  sb.joined = null;
  sb.mode = null;
  setState("watching");
  showJoined();
}

function showJoined() {
  const row = sb.joined && sb.rows[sb.joined];
  $("joined").textContent = sb.joined
    ? `on call ${row ? row.number : sb.joined} (${sb.mode})` : "not on a call";
  $("leave").disabled = !sb.joined;
  scheduleRender();
}

$("leave").addEventListener("click", () => leave(true));
$("logout").addEventListener("click", async () => {
  await fetch("/logout", { method: "POST" });
  location.assign("/login");
});
setInterval(() => {
  for (const [id, tr] of rowsById) if (sb.rows[id]) tr.querySelector(".time").textContent = duration(sb.rows[id]);
}, 1000);
connect();
