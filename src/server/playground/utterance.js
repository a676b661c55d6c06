// One Speak: a WebSocket session with one utterance, its text sent whole or piece by piece
// as a chat LLM writes it, its audio into the player as it arrives; and what the page shows
// of it (stats, the text sent, the chunk timeline, the quality report).
import { $, apiKey, hook, showError } from './api.js';
import { pcm16ToFloat32 } from './wav.js';

export const SAMPLE_RATE = 24000;  // the server's pcm format: s16le, 24 kHz, mono

// Text as a chat LLM would emit it: words with their leading space, punctuation apart, and
// one CJK character at a time.
export function llmPieces(text) {
  return text.match(/\s*[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]|\s*[^\s.,!?;:\u3400-\u9fff\u3000-\u303f\uff00-\uffef]+|\s*[.,!?;:]+|\s+$/g) || [];
}

// One Speak: a WebSocket session with one utterance, its audio into the player.
export class Utterance {
  constructor({ config, pieces, pace, player }) {
    this.config = config;
    this.pieces = pieces;         // text pieces; one piece in whole-text mode
    this.pace = pace;             // pieces per second (LLM mode), 0: all at once
    this.player = player;
    this.chunks = [];             // Float32Arrays, for the download
    this.arrivals = [];           // {t, seconds}: when each chunk came and its length
    this.playback = [];           // {t, played, playing} from the player
    this.samples = 0;
    this.sent = 0;                // pieces sent
    this.firstAudioAfterPieces = null;
    this.textDoneAt = null;
    this.done = false;
    this.failed = false;
    this.stopped = false;
    this.serverError = null;
    this.stats = { queued: 0, played: 0, stalls: 0, buffered: 0 };
    this.summary = { chunks: 0, samplesReceived: 0, samplesQueued: 0, samplesPlayed: 0, stalls: 0,
                     ttfa: null, rtf: null, firstAudioAfterPieces: null, pieces: pieces.length,
                     textStreaming: config.text_streaming, status: 'running', error: null,
                     quality: null };
    hook.current = this.summary;
    hook.utterances.push(this.summary);
  }

