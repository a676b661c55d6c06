// The voices panel: list, delete, and add a voice from an uploaded or recorded recording
// (POST /v1/audio/voices, multipart, with the consent checkbox).
import { $, api, clearError, hook, showError } from './api.js';
import { wavBlob } from './wav.js';

const MAX_RECORDING_SECONDS = 30;

export async function refreshVoices(select) {
  const { voices } = await (await api('/v1/audio/voices')).json();
  hook.voices = voices.map((v) => v.id);
  const menu = $('voice');
  const keep = select || menu.value;
  menu.replaceChildren(...voices.map((v) => new Option(v.name + (v.custom ? ' (yours)' : ''), v.id)));
  if (voices.some((v) => v.id === keep)) menu.value = keep;
  const list = $('voice-list');
  list.replaceChildren(...voices.map((v) => {
    const li = document.createElement('li');
    li.textContent = v.name;
    if (v.custom) {
      const del = document.createElement('button');
      del.type = 'button';
      del.textContent = 'Delete';
      del.dataset.voice = v.id;
      del.addEventListener('click', () => deleteVoice(v.id, del));
      li.append(' ', del);
    } else {
      li.append(' (built in)');
    }
    return li;
  }));
  if (voices.length === 0) list.textContent = 'No voices yet: add one below.';
}

async function deleteVoice(id, button) {
  button.disabled = true;
  clearError();
  try {
    await api(`/v1/audio/voices/${encodeURIComponent(id)}`, { method: 'DELETE' });
    $('voice-status').textContent = `Voice “${id}” deleted.`;
    await refreshVoices();
  } catch (e) {
    showError(`Deleting voice “${id}” failed: ${e.message}`);
    button.disabled = false;
  }
}

let recording = null;   // {blob, seconds} from the microphone, or {stop} while recording

// A file was chosen: it, not an earlier recording, is what gets uploaded.
export function forgetRecording() {
  if (recording && recording.stop) return;
  recording = null;
  $('record-status').textContent = '';
}

export async function addVoice(event) {
  event.preventDefault();
  clearError();
  const name = $('voice-name').value.trim();
  const file = $('voice-file').files[0];
  const audio = file || (recording && recording.blob);
  if (!audio) return showError('Choose a recording or record one from the microphone first.');
  if (!$('voice-consent').checked) return showError('Confirm the speaker’s consent first.');
  const form = new FormData();
  form.append('audio_sample', audio, file ? file.name : 'recording.wav');
  form.append('name', name);
  form.append('ref_text', $('voice-text').value);
  const ref = $('voice-consent-ref').value.trim();
  form.append('consent', ref || `confirmed in the playground ${new Date().toISOString()}`);
  const submit = $('voice-submit');
  submit.disabled = true;
  $('voice-status').textContent = 'Making the voice…';
  try {
    await api('/v1/audio/voices', { method: 'POST', body: form });
    $('voice-status').textContent = `Voice “${name}” added.`;
    await refreshVoices(name);
  } catch (e) {
    $('voice-status').textContent = '';
    showError(`Adding voice “${name}” failed: ${e.message}`);
  } finally {
    submit.disabled = false;
  }
}

export async function toggleRecording() {
  const button = $('record-button');
  if (recording && recording.stop) return recording.stop();
  clearError();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
  } catch (e) {
    return showError(`The microphone is not available: ${e.message}`);
  }
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule('/playground/recorder-worklet.js');
  const node = new AudioWorkletNode(ctx, 'pcm-recorder');
  const blocks = [];
  node.port.onmessage = (e) => blocks.push(e.data);
  ctx.createMediaStreamSource(stream).connect(node);
  const started = performance.now();
  const tick = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    $('record-status').textContent = `recording ${s.toFixed(1)} s…`;
    if (s >= MAX_RECORDING_SECONDS) recording.stop();
  }, 200);
  button.textContent = 'Stop recording';
  recording = {
    stop: () => {
      clearInterval(tick);
      node.port.postMessage('flush');
      setTimeout(async () => {
        stream.getTracks().forEach((t) => t.stop());
        const seconds = blocks.reduce((n, b) => n + b.length, 0) / ctx.sampleRate;
        const blob = wavBlob(blocks, ctx.sampleRate);
        await ctx.close();
        recording = { blob, seconds };
        $('voice-file').value = '';
        $('record-status').textContent = `recorded ${seconds.toFixed(1)} s`;
        button.textContent = 'Record again';
        const preview = document.getElementById('record-preview') || document.createElement('audio');
        preview.id = 'record-preview';
        preview.controls = true;
        preview.src = URL.createObjectURL(blob);
        $('record-status').after(preview);
      }, 150);
    },
  };
}

