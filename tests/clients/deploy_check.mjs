// Checks deploy/ against the server it deploys. Nothing here can run a cluster, Grafana or
// Docker, so this checks what must agree with the server:
//   - every manifest parses (YAML), the dashboard parses (JSON);
//   - the Deployment's args are flags `cosyserve serve` accepts: a real instance starts
//     with them (only the model, voice store, host and port made local);
//   - the probe paths answer 200 on that instance, and the container port is the one the
//     args set, named as the Service and the ServiceMonitor name it;
//   - terminationGracePeriodSeconds covers preStop + --drain-timeout + the 5 s streams get
//     to say they were cut;
//   - the model volume is read-only and holds --model;
//   - every cosyserve_ series the HPA's adapter rule, the ServiceMonitor path and the
//     dashboard's queries name is in that instance's /metrics;
//   - the Dockerfile's steps are scripts/run.sh's setup and build commands, in order.
//
//   node deploy_check.mjs COSYSERVE MODEL_DIR OUT_DIR
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const [cli, modelDir, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: node deploy_check.mjs COSYSERVE MODEL_DIR OUT_DIR');
  process.exit(2);
}
const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const deploy = join(repo, 'deploy');
const checked = [];

// Manifests ------------------------------------------------------------------------------
const objects = [];
for (const file of readdirSync(join(deploy, 'k8s')).filter((f) => f.endsWith('.yaml')).sort()) {
  for (const doc of parseAllDocuments(readFileSync(join(deploy, 'k8s', file), 'utf8'))) {
    assert.equal(doc.errors.length, 0, `${file}: ${doc.errors.map(String).join('; ')}`);
    const o = doc.toJS();
    assert.ok(o && o.kind && o.apiVersion, `${file}: a document without kind/apiVersion`);
    objects.push({ file, ...o });
  }
}
const one = (kind) => {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `one ${kind} in deploy/k8s`);
  return found[0];
};
const deployment = one('Deployment');
const service = one('Service');
const monitor = one('ServiceMonitor');
const hpa = one('HorizontalPodAutoscaler');
const adapter = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('prometheus-adapter'));
assert.ok(adapter, 'the prometheus-adapter rule');
checked.push(`${objects.length} manifests parse`);

const pod = deployment.spec.template.spec;
assert.equal(pod.containers.length, 1);
const container = pod.containers[0];
const args = container.args;
assert.equal(args[0], 'serve');
const flag = (name, fallback) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};
const port = Number(flag('port', '8080'));
const httpPort = container.ports.find((p) => p.containerPort === port);
assert.ok(httpPort && httpPort.name, `a named container port ${port} (--port)`);
for (const [probe, path] of [['readinessProbe', '/ready'], ['livenessProbe', '/health'], ['startupProbe', '/health']]) {
  const p = container[probe];
  assert.ok(p && p.httpGet, `${probe}`);
  assert.equal(p.httpGet.path, path, `${probe} path`);
  assert.ok(p.httpGet.port === httpPort.name || p.httpGet.port === port, `${probe} port`);
}
checked.push('probes: /ready, /health on the container port');

const drain = Number(flag('drain-timeout', '30'));
const preStop = container.lifecycle?.preStop?.exec?.command;
const preStopSeconds = preStop && preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
assert.ok(pod.terminationGracePeriodSeconds >= preStopSeconds + drain + 5,
          `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} < preStop ${preStopSeconds} + drain ${drain} + 5`);
checked.push(`grace ${pod.terminationGracePeriodSeconds} s >= preStop ${preStopSeconds} + drain ${drain} + 5`);

const model = flag('model');
const modelMount = container.volumeMounts.find((m) => model.startsWith(`${m.mountPath}/`));
assert.ok(modelMount && modelMount.readOnly === true, '--model lies on a read-only mount');
const limits = container.resources.limits;
assert.ok(Object.keys(limits).some((k) => /gpu|ascend/i.test(k)), 'one accelerator per instance');
checked.push('the model volume is read-only; one accelerator per pod');