  start() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/v1/audio/speech/stream`;
    const key = apiKey();
    this.t0 = performance.now();
    this.ws = key ? new WebSocket(url, ['cosyserve', `cosyserve.api-key.${key}`]) : new WebSocket(url);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onopen = () => this.onOpen();
    this.ws.onmessage = (e) => this.onMessage(e);
    this.ws.onclose = (e) => this.onClose(e);
    this.player.port.onmessage = (e) => this.onPlayer(e.data);
    return new Promise((resolve) => { this.resolve = resolve; });
  }

  now() {
    return (performance.now() - this.t0) / 1000;
  }

  onOpen() {
    this.ws.send(JSON.stringify({ type: 'session.config', ...this.config }));
    this.feed();
  }

  // Sends the text: at once, or one piece every 1/pace s, as an LLM's tokens come.
  feed() {
    if (this.stopped || this.ws.readyState !== WebSocket.OPEN) return;
    const n = this.pace > 0 ? 1 : this.pieces.length;
    for (let i = 0; i < n && this.sent < this.pieces.length; ++i) {
      this.ws.send(JSON.stringify({ type: 'input.text', text: this.pieces[this.sent++] }));
    }
    showFed(this.pieces, this.sent, this.firstAudioAfterPieces);
    if (this.sent < this.pieces.length) {
      this.feeder = setTimeout(() => this.feed(), 1000 / this.pace);
      return;
    }
    this.textDoneAt = this.now();
    this.ws.send(JSON.stringify({ type: 'input.done' }));
  }

  onMessage(e) {
    if (typeof e.data !== 'string') return this.onAudio(e.data);
    let m;
    try {
      m = JSON.parse(e.data);
    } catch {
      return;
    }
    if (m.type === 'audio.done') {
      this.done = true;
      this.summary.quality = m.quality || null;
      showQuality(m.quality);
      this.player.port.postMessage({ type: 'end' });
      this.ws.send(JSON.stringify({ type: 'session.close' }));
      this.finish('done');
    } else if (m.type === 'error') {
      this.serverError = m.message || m.code;
      this.summary.error = this.serverError;
    }
  }

  onAudio(buffer) {
    const t = this.now();
    const samples = pcm16ToFloat32(buffer);
    if (samples.length === 0) return;
    if (this.summary.ttfa == null) {
      this.summary.ttfa = t;
      this.firstAudioAfterPieces = this.sent;
      this.summary.firstAudioAfterPieces = this.sent;
      showFed(this.pieces, this.sent, this.firstAudioAfterPieces);
    }
    this.chunks.push(samples);
    this.arrivals.push({ t, seconds: samples.length / SAMPLE_RATE });
    this.samples += samples.length;
    this.lastAudioAt = t;
    this.summary.chunks += 1;
    this.summary.samplesReceived += samples.length;
    if (!this.stopped) {
      this.player.port.postMessage({ type: 'push', samples }, []);
      this.summary.samplesQueued += samples.length;
    }
    this.summary.rtf = t / (this.samples / SAMPLE_RATE);
    this.render();
  }

  onPlayer(m) {
    this.summary.samplesPlayed = m.played;
    this.summary.stalls = m.stalls;
    this.stats = m;
    this.playback.push({ t: this.now(), played: m.played, playing: m.playing });
    if (m.type === 'drained') this.playbackDone = true;
    this.render();
  }

  onClose(e) {
    clearTimeout(this.feeder);
    if (this.done || this.stopped) return this.finish(this.stopped ? 'stopped' : 'done');
    this.player.port.postMessage({ type: 'end' });
    let message;
    if (this.serverError) {
      message = `The server refused or ended the stream: ${this.serverError}`;
    } else if (e.code === 1013) {
      message = 'The server is full: every stream is busy. Try again in a moment.';
    } else if (e.code === 1006 && this.samples > 0) {
      message = 'The connection to the server was lost mid-stream: the audio stops here.';
    } else if (e.code === 1006) {
      message = 'The server cannot be reached (the WebSocket closed before any audio).';
    } else {
      message = `The stream ended without its audio (WebSocket close ${e.code}${e.reason ? ': ' + e.reason : ''}).`;
    }
    this.summary.error = message;
    showError(message);
    this.finish('failed');
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.feeder);
    this.player.port.postMessage({ type: 'stop' });
    if (this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'cancel' }));
      this.ws.send(JSON.stringify({ type: 'session.close' }));
    }
    this.finish('stopped');
  }

  finish(status) {
    if (this.summary.status !== 'running') return;
    this.summary.status = status;
    this.render();
    this.resolve();
  }

  render() {
    if (this.rendering || !this.active) return;
    this.rendering = true;
    requestAnimationFrame(() => {
      this.rendering = false;
      const s = this.summary;
      $('ttfa').textContent = s.ttfa == null ? '–' : `${(s.ttfa * 1000).toFixed(0)} ms`;
      $('rtf').textContent = s.rtf == null ? '–' : s.rtf.toFixed(2);
      $('audio-seconds').textContent = `${(this.samples / SAMPLE_RATE).toFixed(2)} s`;
      $('chunks').textContent = String(s.chunks);
      $('stalls').textContent = String(s.stalls);
      $('buffered').textContent = `${((this.stats.buffered || 0) / SAMPLE_RATE * 1000).toFixed(0)} ms`;
      const words = { running: 'Speaking…', done: 'Done.', stopped: 'Stopped.', failed: 'Failed.' };
      let status = words[s.status] || s.status;
      if (s.firstAudioAfterPieces != null && s.textStreaming === 'token') {
        status += ` First audio after ${s.firstAudioAfterPieces} of ${s.pieces} text pieces`;
        status += s.firstAudioAfterPieces < s.pieces ? ': speech began before the text was complete.' : '.';
      }
      if (s.stalls > 0) status += ` The player ran dry ${s.stalls} time${s.stalls > 1 ? 's' : ''} (red below).`;
      $('stream-status').textContent = status;
      drawTimeline(this);
    });
  }
}

function showFed(pieces, sent, firstAudioAt) {
  const fed = $('fed');
  if (pieces.length <= 1) {
    fed.hidden = true;
    return;
  }
  fed.hidden = false;
  const spans = pieces.map((p, i) => {
    const span = document.createElement('span');
    span.textContent = p;
    span.className = i < sent ? 'sent' : 'pending';
    if (i === firstAudioAt - 1) span.classList.add('first-audio');
    return span;
  });
  fed.replaceChildren(...spans);
}

function showQuality(quality) {
  const box = $('quality');
  if (!quality) {
    box.textContent = 'The server sent no quality report for this stream.';
    return;
  }
  const dl = document.createElement('dl');
  dl.className = 'stats';
  for (const [k, v] of Object.entries(quality)) {
    const div = document.createElement('div');
    const dt = document.createElement('dt');
    dt.textContent = k.replaceAll('_', ' ');
    const dd = document.createElement('dd');
    dd.textContent = typeof v === 'object' ? JSON.stringify(v) : String(v);
    div.append(dt, dd);
    dl.append(div);
  }
  box.replaceChildren('Quality report', dl);
}

// Chunk timeline: arrivals on top (each chunk from when it came, as wide as its audio),
// playback below (green while playing, red while stalled).
function drawTimeline(u) {
  const svg = $('timeline');
  const ns = 'http://www.w3.org/2000/svg';
  const end = Math.max(1, u.now(), ...u.arrivals.map((a) => a.t + a.seconds));
  const x = (t) => 10 + (t / end) * 580;
  const rect = (t0, t1, y, h, cls) => {
    const r = document.createElementNS(ns, 'rect');
    r.setAttribute('x', x(t0).toFixed(1));
    r.setAttribute('y', y);
    r.setAttribute('width', Math.max(0.5, x(t1) - x(t0)).toFixed(1));
    r.setAttribute('height', h);
    r.setAttribute('class', cls);
    return r;
  };
  const parts = [];
  for (const a of u.arrivals) parts.push(rect(a.t, a.t + a.seconds, 10, 26, 'chunk'));
  for (let i = 1; i < u.playback.length; ++i) {
    const p = u.playback[i - 1], q = u.playback[i];
    if (q.played > p.played) parts.push(rect(p.t, q.t, 50, 26, 'played'));
    else if (p.played > 0 && !q.playing) parts.push(rect(p.t, q.t, 50, 26, 'stall'));
  }
  const label = document.createElementNS(ns, 'text');
  label.setAttribute('x', 590);
  label.setAttribute('y', 88);
  label.setAttribute('text-anchor', 'end');
  label.textContent = `${end.toFixed(1)} s`;
  parts.push(label);
  svg.replaceChildren(...parts);
}

