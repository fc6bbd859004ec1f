// hxfr scanout viewer over WebRTC: plays a Janus streaming mountpoint that
// hxfr-fanout feeds (docs/fanout.md), with the stats overlay of the
// WebSocket viewer (fps, kbit/s, frame age). Plain JavaScript, no library:
// it speaks the Janus HTTP API (long poll) itself.
//
// URL parameters:
//   janus=URL        the Janus API: http(s)://HOST:8088/janus (long poll) or
//                    ws(s)://HOST:8188 (default: http://<this host>:8088/janus)
//   mountpoint=N     the mountpoint id (default 1)
// Test hook (as web/viewer.js): report=URL&frames=N POSTs a JSON report
// once N frames are decoded; keyframe_at=K first POSTs {"phase":"keyframe"}
// after K frames, waits for the answer, then asks for a keyframe.
'use strict';

(function () {
  const KEEPALIVE_MS = 25000; // Janus drops sessions idle for 60 s
  const STALL_MS = 2000;      // no new frame this long: ask for a keyframe
  const NTP_EPOCH_OFFSET_MS = 2208988800000; // 1900-01-01 to 1970-01-01

  const params = new URLSearchParams(location.search);
  const janusUrl = params.get('janus') ||
    (location.protocol === 'https:' ? 'https://' : 'http://') +
    (location.hostname || '127.0.0.1') + ':8088/janus';
  const mountpoint = Number(params.get('mountpoint') || 1);

  const video = document.getElementById('screen');
  const statsEl = document.getElementById('stats');
  const bannerEl = document.getElementById('banner');

  const st = {
    session: null,
    handle: null,
    pc: null,
    state: 'connecting',
    framesDecoded: 0,
    keyframesDecoded: 0,
    framesDropped: 0,
    packetsLost: 0,
    bytes: 0,
    pliSent: 0,
    firSent: 0,
    nackSent: 0,
    keyframeRequests: 0,
    fps: 0,
    kbps: 0,
    ageMs: null,
    jitterMs: null,
    width: 0,
    height: 0,
    codec: '',
    lastFrameAt: 0,
    lastKeyRequest: 0,
    firstFrameMs: null, // page start to the first frame shown
    senderReports: 0,
    ageSource: null,
    errors: [],
    prev: null, // previous inbound-rtp sample: {t, frames, bytes}
  };
  window.hxfrJanus = st;

  function noteError(text) {
    if (st.errors.length < 50) {
      st.errors.push(text);
    }
    console.warn('hxfr janus viewer: ' + text);
  }

  function banner(text) {
    bannerEl.textContent = text;
    bannerEl.style.display = text ? 'block' : 'none';
  }

  // ---- The Janus HTTP API -----------------------------------------------------

  let txSeq = 0;
  function tx() {
    txSeq++;
    return 'hxfr' + txSeq + '-' + Math.random().toString(36).slice(2, 8);
  }

  // One request, one reply. scope: 'server' (create), 'session' (attach,
  // keepalive) or 'handle' (plugin messages).
  function call(scope, body) {
    body.transaction = tx();
    return (ws ? wsCall : httpCall)(scope, body).then(function (j) {
      if (j.janus === 'error') {
        throw new Error('Janus: ' + (j.error ? j.error.reason : 'error'));
      }
      return j;
    });
  }

  // HTTP: a JSON body sent as text/plain is a "simple" cross-origin
  // request (no preflight); Janus reads the body whatever its type. The
  // session and handle are in the path; events come by long poll.
  async function httpCall(scope, body) {
    const path = scope === 'server' ? '' : scope === 'session' ? '/' + st.session :
      '/' + st.session + '/' + st.handle;
    const r = await fetch(janusUrl + path, { method: 'POST', body: JSON.stringify(body) });
    return r.json();
  }

  async function pollLoop() {
    while (st.session) {
      let events;
      try {
        const r = await fetch(janusUrl + '/' + st.session + '?maxev=10&rid=' + Date.now());
        events = await r.json();
      } catch (e) {
        noteError('long poll: ' + e.message);
        st.state = 'Janus unreachable';
        banner('Janus unreachable; retrying');
        await new Promise((res) => setTimeout(res, 1000));
        continue;
      }
      for (const ev of Array.isArray(events) ? events : [events]) {
        onEvent(ev).catch((e) => noteError('event: ' + e.message));
      }
    }
  }

  // WebSocket (ws:// or wss:// URL, subprotocol janus-protocol): requests
  // carry the session and handle ids; the reply to a request ("ack",
  // "success" or "error") carries its transaction, and everything else is
  // an event. One socket per page, however many pages share a browser (a
  // browser runs at most 6 HTTP connections per host, long polls included).
  const ws = /^wss?:/.test(janusUrl) ? { sock: null, pending: new Map() } : null;

  function wsOpen() {
    return new Promise(function (resolve, reject) {
      const sock = new WebSocket(janusUrl, 'janus-protocol');
      ws.sock = sock;
      sock.onopen = function () {
        resolve();
      };
      sock.onerror = function () {
        reject(new Error('WebSocket to ' + janusUrl + ' failed'));
      };
      sock.onclose = function () {
        st.state = 'Janus connection closed';
        banner('Janus connection closed');
      };
      sock.onmessage = function (m) {
        let j;
        try {
          j = JSON.parse(m.data);
        } catch (e) {
          noteError('bad message from Janus');
          return;
        }
        const waiter = j.transaction && ws.pending.get(j.transaction);
        if (waiter && (j.janus === 'ack' || j.janus === 'success' || j.janus === 'error')) {
          ws.pending.delete(j.transaction);
          waiter(j);
          if (j.janus !== 'ack' || !j.plugindata) {
            return;
          }
        }
        onEvent(j).catch((e) => noteError('event: ' + e.message));
      };
    });
  }

  function wsCall(scope, body) {
    if (scope !== 'server') {
      body.session_id = st.session;
    }
    if (scope === 'handle') {
      body.handle_id = st.handle;
    }
    return new Promise(function (resolve) {
      ws.pending.set(body.transaction, resolve);
      ws.sock.send(JSON.stringify(body));
    });
  }

  function message(body, jsep) {
    const m = { janus: 'message', body: body };
    if (jsep) {
      m.jsep = { type: jsep.type, sdp: jsep.sdp };
    }
    return call('handle', m);
  }

  async function onEvent(ev) {
    if (ev.janus === 'keepalive') {
      return;
    }
    if (ev.janus === 'webrtcup') {
      st.state = 'playing';
      banner('');
      return;
    }
    if (ev.janus === 'hangup') {
      st.state = 'hung up: ' + (ev.reason || '');
      banner('Janus hung up (' + (ev.reason || '') + ')');
      return;
    }
    if (ev.janus !== 'event' || !ev.plugindata) {
      return;
    }
    const data = ev.plugindata.data || {};
    if (data.error) {
      noteError('streaming plugin: ' + data.error);
      banner('mountpoint ' + mountpoint + ': ' + data.error);
      st.state = 'error';
      return;
    }
    if (ev.jsep && ev.jsep.type === 'offer') {
      await answer(ev.jsep);
    }
  }

  // Janus offers, we answer at once and trickle our ICE candidates after
  // it (waiting for gathering to finish can take seconds when the browser
  // has interfaces that never answer).
  async function answer(offer) {
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    st.pc = pc;
    pc.ontrack = function (e) {
      video.srcObject = e.streams[0] || new MediaStream([e.track]);
      video.play().catch((err) => noteError('play: ' + err.message));
      if (video.requestVideoFrameCallback) {
        const onFrame = function (now, meta) {
          if (st.firstFrameMs === null) {
            st.firstFrameMs = now;
          }
          // For WebRTC video the browser estimates each frame's capture
          // time from the sender's RTCP reports (hxfr-fanout's clock, on
          // the performance.now() timeline): its age when shown.
          if (meta && meta.captureTime) {
            st.ageMs = (meta.expectedDisplayTime || now) - meta.captureTime;
            st.ageSource = 'rtcp';
          }
          video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
      }
    };
    pc.oniceconnectionstatechange = function () {
      if (pc.iceConnectionState === 'failed' || pc.iceConnectionState === 'disconnected') {
        st.state = 'ICE ' + pc.iceConnectionState;
        banner('connection ' + pc.iceConnectionState);
      }
    };
    // Candidates found before the answer went out wait for it.
    const early = [];
    let answered = false;
    function trickle(c) {
      const body = { janus: 'trickle', candidate: c ? {
        candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex,
      } : { completed: true } };
      call('handle', body).catch((e) => noteError('trickle: ' + e.message));
    }
    pc.onicecandidate = function (e) {
      if (answered) {
        trickle(e.candidate);
      } else {
        early.push(e.candidate);
      }
    };
    await pc.setRemoteDescription(offer);
    await pc.setLocalDescription(await pc.createAnswer());
    st.state = 'starting';
    await message({ request: 'start' }, pc.localDescription);
    answered = true;
    early.forEach(trickle);
  }

  async function connect() {
    if (ws) {
      await wsOpen();
    }
    st.session = (await call('server', { janus: 'create' })).data.id;
    st.handle = (await call('session',
      { janus: 'attach', plugin: 'janus.plugin.streaming' })).data.id;
    if (!ws) {
      pollLoop();
    }
    setInterval(function () {
      call('session', { janus: 'keepalive' }).catch((e) => noteError(e.message));
    }, KEEPALIVE_MS);
    st.state = 'watching';
    await message({ request: 'watch', id: mountpoint });
  }

  // A keyframe on demand: switching to the mountpoint we watch re-adds us
  // as a viewer, and Janus sends the source a PLI (at most one a second),
  // which hxfr-fanout turns into KEYFRAME_REQ.
  function requestKeyframe() {
    if (!st.handle) {
      return Promise.resolve();
    }
    st.keyframeRequests++;
    st.lastKeyRequest = performance.now();
    return message({ request: 'switch', id: mountpoint }).catch((e) =>
      noteError('keyframe request: ' + e.message));
  }
  document.getElementById('keyframe').onclick = requestKeyframe;
  window.hxfrJanusKeyframe = requestKeyframe;

  // ---- Stats ------------------------------------------------------------------

  async function sample() {
    if (!st.pc) {
      return;
    }
    const report = await st.pc.getStats();
    let inbound = null;
    const codecs = new Map();
    report.forEach(function (s) {
      if (s.type === 'remote-outbound-rtp' && s.kind === 'video') {
        // What the sender's RTCP reports (relayed by Janus) said.
        st.senderReports = s.reportsSent || 0;
      } else if (s.type === 'inbound-rtp' && s.kind === 'video') {
        inbound = s;
      } else if (s.type === 'codec') {
        codecs.set(s.id, s);
      }
    });
    if (!inbound) {
      return;
    }
    const now = performance.now();
    const frames = inbound.framesDecoded || 0;
    const bytes = inbound.bytesReceived || 0;
    if (st.prev) {
      const dt = (now - st.prev.t) / 1000;
      st.fps = Math.round((frames - st.prev.frames) / dt);
      st.kbps = Math.round((bytes - st.prev.bytes) * 8 / 1000 / dt);
    }
    st.prev = { t: now, frames: frames, bytes: bytes };
    if (frames > st.framesDecoded) {
      st.lastFrameAt = now;
    }
    st.framesDecoded = frames;
    st.keyframesDecoded = inbound.keyFramesDecoded || 0;
    st.framesDropped = inbound.framesDropped || 0;
    st.packetsLost = inbound.packetsLost || 0;
    st.bytes = bytes;
    st.pliSent = inbound.pliCount || 0;
    st.firSent = inbound.firCount || 0;
    st.nackSent = inbound.nackCount || 0;
    st.width = inbound.frameWidth || 0;
    st.height = inbound.frameHeight || 0;
    if (inbound.jitterBufferEmittedCount) {
      st.jitterMs = 1000 * inbound.jitterBufferDelay / inbound.jitterBufferEmittedCount;
    }
    // The sender's RTCP reports map RTP time to wall-clock time: the frame
    // played now was sent by hxfr-fanout at estimatedPlayoutTimestamp
    // (NTP milliseconds), so its age is the bridge-to-screen delay.
    if (inbound.estimatedPlayoutTimestamp && st.ageSource !== 'rtcp') {
      st.ageMs = Date.now() + NTP_EPOCH_OFFSET_MS - inbound.estimatedPlayoutTimestamp;
    }
    const c = codecs.get(inbound.codecId);
    if (c) {
      st.codec = c.mimeType + (c.sdpFmtpLine ? ' ' + c.sdpFmtpLine : '');
    }
    if (st.state === 'playing' && st.framesDecoded > 0 && now - st.lastFrameAt > STALL_MS &&
        now - st.lastKeyRequest > STALL_MS) {
      // Nothing decodable for a while (a lost keyframe, a stalled
      // decoder): ask for a fresh start.
      requestKeyframe();
    }
  }

  function renderStats() {
    const age = st.ageMs === null ? '' : '   frame age ' + st.ageMs.toFixed(0) + ' ms';
    const jitter = st.jitterMs === null ? '' : '   jitter buffer ' + st.jitterMs.toFixed(0) + ' ms';
    statsEl.textContent =
      'mountpoint ' + mountpoint + '  ' + (st.width ? st.width + 'x' + st.height : '') +
      '  ' + st.codec + '\n' +
      'fps ' + st.fps + '   ' + st.kbps + ' kbit/s' + age + '\n' +
      'decoded ' + st.framesDecoded + '  keyframes ' + st.keyframesDecoded +
      '  dropped ' + st.framesDropped + '  lost packets ' + st.packetsLost + jitter + '\n' +
      'keyframe req ' + st.keyframeRequests + '  PLI ' + st.pliSent + '  FIR ' + st.firSent +
      '  NACK ' + st.nackSent + '\n' +
      'Janus: ' + st.state;
  }

  // ---- Test hook ----------------------------------------------------------------

  function makeHook() {
    if (!params.has('report')) {
      return null;
    }
    const h = {
      url: params.get('report'),
      frames: Math.max(1, Number(params.get('frames') || 60)),
      keyframeAt: Number(params.get('keyframe_at') || 0),
      keyState: 'none', // none -> posting -> done
      framesAtKey: 0,
      finished: false,
      lastAlive: 0,
    };
    h.post = function (body) {
      return fetch(h.url, {
        method: 'POST',
        mode: 'no-cors',
        headers: { 'Content-Type': 'text/plain' },
        body: JSON.stringify(body),
      }).catch((e) => noteError('report POST failed: ' + e.message));
    };
    h.report = function (phase) {
      return {
        phase: phase,
        mountpoint: mountpoint,
        frames_decoded: st.framesDecoded,
        keyframes_decoded: st.keyframesDecoded,
        frames_dropped: st.framesDropped,
        packets_lost: st.packetsLost,
        bytes_received: st.bytes,
        frames_after_keyframe_request: h.keyState === 'done' ?
          st.framesDecoded - h.framesAtKey : 0,
        keyframe_requests_sent: st.keyframeRequests,
        pli_sent: st.pliSent,
        fir_sent: st.firSent,
        fps: st.fps,
        kbps: st.kbps,
        frame_age_ms: st.ageMs,
        first_frame_ms: st.firstFrameMs,
        sender_reports: st.senderReports,
        width: st.width,
        height: st.height,
        codec: st.codec,
        state: st.state,
        errors: st.errors,
      };
    };
    h.onSample = function () {
      if (h.finished) {
        // Afterwards a short "alive" report every 30 frames lets a test
        // check that the page keeps playing while it does other things.
        if (st.framesDecoded >= h.lastAlive + 30) {
          h.lastAlive = st.framesDecoded;
          h.post(h.report('alive'));
        }
        return;
      }
      if (h.keyframeAt > 0 && h.keyState === 'none' && st.framesDecoded >= h.keyframeAt) {
        // Tell the test first and wait for its answer, so that it can
        // count the host's KEYFRAME_REQs before the request goes out.
        h.keyState = 'posting';
        h.post(h.report('keyframe')).then(function () {
          h.framesAtKey = st.framesDecoded;
          h.keyState = 'done';
          return requestKeyframe();
        });
        return;
      }
      const keyOk = h.keyframeAt === 0 ||
        (h.keyState === 'done' && st.framesDecoded - h.framesAtKey >= 10);
      if (st.framesDecoded >= h.frames && keyOk) {
        h.finished = true;
        h.lastAlive = st.framesDecoded;
        h.post(h.report('final'));
      }
    };
    return h;
  }

  const hook = makeHook();

  if (typeof RTCPeerConnection === 'undefined') {
    banner('This browser has no WebRTC (RTCPeerConnection).');
    noteError('no WebRTC');
    if (hook) {
      hook.post(hook.report('final'));
    }
    return;
  }
  // Stats four times a second: the test hook reacts promptly, the overlay
  // shows per-second rates computed over the real interval.
  setInterval(function () {
    sample().then(function () {
      renderStats();
      if (hook) {
        hook.onSample();
      }
    }).catch((e) => noteError('stats: ' + e.message));
  }, 250);
  connect().catch(function (e) {
    noteError('connect: ' + e.message);
    st.state = 'failed: ' + e.message;
    banner('cannot reach Janus at ' + janusUrl + ': ' + e.message);
    renderStats();
    if (hook) {
      hook.post(hook.report('final'));
    }
  });
})();
