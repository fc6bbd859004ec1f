// hxfr-view viewer: receives a scanout's H.264 stream from the gateway over
// a WebSocket, decodes it with WebCodecs and draws it on a canvas; where the
// gateway has input on for the scanout, sends keyboard, mouse and wheel
// events back. Shows how late the picture is: capture -> received ->
// decoded -> painted, p50 and p99 over the last seconds.
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
  const TYPE_CURSOR = 2;
  const LOCAL_POINTER_MS = 500;    // the local pointer leads the cursor this long
  const FLAG_KEYFRAME = 0x0001;
  const FLAG_NEW_STREAM = 0x0002;
  // Beyond this many frames waiting in the decoder the page is behind: it
  // drops what comes up to the next keyframe (and asks for one, once)
  // instead of letting the delay grow or resetting its decoder.
  const MAX_DECODE_QUEUE = 8;
  const KEYFRAME_RETRY_MS = 3000;  // ask again only if none came this long
  const LATENCY_WINDOW_MS = 5000;  // the p50/p99 figures cover this span
  const PING_INTERVAL_MS = 2000;
  const RECONNECT_MIN_MS = 250;
  const RECONNECT_MAX_MS = 5000;

  const params = new URLSearchParams(location.search);
  // /scanout/N, or /NAME/scanout/N for a gateway serving several VMs.
  const pathMatch = /^(\/[A-Za-z0-9_-]+)?\/scanout\/(\d+)$/.exec(location.pathname);
  const vmPrefix = pathMatch && pathMatch[1] ? pathMatch[1] : '';
  const scanout = pathMatch ? Number(pathMatch[2]) : 0;
  // The gateway's token (when it has one) came in this page's URL.
  const token = params.get('token');
  const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
    vmPrefix + '/ws/' + scanout + (token ? '?token=' + encodeURIComponent(token) : '');

  const canvas = document.getElementById('screen');
  const cursorCanvas = document.getElementById('cursor');
  const cursorCtx = cursorCanvas.getContext('2d');
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
    behind: 0,                // times the page fell behind and skipped
    framesPainted: 0,
    paintPending: null,       // the newest decoded frame, not yet drawn
    paintTimes: null,         // its timestamps
    lat: [],                  // per painted frame: {t, recv, decoded, painted} in ms
    latency: null,            // the figures of the last tick
    input: false,             // the gateway takes input for this scanout
    inputEvents: 0,
    heldKeys: new Set(),
    // The source's cursor: image (a canvas), hot spot, the position it
    // reported, and the page's own pointer position while it moves.
    cursor: { img: null, hotX: 0, hotY: 0, x: 0, y: 0, visible: false, updates: 0,
      local: null, localAt: -Infinity, drawnAt: null },
    cursorDrawn: false,
    heldButtons: new Set(),
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

  // Asks once per wait; tick() asks again only if nothing came within
  // KEYFRAME_RETRY_MS (the gateway may have been rate-limiting).
  function requestKeyframe() {
    if (st.keyAsked) {
      return;
    }
    if (st.ws && st.ws.readyState === WebSocket.OPEN) {
      st.keyAsked = true;
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
    dropPending();
    st.codec = null;
    st.waitingKey = true;
    requestKeyframe();
  }

  // Behind (too many frames waiting in the decoder): skip everything up to
  // the next keyframe, which decodes without the skipped frames, and ask
  // for it once. The decoder keeps its state and drains meanwhile.
  function skipToKeyframe(queued) {
    st.behind++;
    // Not an error: counted in the overlay and the report.
    console.info('hxfr-view: behind: ' + queued + ' frames waiting to decode; ' +
      'skipping to the next keyframe');
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

  // Milliseconds on the page's clock with sub-millisecond resolution;
  // Date.now() plus the clock offset gives the gateway's clock.
  function nowMs() {
    return performance.timeOrigin + performance.now();
  }

  function dropPending() {
    if (st.paintPending) {
      st.paintPending.close();
      st.paintPending = null;
    }
  }

  // Draws the newest decoded frame (an older one not drawn yet is dropped:
  // painting late pictures only adds delay).
  function paintNow() {
    const frame = st.paintPending;
    if (!frame) {
      return;
    }
    st.paintPending = null;
    const w = frame.displayWidth;
    const h = frame.displayHeight;
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
      cursorCanvasResize();
    }
    st.width = w;
    st.height = h;
    ctx.drawImage(frame, 0, 0, w, h);
    frame.close();
    const t = st.paintTimes;
    t.painted = nowMs();
    st.framesPainted++;
    st.lat.push(t);
    if (st.lat.length > 2048) {
      st.lat.splice(0, st.lat.length - 2048);
    }
    if (t.originGw !== null) {
      st.lastAgeMs = t.painted - (t.originGw - st.clockOffsetMs);
    }
  }

  function onDecoded(frame) {
    const info = st.pending.get(frame.timestamp);
    st.pending.delete(frame.timestamp);
    dropPending();
    st.paintPending = frame;
    st.paintTimes = {
      originGw: info ? info.originGw : null,
      captured: info ? info.captured : false,
      recv: info ? info.recv : nowMs(),
      decoded: nowMs(),
      painted: 0,
    };
    requestAnimationFrame(paintNow);
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
    const recvMs = nowMs();
    if (buf.byteLength < HEADER_SIZE) {
      noteError('short frame message');
      return;
    }
    const dv = new DataView(buf);
    const headerSize = dv.getUint16(14, true);
    if (dv.getUint32(0, true) !== MAGIC || dv.getUint8(4) !== VERSION ||
        headerSize < HEADER_SIZE || headerSize > buf.byteLength) {
      noteError('unknown binary message');
      return;
    }
    if (dv.getUint8(5) === TYPE_CURSOR) {
      onCursorImage(dv, buf, headerSize);
      return;
    }
    if (dv.getUint8(5) !== TYPE_FRAME) {
      noteError('unknown binary message');
      return;
    }
    const flags = dv.getUint16(6, true);
    const seq = dv.getUint32(8, true);
    const gatewayRecvUs = Number(dv.getBigInt64(24, true));
    // capture_us (when the host took the frame, on the gateway's clock) is
    // there from header size 40 on; 0 when the host did not say.
    const captureUs = headerSize >= 40 ? Number(dv.getBigInt64(32, true)) : 0;
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
    if (!key && st.decoder.decodeQueueSize > MAX_DECODE_QUEUE) {
      skipToKeyframe(st.decoder.decodeQueueSize);
      st.skipped++;
      return;
    }
    const ts = st.tsNext++;
    // The origin is the capture when the host told it, else the gateway's
    // receive time; on the gateway's clock, converted to the page's when
    // the figures are made (with the best clock offset known by then).
    st.pending.set(ts, {
      originGw: (captureUs > 0 ? captureUs : gatewayRecvUs) / 1000,
      captured: captureUs > 0,
      recv: recvMs,
    });
    try {
      st.decoder.decode(new EncodedVideoChunk({
        type: key ? 'key' : 'delta',
        timestamp: ts,
        data: data,
      }));
      if (key) {
        st.keyframesDecoded++;
        st.keyAsked = false;
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
        st.clockOffsetMs = msg.time_us / 1000 - nowMs();
      }
      setInput(msg.input === true);
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
    } else if (msg.type === 'cursor') {
      onCursorMove(msg);
    } else if (msg.type === 'pong') {
      const sent = st.pings.get(msg.token);
      st.pings.delete(msg.token);
      if (sent !== undefined) {
        const now = nowMs();
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
      const t = st.pingToken++;
      st.pings.set(t, nowMs());
      if (st.pings.size > 16) {
        st.pings.delete(st.pings.keys().next().value);
      }
      st.ws.send('ping ' + t);
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
      st.keyAsked = false;
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
      // The gateway released whatever this page held when it closed.
      st.heldKeys.clear();
      st.heldButtons.clear();
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
      st.keyAsked = false;
      requestKeyframe();
    }
    st.latency = latencyFigures();
    renderStats();
  }

  function percentile(sorted, p) {
    return sorted.length ? sorted[Math.min(sorted.length - 1,
      Math.floor(p * (sorted.length - 1) + 0.5))] : null;
  }

  // p50 and p99 of each stage over the painted frames of the last
  // LATENCY_WINDOW_MS: from the capture (or the gateway's receive time,
  // when the host sends no capture time) to the page receiving the frame,
  // to the decoder's output, and to the paint.
  function latencyFigures() {
    const now = nowMs();
    while (st.lat.length && st.lat[0].painted < now - LATENCY_WINDOW_MS) {
      st.lat.shift();
    }
    const frames = st.lat.filter((t) => t.originGw !== null);
    if (!frames.length) {
      return null;
    }
    const offset = st.clockOffsetMs;
    const stage = function (name) {
      const v = frames.map((t) => t[name] - (t.originGw - offset)).sort((a, b) => a - b);
      return { p50: percentile(v, 0.5), p99: percentile(v, 0.99) };
    };
    return {
      from: frames[frames.length - 1].captured ? 'capture' : 'gateway',
      frames: frames.length,
      received: stage('recv'),
      decoded: stage('decoded'),
      painted: stage('painted'),
      clock_rtt_ms: st.bestRtt === Infinity ? null : st.bestRtt,
    };
  }

  function fmtStage(s) {
    return s.p50.toFixed(0) + '/' + s.p99.toFixed(0);
  }

  function renderStats() {
    const l = st.latency;
    const lat = l ? l.from + ' -> received ' + fmtStage(l.received) + '  decoded ' +
      fmtStage(l.decoded) + '  painted ' + fmtStage(l.painted) + ' ms (p50/p99)' : '-';
    statsEl.textContent =
      (vmPrefix ? vmPrefix.slice(1) + ' ' : '') + 'scanout ' + scanout + '  ' +
      (st.width ? st.width + 'x' + st.height : '') + '  ' + (st.codec || '') +
      (st.input ? '  input on' : '') + '\n' +
      'fps ' + st.fps + '   ' + st.kbps + ' kbit/s   decode queue ' +
      (st.decoder ? st.decoder.decodeQueueSize : 0) + '\n' +
      'latency ' + lat + '\n' +
      'decoded ' + st.framesDecoded + '  painted ' + st.framesPainted + '  gaps ' + st.gaps +
      '  skipped ' + st.skipped + '  behind ' + st.behind + '  keyframe req ' +
      st.keyframeRequests + '\n' +
      'host: ' + st.upstream + (st.waitingKey && st.connected ? '  (waiting for keyframe)' : '');
  }

  // ---- Cursor ------------------------------------------------------------------

  function cursorCanvasResize() {
    cursorCanvas.width = canvas.width;
    cursorCanvas.height = canvas.height;
    drawCursor();
  }

  // Draws the cursor at the latest position: the page's own pointer while
  // it moves over the picture (no round trip through the guest), else the
  // position the source reported.
  function drawCursor() {
    const c = st.cursor;
    cursorCtx.clearRect(0, 0, cursorCanvas.width, cursorCanvas.height);
    c.drawnAt = null;
    if (!c.img || !c.visible) {
      return;
    }
    const local = st.input && c.local && performance.now() - c.localAt < LOCAL_POINTER_MS;
    const x = local ? c.local[0] : c.x;
    const y = local ? c.local[1] : c.y;
    cursorCtx.drawImage(c.img, x - c.hotX, y - c.hotY);
    c.drawnAt = [x, y];
  }

  function noteLocalPointer(xy) {
    st.cursor.local = xy;
    st.cursor.localAt = performance.now();
    if (st.cursorDrawn) {
      drawCursor();
    }
  }

  // A cursor image: 40-byte header (the frame header's first 32 bytes, then
  // u16 width, height, hot_x, hot_y) and width x height RGBA pixels.
  function onCursorImage(dv, buf, headerSize) {
    if (headerSize < 40) {
      noteError('short cursor message');
      return;
    }
    const w = dv.getUint16(32, true);
    const h = dv.getUint16(34, true);
    if (w < 1 || h < 1 || w > 512 || h > 512 || buf.byteLength - headerSize !== w * h * 4) {
      noteError('bad cursor image');
      return;
    }
    const img = document.createElement('canvas');
    img.width = w;
    img.height = h;
    img.getContext('2d').putImageData(
      new ImageData(new Uint8ClampedArray(buf, headerSize, w * h * 4), w, h), 0, 0);
    const c = st.cursor;
    c.img = img;
    c.hotX = Math.min(dv.getUint16(36, true), w - 1);
    c.hotY = Math.min(dv.getUint16(38, true), h - 1);
    st.cursorDrawn = true;
    canvas.style.cursor = st.input ? 'none' : '';
    drawCursor();
  }

  function onCursorMove(msg) {
    const c = st.cursor;
    c.x = msg.x | 0;
    c.y = msg.y | 0;
    c.visible = msg.visible === true;
    c.updates++;
    drawCursor();
  }

  // ---- Input -------------------------------------------------------------------

  function sendInput(text) {
    if (st.input && st.ws && st.ws.readyState === WebSocket.OPEN) {
      st.ws.send(text);
      st.inputEvents++;
    }
  }

  // The canvas pixel under a mouse event (the canvas is the stream's size,
  // scaled by CSS).
  function streamXY(ev) {
    const r = canvas.getBoundingClientRect();
    const x = Math.floor((ev.clientX - r.left) * canvas.width / Math.max(1, r.width));
    const y = Math.floor((ev.clientY - r.top) * canvas.height / Math.max(1, r.height));
    return [Math.min(Math.max(x, 0), canvas.width - 1), Math.min(Math.max(y, 0),
      canvas.height - 1)];
  }

  // Everything held goes up: the gateway does it for the guest, the page
  // forgets its own record.
  function releaseAll() {
    if (st.heldKeys.size || st.heldButtons.size) {
      sendInput('release');
    }
    st.heldKeys.clear();
    st.heldButtons.clear();
  }

  let moveQueued = null;
  function flushMove() {
    if (moveQueued) {
      sendInput('mm ' + moveQueued[0] + ' ' + moveQueued[1]);
      moveQueued = null;
    }
  }

  let wheelX = 0;
  let wheelY = 0;

  function onKey(ev) {
    if (!st.input || !/^[A-Za-z0-9]{1,32}$/.test(ev.code)) {
      return;
    }
    ev.preventDefault();
    if (ev.type === 'keydown') {
      // A repeat is another key down, as a keyboard sends it.
      st.heldKeys.add(ev.code);
      sendInput('kd ' + ev.code);
    } else if (st.heldKeys.delete(ev.code)) {
      sendInput('ku ' + ev.code);
    }
  }

  function onMouse(ev) {
    if (!st.input || !st.width) {
      return;
    }
    const xy = streamXY(ev);
    noteLocalPointer(xy);
    if (ev.type === 'mousemove') {
      // At most one move per animation frame.
      if (!moveQueued) {
        requestAnimationFrame(flushMove);
      }
      moveQueued = xy;
      return;
    }
    ev.preventDefault();
    if (ev.button < 0 || ev.button > 4) {
      return;
    }
    flushMove();
    if (ev.type === 'mousedown') {
      canvas.focus();
      st.heldButtons.add(ev.button);
      sendInput('bd ' + ev.button + ' ' + xy[0] + ' ' + xy[1]);
    } else if (st.heldButtons.delete(ev.button)) {
      sendInput('bu ' + ev.button + ' ' + xy[0] + ' ' + xy[1]);
    }
  }

  function onWheel(ev) {
    if (!st.input || !st.width) {
      return;
    }
    ev.preventDefault();
    // In clicks: about 100 pixels or 3 lines per click, a page is one.
    const unit = ev.deltaMode === 2 ? 1 : ev.deltaMode === 1 ? 3 : 100;
    wheelX += ev.deltaX / unit;
    wheelY += ev.deltaY / unit;
    const dx = Math.max(-10, Math.min(10, Math.trunc(wheelX)));
    const dy = Math.max(-10, Math.min(10, Math.trunc(wheelY)));
    if (dx || dy) {
      wheelX -= dx;
      wheelY -= dy;
      const xy = streamXY(ev);
      flushMove();
      sendInput('wh ' + dx + ' ' + dy + ' ' + xy[0] + ' ' + xy[1]);
    }
  }

  function setInput(on) {
    st.input = on;
    canvas.style.cursor = on && st.cursorDrawn ? 'none' : '';
    canvas.tabIndex = on ? 0 : -1;
    if (on) {
      canvas.focus();
    }
  }

  canvas.addEventListener('keydown', onKey);
  canvas.addEventListener('keyup', onKey);
  canvas.addEventListener('mousemove', onMouse);
  canvas.addEventListener('mousedown', onMouse);
  canvas.addEventListener('mouseup', onMouse);
  canvas.addEventListener('wheel', onWheel, { passive: false });
  canvas.addEventListener('contextmenu', function (ev) {
    if (st.input) {
      ev.preventDefault();
    }
  });
  // Leaving the page or its canvas lets go of everything.
  canvas.addEventListener('blur', releaseAll);
  window.addEventListener('blur', releaseAll);
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'hidden') {
      releaseAll();
    }
  });

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
      paintNow();
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
        frames_painted: st.framesPainted,
        behind: st.behind,
        latency: latencyFigures(),
        input: st.input,
        input_events: st.inputEvents,
        cursor: { updates: st.cursor.updates, visible: st.cursor.visible,
          drawn_at: st.cursor.drawnAt, x: st.cursor.x, y: st.cursor.y },
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
