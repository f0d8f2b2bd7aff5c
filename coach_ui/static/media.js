// Shared by the pages that hold a WebRTC call (caller, agent, board): levels and ICE.
// Each page declares its own `audioCtx` and `sb` (window.switchboard, read by the tests).

// RMS level of an audio stream, read every 100 ms by the page (its meters, and sb[key]:
// the loudest level seen, which the tests read).
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

// Signalling is one offer with every candidate in it (no trickle): wait for gathering,
// at most 3 s (host candidates on loopback take milliseconds).
function gathered(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 3000);
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}
