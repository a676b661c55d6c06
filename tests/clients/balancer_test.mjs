// Three `cosyserve serve` instances behind Debian's nginx or HAProxy, configured with the
// files in deploy/ (only addresses and ports replaced), on loopback ports chosen here.
// Streaming requests go through the balancer while one instance is killed with SIGKILL and
// another is stopped with SIGTERM:
//   - the balancer spreads streams by least connections (HAProxy: and by the agent weights,
//     so an instance loaded from elsewhere gets fewer);
//   - streams on the killed instance end with a clear truncation within a bounded time;
//   - every request that starts after the kill succeeds;
//   - the SIGTERM'd instance drains: its streams finish, no request fails, it exits 0;
//   - a WebSocket session passes through the balancer.
//
//   node balancer_test.mjs nginx|haproxy COSYSERVE MODEL_DIR VOICE OUT_DIR
//
// Prints one JSON summary line; exits non-zero on the first failed check. Every process it
// starts is stopped at the end. BALANCER_TIMEOUT_S bounds each wait (default 120 s: a
// sanitizer build on 2 cores is slow; a bound against a hang, not a speed test).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const [kind, cli, modelDir, voice, outDir] = process.argv.slice(2);
if (!['nginx', 'haproxy'].includes(kind) || !outDir) {
  console.error('usage: node balancer_test.mjs nginx|haproxy COSYSERVE MODEL_DIR VOICE OUT_DIR');
  process.exit(2);
}
const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TIMEOUT_MS = Number(process.env.BALANCER_TIMEOUT_S || 120) * 1000;
const MAX_STREAMS = 4;  // per instance
const children = [];
const summary = { balancer: kind };

