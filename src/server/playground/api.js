// What every part of the page shares: the server's HTTP API (with the API key from
// Settings), the error banner, and the test hook.

export const $ = (id) => document.getElementById(id);

// What a test (or a curious user, from the console) can read: counters the page keeps as
// audio arrives, is handed to the player and plays.
export const hook = {
  connection: 'connecting',
  reconnects: 0,
  errors: [],
  voices: [],
  utterances: [],            // one summary per Speak
  current: null,             // the utterance in progress
  lastDownload: null,        // {name, bytes}
};
window.cosyPlayground = hook;

export class PlaygroundError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

// Errors ------------------------------------------------------------------------------
export function showError(message) {
  hook.errors.push(message);
  $('error-text').textContent = message;
  $('error').hidden = false;
}
export function clearError() {
  $('error').hidden = true;
  $('error-text').textContent = '';
}

// The HTTP API ----------------------------------------------------------------------------
export function apiKey() {
  return $('api-key').value.trim();
}

export async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  let res;
  try {
    res = await fetch(path, { ...options, headers, cache: 'no-store' });
  } catch (e) {
    throw new PlaygroundError(`The server cannot be reached (${e.message}).`, 0);
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (body.error && body.error.message) message = `${body.error.message} (HTTP ${res.status})`;
    } catch { /* not JSON: the status says it */ }
    if (res.status === 401) message = `The server wants an API key (Settings): ${message}`;
    throw new PlaygroundError(message, res.status);
  }
  return res;
}

