// The caller page: one WebRTC call to the bot. Plain script, no build step.
// window.switchboard holds the page's state so tests (and curious users) can read it.
"use strict";

const sb = (window.switchboard = {
  state: "ready", callId: null, transcript: [], botPeak: 0, micPeak: 0, error: null,
});
const $ = (id) => document.getElementById(id);
let pc = null, channel = null, mic = null, audioCtx = null, meterTimer = null;

function setState(state, detail) {
  sb.state = state;
  $("state").textContent = detail ? `${state}: ${detail}` : state;
  const live = state === "connecting" || state === "in call";
  $("call").disabled = live;
  $("hangup").disabled = !live;
  $("keypad").hidden = state !== "in call";
}

function show(event) {
  if (event.kind === "call") sb.callId = event.call_id;
  else if (event.kind === "transcript_partial") $("partial").textContent = event.text;
  else if (event.kind === "transcript_final" || event.kind === "bot_reply") {
    const who = event.kind === "bot_reply" ? "bot" : "you";
    sb.transcript.push({ who, text: event.text });
    const item = document.createElement("li");
    item.className = who;
    item.textContent = `${who === "bot" ? "Bot" : "You"}: ${event.text}`;
    $("transcript").append(item);
    $("partial").textContent = "";
  } else if (event.kind === "ended") finish(`call ended (${event.reason})`);
}

async function call() {
  setState("connecting");
  sb.transcript = []; sb.botPeak = 0; sb.micPeak = 0; sb.error = null;
  $("transcript").replaceChildren();
  audioCtx = new AudioContext();  // made inside the click, so the browser lets it play
  try {
    mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    const meters = [meter(mic, $("mic-level"), "micPeak")];
    pc = new RTCPeerConnection({ iceServers: [] });
    channel = pc.createDataChannel("events");
    channel.onmessage = (msg) => show(JSON.parse(msg.data));
    mic.getTracks().forEach((track) => pc.addTrack(track, mic));
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      $("bot-audio").srcObject = stream;  // Chrome plays remote audio only through an element
      meters.push(meter(stream, $("bot-level"), "botPeak"));
    };
    pc.onconnectionstatechange = () => {
      if (pc && pc.connectionState === "connected") setState("in call");
      if (pc && pc.connectionState === "failed") finish("connection failed");
    };
    meterTimer = setInterval(() => meters.forEach((m) => m()), 100);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const response = await fetch("/webrtc/offer", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer" }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    sb.callId = answer.call_id;
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
  } catch (err) {
    sb.error = String(err.message || err);
    finish(`failed: ${sb.error}`);
  }
}

function finish(detail) {
  if (meterTimer) clearInterval(meterTimer);
  meterTimer = null;
  if (pc) pc.close();
  if (mic) mic.getTracks().forEach((t) => t.stop());
  if (audioCtx) audioCtx.close();
  pc = channel = mic = audioCtx = null;
  setState("ended", detail);
}

$("call").addEventListener("click", call);
$("hangup").addEventListener("click", () => finish("you hung up"));
$("keypad").addEventListener("click", (e) => {
  const digit = e.target.dataset && e.target.dataset.digit;
  if (digit && channel && channel.readyState === "open") {
    channel.send(JSON.stringify({ dtmf: digit }));
  }
});
