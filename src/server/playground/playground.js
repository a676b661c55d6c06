// The playground: speak text (whole, or fed in token by token as a chat LLM writes it) over
// the server's WebSocket and hear it as it is made; manage voices; watch the server's load.
// Plain modern JavaScript, no build step: every file comes from the server itself.
import { $, api, apiKey, clearError, hook, showError } from './api.js';
import { addVoice, forgetRecording, refreshVoices, toggleRecording } from './voices.js';
import { wavBlob } from './wav.js';
import { llmPieces, SAMPLE_RATE, Utterance } from './utterance.js';

const JITTER_BUFFER_SECONDS = 0.15;
const LOAD_POLL_MS = 2000;         // server stats while connected
const RECONNECT_POLL_MS = 1000;    // while the server is unreachable

// Connection and server load ---------------------------------------------------------------
let modelName = null;

function setConnection(state, text) {
  hook.connection = state;
  const badge = $('connection');
  badge.dataset.state = state;
  badge.textContent = text;
}

function showLoad(load) {
  $('stat-streams').textContent = `${load.streams_active} / ${load.max_streams}`;
  $('stat-queued').textContent = String(load.streams_queued);
  $('stat-xrt').textContent = `${load.xrt.toFixed(2)}×`;
  $('stat-ttfa').textContent = load.ttfa_p99_s == null ? '–' : `${(load.ttfa_p99_s * 1000).toFixed(0)} ms`;
  $('stat-free').textContent = load.draining ? 'draining' : `${load.free_capacity} %`;
}

// Polls /load: the server's stats, and whether it is there at all. When it comes back after
// being away (a restart), the page says so and reloads what it shows.
async function pollServer() {
  let delay = LOAD_POLL_MS;
  try {
    const load = await (await api('/load')).json();
    showLoad(load);
    if (hook.connection === 'down' || hook.connection === 'connecting') {
      const wasDown = hook.connection === 'down';
      await refreshServerInfo();
      if (wasDown) {
        hook.reconnects += 1;
        setConnection('reconnected', 'reconnected: the server is back');
        setTimeout(() => { if (hook.connection === 'reconnected') setConnection('connected', 'connected'); }, 5000);
      } else {
        setConnection('connected', 'connected');
      }
    }
  } catch (e) {
    if (e.status === 401) {
      setConnection('auth', 'API key needed');
    } else if (e.status === 0) {
      if (hook.connection !== 'down') setConnection('down', 'server unreachable: reconnecting…');
      delay = RECONNECT_POLL_MS;
    }
  }
  setTimeout(pollServer, delay);
}

async function refreshServerInfo() {
  const models = await (await api('/v1/models')).json();
  modelName = models.data && models.data.length > 0 ? models.data[0].id : null;
  $('model-name').textContent = modelName || '–';
  await refreshVoices();
}

// Playback -----------------------------------------------------------------------------------
let audioContext = null;

async function audioOutput() {
  if (!audioContext) {
    audioContext = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: 'interactive' });
    await audioContext.audioWorklet.addModule('/playground/player-worklet.js');
  }
  if (audioContext.state === 'suspended') await audioContext.resume();
  return audioContext;
}

// Speak ----------------------------------------------------------------------------------------
let current = null;

function speechConfig() {
  const mode = document.querySelector('input[name=mode]:checked').value;
  const llm = document.querySelector('input[name=input]:checked').value === 'llm';
  const config = {
    model: modelName,
    voice: $('voice').value,
    response_format: 'pcm',
    text_streaming: llm ? 'token' : 'sentence',
    speed: Number($('speed').value),
    sampling: $('sampling').value,
    temperature: Number($('temperature').value),
    top_p: Number($('top-p').value),
    top_k: Number($('top-k').value),
    quality_guard: $('guard').checked,
  };
  if (Number($('beams').value) > 1) config.num_beams = Number($('beams').value);
  if ($('seed').value !== '') config.seed = Number($('seed').value);
  if (mode === 'instruct') config.instructions = $('instructions').value;
  if (mode === 'cross-lingual') config.cross_lingual = true;
  return { config, llm };
}

async function speak() {
  clearError();
  const text = $('text').value;
  if (text.trim() === '') return showError('Type something to speak first.');
  if (!modelName) return showError('The server is not reachable yet; wait for “connected”.');
  if (!$('voice').value) return showError('Choose a voice first (or add one under Voices).');
  if (current) {
    current.active = false;  // its player may still report: it no longer draws
    current.stop();
    current.player.disconnect();
  }
  const { config, llm } = speechConfig();
  let ctx;
  try {
    ctx = await audioOutput();
  } catch (e) {
    return showError(`This browser cannot play the audio: ${e.message}`);
  }
  const player = new AudioWorkletNode(ctx, 'pcm-player', {
    numberOfInputs: 0, outputChannelCount: [1],
    processorOptions: { startSeconds: JITTER_BUFFER_SECONDS },
  });
  player.connect(ctx.destination);
  const u = new Utterance({
    config, player,
    pieces: llm ? llmPieces(text) : [text],
    pace: llm ? Number($('pace').value) : 0,
  });
  current = u;
  u.active = true;
  $('speak-button').disabled = true;
  $('stop-button').disabled = false;
  $('download-button').disabled = true;
  $('quality').textContent = '';
  try {
    await u.start();
  } finally {
    if (current === u) {
      $('speak-button').disabled = false;
      $('stop-button').disabled = true;
    }
    $('download-button').disabled = u.chunks.length === 0;
    lastAudio = u.chunks;

  }
}

let lastAudio = [];

function download() {
  const blob = wavBlob(lastAudio, SAMPLE_RATE);
  const name = `cosyserve-${new Date().toISOString().replace(/[:.]/g, '-')}.wav`;
  hook.lastDownload = { name, bytes: blob.size };
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// Wiring ---------------------------------------------------------------------------------------
function init() {
  $('api-key').value = localStorage.getItem('cosyserve.apiKey') || '';
  $('api-key').addEventListener('change', () => {
    localStorage.setItem('cosyserve.apiKey', apiKey());
    setConnection('connecting', 'connecting…');
  });
  $('error-close').addEventListener('click', clearError);
  $('speak-button').addEventListener('click', () => speak().catch((e) => showError(e.message)));
  $('stop-button').addEventListener('click', () => current && current.stop());
  $('download-button').addEventListener('click', download);
  $('voice-form').addEventListener('submit', (e) => addVoice(e).catch((err) => showError(err.message)));
  $('record-button').addEventListener('click', () => toggleRecording().catch((e) => showError(e.message)));
  $('voice-file').addEventListener('change', forgetRecording);
  $('speed').addEventListener('input', () => { $('speed-out').textContent = `${Number($('speed').value).toFixed(2)}×`; });
  $('pace').addEventListener('input', () => { $('pace-out').textContent = `${$('pace').value} tokens/s`; });
  for (const r of document.querySelectorAll('input[name=mode]')) {
    r.addEventListener('change', () => { $('instruct-row').hidden = r.value !== 'instruct' || !r.checked; });
  }
  for (const r of document.querySelectorAll('input[name=input]')) {
    r.addEventListener('change', () => { $('pace-label').hidden = r.value !== 'llm' || !r.checked; });
  }
  pollServer();
}

init();