const podLabels = deployment.spec.template.metadata.labels;
for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels)) assert.equal(podLabels[k], v);
for (const [k, v] of Object.entries(service.spec.selector)) assert.equal(podLabels[k], v, 'Service selects the pods');
const servicePort = service.spec.ports.find((p) => p.targetPort === httpPort.name || p.targetPort === port);
assert.ok(servicePort, 'the Service targets the container port');
for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) assert.equal(service.metadata.labels[k], v, 'ServiceMonitor selects the Service');
assert.equal(monitor.spec.endpoints[0].port, servicePort.name, 'ServiceMonitor port is the Service port name');
assert.equal(monitor.spec.endpoints[0].path, '/metrics');
assert.equal(hpa.spec.scaleTargetRef.kind, 'Deployment');
assert.equal(hpa.spec.scaleTargetRef.name, deployment.metadata.name);
checked.push('Service, ServiceMonitor and HPA point at the Deployment');

// The HPA's metric is one the adapter rule makes, from a series the server has.
const rules = parseAllDocuments(adapter.data['config.yaml'])[0].toJS().rules;
const hpaMetric = hpa.spec.metrics[0].pods.metric.name;
const rule = rules.find((r) => r.name.as === hpaMetric);
assert.ok(rule, `an adapter rule exposes ${hpaMetric}`);
const wanted = new Set(rule.seriesQuery.match(/cosyserve_[a-z0-9_]+/g));

// The dashboard's queries.
const dashboard = JSON.parse(readFileSync(join(deploy, 'grafana', 'cosyserve-dashboard.json'), 'utf8'));
let queries = 0;
for (const panel of dashboard.panels) {
  for (const t of panel.targets) {
    queries += 1;
    for (const name of t.expr.match(/cosyserve_[a-z0-9_]+/g) || []) wanted.add(name);
  }
}
checked.push(`${dashboard.panels.length} dashboard panels, ${queries} queries parse`);

// A real instance with the Deployment's args -----------------------------------------------
const local = args.slice(1).map((a) => {
  if (a.startsWith('--model=')) return `--model=${modelDir}`;
  if (a.startsWith('--host=')) return '--host=127.0.0.1';
  if (a.startsWith('--port=')) return '--port=0';
  if (a.startsWith('--voice-store=')) return `--voice-store=${join(outDir, 'voices.pt')}`;
  return a;
});
const server = spawn(cli, ['serve', ...local], { stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
try {
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${log}`)), 60000);
    server.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`cosyserve serve refused the Deployment's args (${code}):\n${log}`)));
  });
  checked.push(`cosyserve serve accepts ${args.join(' ')}`);
  for (const path of [container.readinessProbe.httpGet.path, container.livenessProbe.httpGet.path]) {
    assert.equal((await fetch(base + path)).status, 200, path);
  }
  const text = await (await fetch(base + monitor.spec.endpoints[0].path)).text();
  const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  for (const name of wanted) {
    const family = name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(families.has(name) || families.has(family), `${name} is not in /metrics`);
  }
  checked.push(`${wanted.size} series named by the HPA rule and the dashboard are in /metrics`);
} finally {
  server.kill('SIGKILL');
}

// The container build is the README's setup and build --------------------------------------
const runSh = readFileSync(join(repo, 'scripts', 'run.sh'), 'utf8').split('\n');
const steps = runSh.filter((l) => /^(scripts\/setup\.sh|cmake )/.test(l));
const dockerRuns = readFileSync(join(deploy, 'Dockerfile'), 'utf8').split('\n')
  .filter((l) => l.startsWith('RUN ')).map((l) => l.slice(4));
assert.ok(steps.length >= 3, 'scripts/run.sh sets up and builds');
assert.deepEqual(dockerRuns, steps, 'deploy/Dockerfile runs what scripts/run.sh runs to set up and build');
checked.push('deploy/Dockerfile = scripts/run.sh setup and build');

console.log(JSON.stringify({ ok: true, checked }));
