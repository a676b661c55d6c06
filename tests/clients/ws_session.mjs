// A WebSocket session with the `ws` library against /v1/audio/speech/stream, scripted by a
// scenario name. Prints one JSON line: what came back (events, audio bytes per utterance,
// the close code). Usage: node ws_session.mjs URL VOICE SCENARIO
// WS_CLIENT_TIMEOUT_S bounds the whole session (default 30 s): a loaded CI machine needs more.
// WS_MODEL names the model (default cosyvoice2).
// WS_API_KEY offers an API key as a browser must, as the subprotocol "cosyserve.api-key.KEY"
// beside "cosyserve"; the output then says which subprotocol the server chose.
import { readFileSync } from "node:fs";
import WebSocket from "ws";

const [url, voice, scenario] = process.argv.slice(2);
const config = (extra = {}) =>
  JSON.stringify({
    type: "session.config",
    model: process.env.WS_MODEL || "cosyvoice2",
    voice,
    seed: 11,
    ...extra,
  });
const text = (t) => JSON.stringify({ type: "input.text", text: t });
const msg = (type) => JSON.stringify({ type });
const words = ["Hello ", "there, ", "how ", "are ", "you ", "today? ", "Fine, ", "thanks."];
const short = ["Hi ", "there."];
const long = Array(40).fill("This is a long sentence for barge-in. ").join("");

function refAudio() {
  const file = process.env.REF_AUDIO_FILE;
  return file ? "data:audio/wav;base64," + readFileSync(file).toString("base64") : "";
}

const scenarios = {
  // Token-level streaming: each word goes straight to the engine.
  token: [config({ text_streaming: "token" }), ...words.map(text), msg("input.done")],
  sentence: [config({ text_streaming: "sentence" }), ...words.map(text), msg("input.done")],
  // Two utterances in turn on one connection.
  two: [config(), text("First one. "), msg("input.done"), text("Second one."), msg("input.done")],
  // flush speaks what has arrived without a sentence end.
  flush: [config(), text("No sentence end yet"), msg("input.flush"), msg("input.done")],
  cancel: [config({ text_streaming: "token" }), text(long), msg("input.done")],
  bad_json: ["{not json"],
  binary: [Buffer.from([1, 2, 3])],
  unknown_type: [config(), msg("input.shout")],
  before_config: [text("hello")],
  config_twice: [config(), config()],
  bad_voice: [config({ voice: "nobody" })],
  bad_format: [config({ response_format: "aac" })],
  text_not_string: [config(), JSON.stringify({ type: "input.text", text: 5 })],
  done_without_text: [config(), msg("input.done")],
  oversized: [config(), text("x".repeat(100000))],
  silent: [],
  // A one-off voice from a recording ($REF_AUDIO_FILE, sent as a base64 data URL) and what it says.
  ref_audio: [
    config({ text_streaming: "token", ref_audio: refAudio(), ref_text: "Hello there." }),
    ...short.map(text),
    msg("input.done"),
  ],
  // instruct2: an instruction in place of the voice's transcript.
  instructions: [config({ instructions: "Speak slowly." }), ...short.map(text), msg("input.done")],
  // cross-lingual: the LM hears no prompt; the flow keeps the voice.
  cross_lingual: [config({ cross_lingual: true }), ...short.map(text), msg("input.done")],
  cross_lingual_and_instructions: [config({ cross_lingual: true, instructions: "Speak slowly." })],
  // The quality guard with a setting of this request's own, over a beam search of the text as
  // it arrives; its report comes in audio.done.
  guarded: [
    config({ quality_guard: { max_run: 6 }, num_beams: 2 }),
    ...words.map(text),
    msg("input.done"),
  ],
  bad_guard: [config({ quality_guard: { loop_repeats: 1 } })],
  bad_ref_audio: [config({ ref_audio: "data:audio/wav;base64,aGVsbG8gd29ybGQh", ref_text: "x" }), text("hi")],
};
const script = scenarios[scenario];
if (!script) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}

const key = process.env.WS_API_KEY;
const ws = key ? new WebSocket(url, ["cosyserve", `cosyserve.api-key.${key}`]) : new WebSocket(url);
const events = [];
const audio = [0];
let cancelled = false;
const timer = setTimeout(() => {
  console.log(JSON.stringify({ timeout: true, events, audio }));
  process.exit(1);
}, 1000 * Number(process.env.WS_CLIENT_TIMEOUT_S || 30));
ws.on("open", () => {
  for (const m of script) ws.send(m);
});
ws.on("message", (data, isBinary) => {
  if (isBinary) {
    audio[audio.length - 1] += data.length;
    // Barge in once audio is flowing.
    if (scenario === "cancel" && !cancelled && audio[audio.length - 1] > 48000) {
      cancelled = true;
      ws.send(msg("cancel"));
    }
    return;
  }
  const m = JSON.parse(data.toString());
  events.push(m);
  if (m.type === "audio.done") {
    const dones = events.filter((e) => e.type === "audio.done").length;
    const expected = scenario === "two" ? 2 : 1;
    if (dones >= expected) ws.send(msg("session.close"));
    else audio.push(0);
  }
});
// A refused handshake is an "error" then a "close" (1006): one line says both.
let error;
ws.on("error", (e) => {
  error = String(e);
});
ws.on("close", (code) => {
  clearTimeout(timer);
  console.log(JSON.stringify({ close: code, events, audio, protocol: ws.protocol, error }));
});