// Processes ----------------------------------------------------------------------------------
function start(name, cmd, args, ready) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    child.log = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${child.log}`)), 60000);
    const onData = (d) => {
      child.log += d;
      const m = ready ? child.log.match(ready) : null;
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, signal) => {
      child.exitStatus = code ?? `signal ${signal}`;
      clearTimeout(timer);
      reject(new Error(`${name} exited (${child.exitStatus}):\n${child.log}`));
    });
    if (!ready) {
      clearTimeout(timer);
      resolve({ child, match: null });
    }
  });
}

async function startInstance(i) {
  const { child, match } = await start(`instance ${i}`, cli, [
    'serve', '--model', modelDir, '--host', '127.0.0.1', '--port', '0', '--agent-port', '0',
    // Requests beyond the slots wait in the instance's queue for as long as a wait here may
    // last (a slow sanitizer build takes long to free a slot): a 429 is no part of this test.
    '--compute-threads', '1', '--max-streams', String(MAX_STREAMS), '--max-queue', '16',
    '--queue-timeout', String(TIMEOUT_MS / 1000),
    '--drain-timeout', '120', '--access-log', 'json',
  ], /agent-check on 127\.0\.0\.1:(\d+)\nlistening on http:\/\/127\.0\.0\.1:(\d+)/);
  return { index: i, child, agentPort: Number(match[1]), port: Number(match[2]) };
}

function exited(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode ?? child.signalCode);
    child.on('exit', (code, signal) => resolve(code ?? signal));
  });
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// The balancer, from deploy/ with only addresses and ports replaced ---------------------------
function replaceAll(text, pattern, replacements, what) {
  let n = 0;
  const out = text.replace(pattern, (...m) => replacements(n++, ...m));
  assert.equal(n, 3, `deploy/${what} should list 3 instances, as this test runs`);
  return out;
}

async function startNginx(instances, port) {
  let conf = readFileSync(join(repo, 'deploy/nginx/cosyserve.conf'), 'utf8');
  conf = replaceAll(conf, /server 127\.0\.0\.1:\d+ /g, (n) => `server 127.0.0.1:${instances[n].port} `, 'nginx');
  assert.match(conf, /\n  listen 8080;/);
  conf = conf.replace(/\n  listen 8080;/, `\n  listen 127.0.0.1:${port};`);
  const dir = join(outDir, 'nginx');
  for (const d of ['', 'tmp']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'cosyserve.conf'), conf);
  const user = process.getuid() === 0 ? 'user root;\n' : '';
  writeFileSync(join(dir, 'nginx.conf'), `${user}daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  include ${dir}/cosyserve.conf;
}
`);
  const { child } = await start('nginx', 'nginx', ['-e', `${dir}/error.log`, '-p', dir, '-c', `${dir}/nginx.conf`]);
  return child;
}

async function startHaproxy(instances, port) {
  let conf = readFileSync(join(repo, 'deploy/haproxy/haproxy.cfg'), 'utf8');
  conf = replaceAll(conf, /server (cosy\d) 127\.0\.0\.1:\d+ agent-port \d+/g,
                    (n, _m, name) => `server ${name} 127.0.0.1:${instances[n].port} agent-port ${instances[n].agentPort}`,
                    'haproxy');
  assert.match(conf, /bind :8080/);
  conf = conf.replace('bind :8080', `bind 127.0.0.1:${port}`);
  writeFileSync(join(outDir, 'haproxy.cfg'), conf);
  const { child } = await start('haproxy', 'haproxy', ['-db', '-f', join(outDir, 'haproxy.cfg')]);
  return child;
}

// Which instance served a response: nginx names its address, HAProxy its server line.
function instanceOf(res, instances) {
  const up = res.headers.get('x-upstream') || '';
  const named = up.match(/^cosy(\d)$/);
  if (named) return Number(named[1]) - 1;
  const last = up.split(',').pop().trim();  // nginx lists every upstream it tried
  return instances.findIndex((i) => last === `127.0.0.1:${i.port}`);
}

// Requests -----------------------------------------------------------------------------------
let base;

function body(ratio, text = 'Keep this stream going for a while.') {
  return JSON.stringify({ model: 'cosyvoice2', voice, input: text, response_format: 'pcm',
                          seed: 5, forced_tokens_per_text_token: ratio });
}

// A streaming speech request read to its end. Resolves with what happened: the status, the
// instance, the bytes, when the first byte came, and how it ended ('complete' with the final
// chunk, 'truncated' without it, 'refused' with an error status).
async function stream(ratio, instances, onFirstByte) {
  const r = { status: 0, instance: -1, bytes: 0, end: 'pending', startedAt: Date.now() };
  try {
    const res = await fetch(`${base}/v1/audio/speech`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: body(ratio),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    r.status = res.status;
    r.instance = instanceOf(res, instances);
    if (res.status !== 200) {
      r.error = await res.text();
      r.end = 'refused';
      return r;
    }
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (r.bytes === 0) {
        r.firstByteAt = Date.now();
        if (onFirstByte) onFirstByte(r);
      }
      r.bytes += value.length;
    }
    r.end = 'complete';
  } catch (e) {
    r.end = r.status === 200 ? 'truncated' : 'failed';
    r.error = String(e.cause || e);
  }
  r.endedAt = Date.now();
  return r;
}

// Starts `n` long streams at once and waits until each has its first audio byte.
async function longStreams(n, ratio, instances) {
  let started = 0;
  let resolveAll;
  const allStarted = new Promise((resolve) => { resolveAll = resolve; });
  const done = [];
  for (let i = 0; i < n; ++i) {
    done.push(stream(ratio, instances, () => { if (++started === n) resolveAll(); }));
  }
  await Promise.race([allStarted, Promise.all(done), sleep(TIMEOUT_MS).then(() => {
    throw new Error(`only ${started} of ${n} streams started`);
  })]);
  if (started < n) {  // every stream ended before all had begun
    throw new Error(`not every stream started: ${JSON.stringify(await Promise.all(done))}`);
  }
  return done;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function counts(results, instances) {
  const c = instances.map(() => 0);
  for (const r of results) if (r.instance >= 0) c[r.instance] += 1;
  return c;
}

// A WebSocket session through the balancer: text in token by token, audio out.
function webSocketSession() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/audio/speech/stream`);
    const r = { audio: 0, events: [] };
    const timer = setTimeout(() => reject(new Error(`WebSocket timed out: ${JSON.stringify(r)}`)), TIMEOUT_MS);
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'session.config', model: 'cosyvoice2', voice, text_streaming: 'token',
                               forced_tokens_per_text_token: 3 }));
      for (const w of ['Through ', 'the ', 'balancer.']) ws.send(JSON.stringify({ type: 'input.text', text: w }));
      ws.send(JSON.stringify({ type: 'input.done' }));
    });
    ws.on('message', (data, binary) => {
      if (binary) return void (r.audio += data.length);
      const m = JSON.parse(data.toString());
      r.events.push(m.type);
      if (m.type === 'audio.done') ws.send(JSON.stringify({ type: 'session.close' }));
    });
    ws.on('close', (code) => { clearTimeout(timer); r.close = code; resolve(r); });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

