// hxfr-view viewer: receives a scanout's H.264 stream from the gateway over
// a WebSocket, decodes it with WebCodecs and draws it on a canvas.
// Message format: docs/viewer.md. Plain JavaScript, no build step.
//
// Test hook: with ?report=URL&frames=N in the page URL the page POSTs a JSON
// report to URL after N decoded frames (see docs/viewer.md for the other
// parameters: probe, grid, reset_at).
'use strict';

(function () {
  const MAGIC = 0x56465848; // "HXFV"
  const VERSION = 1;
  const HEADER_SIZE = 32;
  const TYPE_FRAME = 1;
  const FLAG_KEYFRAME = 0x0001;
  const FLAG_NEW_STREAM = 0x0002;
  const MAX_DECODE_QUEUE = 24;     // beyond this the page is behind: resync
  const KEYFRAME_RETRY_MS = 1000;  // re-ask while still waiting this long
  const PING_INTERVAL_MS = 2000;
  const RECONNECT_MIN_MS = 250;
  const RECONNECT_MAX_MS = 5000;

  const params = new URLSearchParams(location.search);
  // /scanout/N, or /NAME/scanout/N for a gateway serving several VMs.
  const pathMatch = /^(\/[A-Za-z0-9_-]+)?\/scanout\/(\d+)$/.exec(location.pathname);
  const vmPrefix = pathMatch && pathMatch[1] ? pathMatch[1] : '';
  const scanout = pathMatch ? Number(pathMatch[2]) : 0;
  const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
    vmPrefix + '/ws/' + scanout;

  const canvas = document.getElementById('screen');
  const statsEl = document.getElementById('stats');
  const bannerEl = document.getElementById('banner');
  // Reading pixels back (test hook) is cheapest from a CPU-backed canvas.
  const ctx = canvas.getContext('2d', { willReadFrequently: params.has('report') });

  const st = {
    ws: null,
    connects: 0,
    connected: false,
    reconnectMs: RECONNECT_MIN_MS,
    decoder: null,
    codec: null,
    waitingKey: true,
    lastKeyRequest: 0,
    lastSeq: null,
    tsNext: 0,
    pending: new Map(),       // chunk timestamp -> gateway receive time (us)
    clockOffsetMs: 0,         // gateway realtime clock minus Date.now()
    bestRtt: Infinity,
    pings: new Map(),         // token -> Date.now() at send
    pingToken: 1,
    framesReceived: 0,
    framesDecoded: 0,
    keyframesDecoded: 0,
    bytes: 0,
    keyframeRequests: 0,
    resets: 0,
    gaps: 0,
    skipped: 0,
    errors: [],
    lastAgeMs: null,
    width: 0,
    height: 0,
    upstream: 'connecting',
    upstreamMessage: '',
    // For the per-second rates.
    tickFrames: 0,
    tickBytes: 0,
    fps: 0,
    kbps: 0,
  };
  window.hxfrView = st;

  function noteError(text) {
    if (st.errors.length < 50) {
      st.errors.push(text);
    }
    console.warn('hxfr-view: ' + text);
  }

  function banner(text) {
    bannerEl.textContent = text;
    bannerEl.style.display = text ? 'block' : 'none';
  }

  // ---- Keyframes and decoder resets ----------------------------------------

  function requestKeyframe() {
    if (st.ws && st.ws.readyState === WebSocket.OPEN) {
      st.ws.send('keyframe');
      st.keyframeRequests++;
      st.lastKeyRequest = performance.now();
    }
  }

  // Drops the decoder state and everything in flight, then waits for (and
  // asks for) a keyframe: nothing else can be decoded correctly after an
  // error or a missing frame.
  function resetDecoder(reason) {
    st.resets++;
    noteError('decoder reset: ' + reason);
    if (st.decoder && st.decoder.state !== 'closed') {
      try {
        st.decoder.reset();
      } catch (e) {
        st.decoder = null;
      }
    }
    st.pending.clear();
    st.codec = null;
    st.waitingKey = true;
    requestKeyframe();
  }

  // ---- Decoding --------------------------------------------------------------

  // The codec string comes from the SPS: avc1.PPCCLL (profile_idc,
  // constraint flags, level_idc), e.g. avc1.42E01F or avc1.640028.
  function codecFromAnnexB(data) {
    const hex = (v) => v.toString(16).toUpperCase().padStart(2, '0');
    for (let i = 0; i + 6 < data.length; i++) {
      if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
        const nalType = data[i + 3] & 0x1f;
        if (nalType === 7) {
          return 'avc1.' + hex(data[i + 4]) + hex(data[i + 5]) + hex(data[i + 6]);
        }
        i += 2;
      }
    }
    return null;
  }

  function onDecoded(frame) {
    const w = frame.displayWidth;
    const h = frame.displayHeight;
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    st.width = w;
    st.height = h;
    ctx.drawImage(frame, 0, 0, w, h);
    const recvUs = st.pending.get(frame.timestamp);
    st.pending.delete(frame.timestamp);
    if (recvUs !== undefined) {
      st.lastAgeMs = Date.now() + st.clockOffsetMs - recvUs / 1000;
    }
    frame.close();
    st.framesDecoded++;
    st.tickFrames++;
    if (st.framesDecoded === 1) {
      renderStats();
    }
    if (hook) {
      hook.onFrame();
    }
  }

  function onDecoderError(e) {
    // The decoder is closed after an error: make a new one at the next
    // keyframe.
    st.decoder = null;
    resetDecoder('decoder error: ' + (e && e.message ? e.message : e));
  }

  function ensureDecoder(codec) {
    if (!st.decoder || st.decoder.state === 'closed') {
      st.decoder = new VideoDecoder({ output: onDecoded, error: onDecoderError });
      st.codec = null;
    }
    if (st.decoder.state !== 'configured' || st.codec !== codec) {
      // Annex B input without a description: SPS and PPS travel in-band.
      st.decoder.configure({ codec: codec, optimizeForLatency: true });
      st.codec = codec;
    }
  }

  function onFrameMessage(buf) {
    if (buf.byteLength < HEADER_SIZE) {
      noteError('short frame message');
      return;
    }
    const dv = new DataView(buf);
    const headerSize = dv.getUint16(14, true);
    if (dv.getUint32(0, true) !== MAGIC || dv.getUint8(4) !== VERSION ||
        dv.getUint8(5) !== TYPE_FRAME || headerSize < HEADER_SIZE ||
        headerSize > buf.byteLength) {
      noteError('unknown binary message');
      return;
    }
    const flags = dv.getUint16(6, true);
    const seq = dv.getUint32(8, true);
    const recvUs = Number(dv.getBigInt64(24, true));
    const data = new Uint8Array(buf, headerSize);
    const key = (flags & FLAG_KEYFRAME) !== 0;
    st.framesReceived++;
    st.bytes += buf.byteLength;
    st.tickBytes += buf.byteLength;

    const expected = st.lastSeq === null ? seq : (st.lastSeq + 1) >>> 0;
    st.lastSeq = seq;
    if (seq !== expected) {
      st.gaps++;
      // A missing frame breaks every later P-frame; a keyframe heals it.
      if (!key && !st.waitingKey) {
        resetDecoder('sequence gap: expected ' + expected + ', got ' + seq);
      }
    }
    if ((flags & FLAG_NEW_STREAM) && !key && !st.waitingKey) {
      resetDecoder('new stream without a keyframe');
    }
    if (st.waitingKey && !key) {
      st.skipped++;
      return;
    }
    if (key) {
      const codec = codecFromAnnexB(data);
      if (!codec) {
        resetDecoder('keyframe without SPS');
        return;
      }
      try {
        ensureDecoder(codec);
      } catch (e) {
        st.decoder = null;
        resetDecoder('configure ' + codec + ': ' + e.message);
        return;
      }
      st.waitingKey = false;
    }
    if (st.decoder.decodeQueueSize > MAX_DECODE_QUEUE) {
      resetDecoder('decoder falling behind (' + st.decoder.decodeQueueSize + ' queued)');
      return;
    }
    const ts = st.tsNext++;
    st.pending.set(ts, recvUs);
    try {
      st.decoder.decode(new EncodedVideoChunk({
        type: key ? 'key' : 'delta',
        timestamp: ts,
        data: data,
      }));
      if (key) {
        st.keyframesDecoded++;
      }
    } catch (e) {
      st.pending.delete(ts);
      resetDecoder('decode: ' + e.message);
    }
  }

  // ---- Text messages ---------------------------------------------------------

  function onTextMessage(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      noteError('bad text message');
      return;
    }
    if (msg.type === 'hello') {
      // A first clock estimate; pongs refine it.
      if (st.bestRtt === Infinity) {
        st.clockOffsetMs = msg.time_us / 1000 - Date.now();
      }
    } else if (msg.type === 'status') {
      st.upstream = msg.state;
      st.upstreamMessage = msg.message || '';
      renderStats();
      if (msg.state === 'streaming') {
        banner('');
      } else if (msg.state === 'disconnected' || msg.state === 'unavailable') {
        banner('host: ' + msg.message +
          (msg.retry_ms ? ' (retrying in ' + msg.retry_ms + ' ms)' : ''));
      }
    } else if (msg.type === 'pong') {
      const sent = st.pings.get(msg.token);
      st.pings.delete(msg.token);
      if (sent !== undefined) {
        const now = Date.now();
        const rtt = now - sent;
        // The sample with the smallest round trip bounds the error best.
        if (rtt <= st.bestRtt) {
          st.bestRtt = rtt;
          st.clockOffsetMs = msg.time_us / 1000 - (sent + now) / 2;
        }
      }
    }
  }

  function sendPing() {
    if (st.ws && st.ws.readyState === WebSocket.OPEN) {
      const token = st.pingToken++;
      st.pings.set(token, Date.now());
      if (st.pings.size > 16) {
        st.pings.delete(st.pings.keys().next().value);
      }
      st.ws.send('ping ' + token);
    }
  }

  // ---- Connection ------------------------------------------------------------

  function connect() {
    const ws = new WebSocket(wsUrl);
    ws.binaryType = 'arraybuffer';
    st.ws = ws;
    ws.onopen = function () {
      st.connects++;
      st.connected = true;
      st.reconnectMs = RECONNECT_MIN_MS;
      // A (re)connected gateway starts this browser at a keyframe.
      st.lastSeq = null;
      st.waitingKey = true;
      st.pending.clear();
      st.lastKeyRequest = performance.now();
      banner('');
      sendPing();
    };
    ws.onmessage = function (ev) {
      if (typeof ev.data === 'string') {
        onTextMessage(ev.data);
      } else {
        onFrameMessage(ev.data);
      }
    };
    ws.onclose = function (ev) {
      if (st.ws !== ws) {
        return;
      }
      st.ws = null;
      st.connected = false;
      st.upstream = 'gateway lost';
      const delay = st.reconnectMs;
      st.reconnectMs = Math.min(st.reconnectMs * 2, RECONNECT_MAX_MS);
      banner('gateway connection closed' + (ev.reason ? ' (' + ev.reason + ')' : '') +
        '; reconnecting in ' + delay + ' ms');
      setTimeout(connect, delay);
    };
    ws.onerror = function () {
      // onclose follows and handles the reconnect.
    };
  }

  // ---- Stats overlay ---------------------------------------------------------

  function tick() {
    st.fps = st.tickFrames;
    st.kbps = Math.round(st.tickBytes * 8 / 1000);
    st.tickFrames = 0;
    st.tickBytes = 0;
    if (st.waitingKey && st.connected &&
        performance.now() - st.lastKeyRequest > KEYFRAME_RETRY_MS) {
      requestKeyframe();
    }
    renderStats();
  }

  function renderStats() {
    const age = st.lastAgeMs === null ? '-' : st.lastAgeMs.toFixed(0) + ' ms';
    statsEl.textContent =
      (vmPrefix ? vmPrefix.slice(1) + ' ' : '') + 'scanout ' + scanout + '  ' + (st.width ? st.width + 'x' + st.height : '') +
      '  ' + (st.codec || '') + '\n' +
      'fps ' + st.fps + '   ' + st.kbps + ' kbit/s\n' +
      'decode queue ' + (st.decoder ? st.decoder.decodeQueueSize : 0) +
      '   frame age ' + age + '\n' +
      'decoded ' + st.framesDecoded + '  gaps ' + st.gaps + '  skipped ' + st.skipped +
      '  keyframe req ' + st.keyframeRequests + '\n' +
      'host: ' + st.upstream + (st.waitingKey && st.connected ? '  (waiting for keyframe)' : '');
  }

  // ---- Test hook -------------------------------------------------------------

  function makeHook() {
    if (!params.has('report')) {
      return null;
    }
    const h = {
      url: params.get('report'),
      frames: Math.max(1, Number(params.get('frames') || 60)),
      resetAt: Number(params.get('reset_at') || 0),
      probes: [],
      grid: null,
      resetState: 'none', // none -> posting -> done
      framesAtReset: 0,
      finished: false,
      alive: 0,
    };
    for (const p of (params.get('probe') || '').split(';')) {
      const xy = p.split(',').map(Number);
      if (xy.length === 2 && xy.every(Number.isInteger)) {
        h.probes.push({ x: xy[0], y: xy[1] });
      }
    }
    const g = /^(\d+)x(\d+)$/.exec(params.get('grid') || '');
    if (g) {
      h.grid = { cols: Math.min(64, Number(g[1])), rows: Math.min(64, Number(g[2])) };
    }

    function post(body) {
      // A plain-text POST is a "simple" request: no CORS preflight, and the
      // promise settles once the test server has answered.
      return fetch(h.url, {
        method: 'POST',
        mode: 'no-cors',
        headers: { 'Content-Type': 'text/plain' },
        body: JSON.stringify(body),
      }).catch(function (e) {
        noteError('report POST failed: ' + e.message);
      });
    }

    function pixel(x, y) {
      const d = ctx.getImageData(x, y, 1, 1).data;
      return [d[0], d[1], d[2]];
    }

    function report() {
      const samples = h.probes.filter((p) => p.x < canvas.width && p.y < canvas.height)
        .map((p) => ({ x: p.x, y: p.y, rgb: pixel(p.x, p.y) }));
      let grid = null;
      if (h.grid) {
        grid = [];
        for (let r = 0; r < h.grid.rows; r++) {
          for (let c = 0; c < h.grid.cols; c++) {
            const x = Math.floor((c + 0.5) * canvas.width / h.grid.cols);
            const y = Math.floor((r + 0.5) * canvas.height / h.grid.rows);
            grid.push({ x: x, y: y, rgb: pixel(x, y) });
          }
        }
      }
      return {
        phase: 'final',
        scanout: scanout,
        frames_decoded: st.framesDecoded,
        frames_received: st.framesReceived,
        keyframes_decoded: st.keyframesDecoded,
        frames_after_reset: h.resetState === 'done' ? st.framesDecoded - h.framesAtReset : 0,
        keyframe_requests_sent: st.keyframeRequests,
        resets: st.resets,
        gaps: st.gaps,
        skipped: st.skipped,
        connects: st.connects,
        errors: st.errors,
        width: canvas.width,
        height: canvas.height,
        codec: st.codec,
        frame_age_ms: st.lastAgeMs,
        pixels: samples,
        grid: grid,
      };
    }

    h.onFrame = function () {
      if (h.finished) {
        // Afterwards a short "alive" report every 30 frames lets a test
        // check that the page keeps decoding while it does other things.
        if (st.framesDecoded % 30 === 0 && h.alive < 200) {
          h.alive++;
          post({ phase: 'alive', frames_decoded: st.framesDecoded, connects: st.connects,
            resets: st.resets, gaps: st.gaps, errors: st.errors.length });
        }
        return;
      }
      if (h.resetAt > 0 && h.resetState === 'none' && st.framesDecoded >= h.resetAt) {
        // Tell the test first and wait for its answer, so it can note the
        // host's keyframe-request count before the reset asks for one.
        h.resetState = 'posting';
        post({ phase: 'reset', frames_decoded: st.framesDecoded,
          keyframe_requests_sent: st.keyframeRequests }).then(function () {
          h.framesAtReset = st.framesDecoded;
          h.resetState = 'done';
          resetDecoder('test hook: forced reset');
        });
        return;
      }
      const resetOk = h.resetAt === 0 ||
        (h.resetState === 'done' && st.framesDecoded - h.framesAtReset >= 5);
      if (st.framesDecoded >= h.frames && resetOk) {
        h.finished = true;
        post(report());
      }
    };
    return h;
  }

  const hook = makeHook();
  window.hxfrViewReset = function () {
    resetDecoder('requested from the console');
  };

  if (typeof VideoDecoder === 'undefined') {
    banner('This browser has no WebCodecs VideoDecoder; hxfr-view needs it.');
    noteError('no WebCodecs');
    if (hook) {
      fetch(hook.url, { method: 'POST', mode: 'no-cors', body: JSON.stringify({
        phase: 'final', frames_decoded: 0, errors: st.errors }) });
    }
    return;
  }
  setInterval(tick, 1000);
  setInterval(sendPing, PING_INTERVAL_MS);
  connect();
})();
