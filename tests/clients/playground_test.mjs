// The playground in a real browser: Debian's Chromium, headless, driven by Playwright.
// Starts its own `cosyserve serve` on a loopback port, and restarts it on the same port to
// check that the page reconnects.
//
//   node playground_test.mjs COSYSERVE MODEL_DIR WAV OUT_DIR
//
// WAV: a recording to upload as a new voice. Writes OUT_DIR/playground-streaming.png (the
// page after the token-streaming run) and OUT_DIR/playground.png (at the end), and prints
// one JSON summary line. Exits non-zero on the first failed check.
// CHROMIUM (default /usr/bin/chromium) names the browser; PLAYGROUND_TIMEOUT_S bounds each
// wait (a bound against a hang, not a speed test: sanitizer builds on 2 cores are slow).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [cli, modelDir, wavPath, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: node playground_test.mjs COSYSERVE MODEL_DIR WAV OUT_DIR');
  process.exit(2);
}
const TIMEOUT_MS = Number(process.env.PLAYGROUND_TIMEOUT_S || 180) * 1000;
const MAX_INPUT_CHARS = 300;

// The server ---------------------------------------------------------------------------------
let server = null;
let serverLog = '';

function startServer(port, extra = []) {
  return new Promise((resolve, reject) => {
    const args = ['serve', '--model', modelDir, '--host', '127.0.0.1', '--port', String(port),
                  '--voice-store', join(outDir, 'voices.pt'),
                  '--max-input-chars', String(MAX_INPUT_CHARS), ...extra];
    const child = spawn(cli, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${log}`)), 60000);
    child.stderr.on('data', (d) => {
      log += d;
      serverLog += d;
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && timer) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.on('exit', (code) => reject(new Error(`the server exited (${code}):\n${log}`)));
  });
}

function stopServer(signal) {
  return new Promise((resolve) => {
    if (!server || server.child.exitCode !== null) return resolve();
    server.child.on('exit', () => resolve());
    server.child.kill(signal);
  });
}

// The browser --------------------------------------------------------------------------------
const summary = {};
let browser = null;

async function main() {
  server = await startServer(0);
  const base = `http://127.0.0.1:${server.port}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Nothing may leave the machine (no CDN, no Google services), and audio may start
    // without a click in headless mode; the fake devices stand in for a microphone.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--autoplay-policy=no-user-gesture-required',
           '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
  });
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // Every request stays on this server: the page works with no internet access.
  const foreign = [];
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(base) && !url.startsWith(base.replace('http', 'ws')) &&
        !url.startsWith('blob:') && !url.startsWith('data:')) foreign.push(url);
  });

  await page.goto(`${base}/`);
  await waitFor(page, () => window.cosyPlayground.connection === 'connected', 'the page connects');
  await waitFor(page, () => document.querySelector('#voice').options.length > 0, 'the voices load');

  // 1. Speak a sentence: audio arrives, goes to the player, plays; the download is a WAV of it.
  await page.fill('#text', 'Hello there. This is the playground speaking.');
  await page.click('details summary');  // speed and sampling
  await page.fill('#seed', '7');
  const first = await speakAndWait(page);
  assert.equal(first.status, 'done', JSON.stringify(first));
  assert.ok(first.chunks >= 1 && first.samplesReceived > 0, JSON.stringify(first));
  assert.equal(first.samplesQueued, first.samplesReceived, 'every sample went to the player');
  assert.ok(first.ttfa > 0 && first.rtf > 0, JSON.stringify(first));
  assert.equal(first.textStreaming, 'sentence');
  // The guard is on by default on the page, and its report is shown.
  assert.equal(first.quality?.guard, true, JSON.stringify(first.quality));
  assert.match(await page.textContent('#quality'), /Quality report/);
  // The audio thread plays it out (headless Chromium renders audio to a null sink).
  await waitFor(page, () => window.cosyPlayground.current.samplesPlayed >= window.cosyPlayground.current.samplesReceived,
                'the player plays every sample');
  const played = await hook(page);
  summary.speak = { chunks: first.chunks, samples: first.samplesReceived, played: played.current.samplesPlayed,
                    stalls: played.current.stalls, ttfa_s: first.ttfa };
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-button')]);
  const wav = readFileSync(await download.path());
  assert.equal(wav.subarray(0, 4).toString(), 'RIFF');
  assert.equal(wav.length, 44 + 2 * first.samplesReceived, 'the download holds every sample');
  assert.equal(wav.readUInt32LE(24), 24000);
  assert.ok(await page.isVisible('#timeline rect.chunk'), 'the timeline shows the chunks');

  // 2. Text streamed in token by token, as a chat LLM writes it: audio starts before the
  //    text is complete.
  await page.check('input[name=input][value=llm]');
  await page.fill('#pace', '4');
  await page.fill('#text', 'Streaming text arrives a few words at a time, and the speech begins ' +
                           'before the sentence ends, the way a chat model writes.');
  const streamed = await speakAndWait(page);
  assert.equal(streamed.status, 'done', JSON.stringify(streamed));
  assert.equal(streamed.textStreaming, 'token');
  assert.ok(streamed.pieces > 10, JSON.stringify(streamed));
  assert.ok(streamed.chunks >= 1, JSON.stringify(streamed));
  assert.ok(streamed.firstAudioAfterPieces < streamed.pieces,
            `speech began only after all ${streamed.pieces} pieces: ${JSON.stringify(streamed)}`);
  await page.screenshot({ path: join(outDir, 'playground-streaming.png') });
  summary.llm = { pieces: streamed.pieces, firstAudioAfterPieces: streamed.firstAudioAfterPieces,
                  chunks: streamed.chunks };
  await page.check('input[name=input][value=whole]');

  // 3. A new voice from a recording, spoken with, then deleted; a bad recording is refused
  //    with the server's reason.
  await page.fill('#voice-name', 'playground_voice');
  await page.setInputFiles('#voice-file', wavPath);
  await page.fill('#voice-text', 'What the recording says.');
  await page.check('#voice-consent');
  await page.click('#voice-submit');
  await waitFor(page, () => document.querySelector('#voice-status').textContent.includes('added') ||
                            !document.querySelector('#error').hidden, 'the voice is made');
  assert.ok(await page.isHidden('#error'), await page.textContent('#error-text'));
  assert.equal(await page.inputValue('#voice'), 'playground_voice');
  await page.fill('#text', 'Now in the new voice.');
  const cloned = await speakAndWait(page);
  assert.equal(cloned.status, 'done', JSON.stringify(cloned));
  assert.ok(cloned.samplesReceived > 0);
  summary.voice = { samples: cloned.samplesReceived };

  writeFileSync(join(outDir, 'not-audio.wav'), Buffer.alloc(4000, 7));
  await page.fill('#voice-name', 'broken_voice');
  await page.setInputFiles('#voice-file', join(outDir, 'not-audio.wav'));
  await page.click('#voice-submit');
  await page.waitForSelector('#error:not([hidden])');
  const badRecording = await page.textContent('#error-text');
  assert.match(badRecording, /Adding voice “broken_voice” failed: .*\(HTTP 400\)/);
  assert.ok(!(await hook(page)).voices.includes('broken_voice'));
  await page.click('#error-close');

  // A voice recorded from the microphone (Chromium's fake device: a beep), as a WAV made in
  // the page.
  await page.fill('#voice-name', 'mic_voice');
  await page.setInputFiles('#voice-file', []);
  await page.click('#record-button');
  await waitFor(page, () => document.querySelector('#record-status').textContent.startsWith('recording 3'),
                'three seconds are recorded');
  await page.click('#record-button');
  await waitFor(page, () => document.querySelector('#record-status').textContent.startsWith('recorded'),
                'the recording ends');
  await page.click('#voice-submit');
  await waitFor(page, () => document.querySelector('#voice-status').textContent.includes('“mic_voice” added') ||
                            !document.querySelector('#error').hidden, 'the recorded voice is made');
  assert.ok(await page.isHidden('#error'), await page.textContent('#error-text'));
  summary.microphone = await page.textContent('#record-status');
  await page.click('button[data-voice=mic_voice]');
  await waitFor(page, () => !window.cosyPlayground.voices.includes('mic_voice'), 'the recorded voice is deleted');

  await page.click('button[data-voice=playground_voice]');
  await waitFor(page, () => !window.cosyPlayground.voices.includes('playground_voice'), 'the voice is deleted');

  // 4. A request the server refuses: the page says why, and is not stuck.
  await page.fill('#text', 'x '.repeat(MAX_INPUT_CHARS));
  const refused = await speakAndWait(page);
  assert.equal(refused.status, 'failed', JSON.stringify(refused));
  assert.ok(await page.isVisible('#error'));
  const refusal = await page.textContent('#error-text');
  assert.match(refusal, /exceeds 300 characters/);
  assert.ok(await page.isEnabled('#speak-button'), 'Speak works again');
  summary.refusal = refusal;

  // 5. The server restarts under the page: it says so, reconnects, and speaks again.
  await stopServer('SIGKILL');
  await waitFor(page, () => window.cosyPlayground.connection === 'down', 'the page sees the server go');
  assert.match(await page.textContent('#connection'), /reconnecting/);
  server = await startServer(server.port);
  await waitFor(page, () => window.cosyPlayground.reconnects === 1, 'the page reconnects');
  assert.match(await page.textContent('#connection'), /reconnected/);
  await dismissError(page);
  await page.fill('#text', 'Back again.');
  const again = await speakAndWait(page);
  assert.equal(again.status, 'done', JSON.stringify(again));
  summary.restart = { samples: again.samplesReceived };

  // 6. A server with an API key: the page says it needs one; with the key typed in, it
  //    connects and speaks (the browser's WebSocket offers the key as a subprotocol).
  await stopServer('SIGTERM');
  server = await startServer(server.port, ['--api-key', 'sk-playground']);
  await waitFor(page, () => window.cosyPlayground.connection === 'auth', 'the page asks for a key');
  await page.fill('#api-key', 'sk-playground');
  await page.dispatchEvent('#api-key', 'change');
  await waitFor(page, () => window.cosyPlayground.connection === 'connected', 'the page connects with the key');
  await dismissError(page);
  const keyed = await speakAndWait(page);
  assert.equal(keyed.status, 'done', JSON.stringify(keyed));
  assert.ok(keyed.samplesReceived > 0);
  summary.apiKey = { samples: keyed.samplesReceived };

  // The server's stats panel reads /load.
  await waitFor(page, () => document.querySelector('#stat-streams').textContent.includes('/'), 'the stats show');
  await page.screenshot({ path: join(outDir, 'playground.png'), fullPage: true });

  assert.deepEqual(pageErrors, [], 'no uncaught error in the page');
  assert.deepEqual(foreign, [], 'the page fetched nothing from elsewhere');
  summary.ok = true;
}

async function dismissError(page) {
  if (await page.isVisible('#error')) await page.click('#error-close');
}

async function hook(page) {
  return page.evaluate(() => JSON.parse(JSON.stringify(window.cosyPlayground)));
}

async function waitFor(page, predicate, what, arg = null) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: TIMEOUT_MS, polling: 50 });
  } catch (e) {
    const state = await hook(page).catch(() => ({}));
    throw new Error(`timed out waiting until ${what}: ${JSON.stringify(state).slice(0, 2000)}`);
  }
}

// Clicks Speak and waits for that utterance to end; its summary.
async function speakAndWait(page) {
  const before = (await hook(page)).utterances.length;
  await page.click('#speak-button');
  await waitFor(page, (n) => {
    const u = window.cosyPlayground.utterances;
    return u.length > n && u[n].status !== 'running';
  }, 'the utterance ends', before);
  return (await hook(page)).utterances[before];
}

try {
  await main();
  console.log(JSON.stringify(summary));
} catch (e) {
  console.error(e.stack || String(e));
  console.error(`--- server log (tail) ---\n${serverLog.slice(-4000)}`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  await stopServer('SIGKILL');
}