async function waitUntil(what, predicate) {
  const until = Date.now() + TIMEOUT_MS;
  while (Date.now() < until) {
    if (await predicate()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting until ${what}`);
}

// The test -----------------------------------------------------------------------------------
async function main() {
  const instances = [];
  for (let i = 0; i < 3; ++i) instances.push(await startInstance(i));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const balancer = kind === 'nginx' ? await startNginx(instances, port) : await startHaproxy(instances, port);
  // Up, and (HAProxy) every instance seen healthy: three quick requests land on three.
  await waitUntil('the balancer serves', async () => {
    try { return (await fetch(`${base}/health`)).status === 200; } catch { return false; }
  });
  if (kind === 'haproxy') await sleep(2500);  // rise 2 checks, 1 s apart, and the first agent reply

  // 1. The spread: 9 streams at once, 3 per instance (least connections).
  const spread = await Promise.all(await longStreams(9, 4, instances));
  for (const r of spread) assert.equal(r.end, 'complete', JSON.stringify(r));
  summary.spread = counts(spread, instances);
  for (const c of summary.spread) assert.ok(c >= 2 && c <= 4, `least connections: ${summary.spread}`);

  const ws = await webSocketSession();
  assert.equal(ws.close, 1000, JSON.stringify(ws));
  assert.deepEqual(ws.events, ['audio.start', 'audio.done', 'session.done']);
  assert.ok(ws.audio > 0);
  summary.webSocket = { audioBytes: ws.audio };

  // 2. HAProxy's agent weights: an instance kept full from elsewhere (not through the
  //    balancer, so its connection count there is 0) says "ready up 1%" and gets few new
  //    streams; nginx has no such signal.
  if (kind === 'haproxy') {
    const direct = [];
    const controller = new AbortController();
    for (let i = 0; i < MAX_STREAMS; ++i) {
      direct.push(fetch(`http://127.0.0.1:${instances[0].port}/v1/audio/speech`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: body(40),
        signal: controller.signal,
      }).then((res) => res.arrayBuffer()).catch(() => null));
    }
    await waitUntil('instance 1 is full', async () => {
      const load = await (await fetch(`http://127.0.0.1:${instances[0].port}/load`)).json();
      return load.free_capacity === 0;
    });
    await sleep(2500);  // two agent intervals
    // 12 streams at once. At most one goes to the full instance (leastconn's tie among
    // servers with no connection, at weight 1 %), where it waits in that instance's queue
    // until the load from elsewhere goes away.
    let ended = 0;
    const weighted = [];
    for (let i = 0; i < 12; ++i) weighted.push(stream(3, instances).finally(() => { ended += 1; }));
    await waitUntil('the streams on the free instances end', () => ended >= 11);
    controller.abort();
    await Promise.all(direct);
    const results = await Promise.all(weighted);
    for (const r of results) assert.equal(r.end, 'complete', JSON.stringify(r));
    summary.agentWeighted = counts(results, instances);
    assert.ok(summary.agentWeighted[0] <= 1, `the full instance got few: ${summary.agentWeighted}`);
    await sleep(2500);  // back to full weight
  }

  // 3. SIGKILL an instance with streams on it.
  const inFlight = await longStreams(9, 6, instances);
  await sleep(300);
  const killedAt = Date.now();
  instances[0].child.kill('SIGKILL');
  // Requests that start after the kill all succeed, on the two that are left.
  const afterKill = await Promise.all([0, 1, 2, 3, 4, 5].map(() => stream(2, instances)));
  const killed = await Promise.all(inFlight);
  summary.kill = { onKilled: 0, truncatedWithinMs: 0, survivorsComplete: 0, afterKill: counts(afterKill, instances) };
  for (const r of killed) {
    if (r.instance === 0) {
      summary.kill.onKilled += 1;
      assert.equal(r.end, 'truncated', `a stream on the killed instance ends truncated: ${JSON.stringify(r)}`);
      summary.kill.truncatedWithinMs = Math.max(summary.kill.truncatedWithinMs, r.endedAt - killedAt);
    } else {
      assert.equal(r.end, 'complete', JSON.stringify(r));
      summary.kill.survivorsComplete += 1;
    }
  }
  assert.ok(summary.kill.onKilled >= 1, `some stream was on the killed instance: ${JSON.stringify(killed)}`);
  assert.ok(summary.kill.truncatedWithinMs < 10000, `truncation is quick: ${summary.kill.truncatedWithinMs} ms`);
  for (const r of afterKill) {
    assert.equal(r.end, 'complete', `a request after the kill succeeds: ${JSON.stringify(r)}`);
    assert.notEqual(r.instance, 0);
  }

  // 4. SIGTERM an instance with streams on it: it drains, nothing fails, it exits 0.
  const draining = await longStreams(6, 6, instances);
  await sleep(300);
  instances[1].child.kill('SIGTERM');
  // New streams from the moment it drains (a request sent before it has handled the signal
  // is still its to serve).
  await waitUntil('instance 2 says it drains', () =>
    fetch(`http://127.0.0.1:${instances[1].port}/ready`).then((r) => r.status === 503, () => true));
  const duringDrain = await Promise.all([0, 1, 2, 3, 4, 5].map(() => stream(2, instances)));
  const drained = await Promise.all(draining);
  const exitCode = await Promise.race([exited(instances[1].child), sleep(TIMEOUT_MS).then(() => 'hung')]);
  summary.drain = { streams: counts(drained, instances), duringDrain: counts(duringDrain, instances), exitCode };
  assert.ok(drained.some((r) => r.instance === 1), `a stream was on the draining instance: ${JSON.stringify(drained)}`);
  for (const r of [...drained, ...duringDrain]) assert.equal(r.end, 'complete', JSON.stringify(r));
  for (const r of duringDrain) assert.equal(r.instance, 2, 'new streams avoid the draining instance');
  assert.equal(exitCode, 0, `the drained instance exits 0:\n${instances[1].child.log.slice(-2000)}`);

  balancer.kill('SIGTERM');
  summary.ok = true;
}

try {
  await main();
  console.log(JSON.stringify(summary));
} catch (e) {
  console.error(e.stack || String(e));
  console.error(JSON.stringify(summary));
  for (const c of children) console.error(`--- ${c.spawnargs[0]} (tail) ---\n${c.log.slice(-3000)}`);
  process.exitCode = 1;
} finally {
  // SIGTERM first: nginx's master stops its workers only when it is asked politely; then
  // SIGKILL whatever is left.
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  for (const c of running) c.kill('SIGTERM');
  await Promise.race([Promise.all(running.map(exited)), sleep(5000)]);
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(running.map(exited));
  process.exit();
}
