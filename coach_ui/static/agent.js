// The agent page: rings with a handed-off call and its context, answers it over WebRTC.
// Plain script, no build step; window.switchboard holds its state (tests read it).
"use strict";

const sb = (window.switchboard = {
  agent: null, state: "connecting", callId: null, context: null, transcript: [],
  callerPeak: 0, micPeak: 0, error: null,
});
const $ = (id) => document.getElementById(id);
let ws = null, pc = null, mic = null, audioCtx = null, meterTimer = null, events = null;

function setState(state) {
  sb.state = state;
  $("state").textContent = state;
  $("answer").disabled = $("decline").disabled = state !== "ringing";
  $("hangup").disabled = state !== "in call" && state !== "answering";
}

function meter(stream, element, key) {
  const analyser = audioCtx.createAnalyser();
  analyser.fftSize = 2048;
  audioCtx.createMediaStreamSource(stream).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  return () => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    const rms = Math.sqrt(sum / buf.length);
    element.value = Math.min(1, rms * 4);
    sb[key] = Math.max(sb[key], rms);
  };
}

function addLine(leg, text, t) {
  sb.transcript.push({ leg, text, t });
  const item = document.createElement("li");
  item.className = leg === "caller" ? "" : "bot";
  item.textContent = `${leg}: ${text}`;
  $("transcript").append(item);
}

function showContext(context) {
  sb.context = context;
  $("context").hidden = false;
  $("intent").textContent = context.intent ? context.intent.intent : "none yet";
  $("anger").textContent = context.anger ? `${context.anger.rolling} / 10` : "—";
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
    showContext(message.context);
    setState("ringing");
  } else if (message.kind === "ring_ended" && message.call_id === sb.callId &&
             sb.state !== "in call") {
    hangUp("available");
  } else if (message.kind === "call_ended" && message.call_id === sb.callId) {
    hangUp("available");
  }
}

function gathered(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 3000);
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}

// Follow the call live (the session may read the call it is on, nothing else).
function follow(callId) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  events = new WebSocket(`${scheme}://${location.host}/api/calls/${callId}/events`);
  events.onmessage = (msg) => {
    const e = JSON.parse(msg.data);
    // The events start from the call's beginning: skip what the context already showed
    // (the caller's lines up to its last one; each leg's t_audio is its own clock).
    const seen = e.leg === "caller" && e.t_audio <= lastContextT() + 0.01;
    if (e.kind === "transcript_final" && e.text && !seen) {
      addLine(e.leg, e.text, e.t_audio);
    } else if (e.kind === "emotion" && e.leg === "caller") {
      $("anger").textContent = `${e.rolling_anger.toFixed(1)} / 10`;
    } else if (e.kind === "intent" && e.leg === "caller" && e.intent) {
      $("intent").textContent = e.intent;
    }
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
      if (pc.connectionState === "connected") { setState("in call"); follow(sb.callId); }
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
  meterTimer = events = pc = mic = audioCtx = null;
  setState(next);
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
$("logout").addEventListener("click", async () => {
  await fetch("/logout", { method: "POST" });
  window.location.assign("/login");
});
connect();
