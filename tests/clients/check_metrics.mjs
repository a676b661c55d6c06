// Parses GET /metrics with a Prometheus text-format parser and checks the families the
// server promises, with their types. Exits 1 naming what is wrong.
// Usage: node check_metrics.mjs URL [API_KEY]
import parsePrometheusTextFormat from "parse-prometheus-text-format";

const [url, apiKey] = process.argv.slice(2);
const headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
const res = await fetch(url, { headers });
if (res.status !== 200) {
  console.error(`GET ${url}: ${res.status}`);
  process.exit(1);
}
const families = parsePrometheusTextFormat(await res.text());
const byName = Object.fromEntries(families.map((f) => [f.name, f]));
const expected = {
  cosyserve_streams_running: "GAUGE",
  cosyserve_streams_waiting: "GAUGE",
  cosyserve_requests_total: "COUNTER",
  cosyserve_time_to_first_audio_seconds: "HISTOGRAM",
  cosyserve_request_rtf: "HISTOGRAM",
  cosyserve_e2e_request_latency_seconds: "HISTOGRAM",
  cosyserve_audio_seconds_total: "COUNTER",
  cosyserve_stalls_total: "COUNTER",
  cosyserve_stall_seconds_total: "COUNTER",
  cosyserve_stage_seconds_total: "COUNTER",
  cosyserve_stage_calls_total: "COUNTER",
  cosyserve_stage_items_total: "COUNTER",
  cosyserve_kv_blocks_used: "GAUGE",
  cosyserve_kv_blocks_free: "GAUGE",
  cosyserve_voice_cache_entries: "GAUGE",
};
const problems = [];
for (const [name, type] of Object.entries(expected)) {
  if (!byName[name]) problems.push(`missing ${name}`);
  else if (byName[name].type !== type) problems.push(`${name} is ${byName[name].type}, not ${type}`);
}
for (const f of families) {
  if (!f.name.startsWith("cosyserve_")) problems.push(`${f.name} lacks the cosyserve_ prefix`);
}
const ttfa = byName.cosyserve_time_to_first_audio_seconds;
const count = ttfa ? Number(ttfa.metrics[0]?.count ?? 0) : 0;
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(JSON.stringify({ families: families.length, ttfa_count: count }));
