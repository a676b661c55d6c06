// The official OpenAI Node SDK, unchanged, against cosyserve: audio.speech.create with the
// response streamed as it arrives. Writes the audio to OUT and prints a JSON summary.
// Usage: node openai_speech.mjs BASE_URL API_KEY VOICE FORMAT OUT [INPUT]
import OpenAI from "openai";
import { writeFileSync } from "node:fs";

const [baseURL, apiKey, voice, format, out, input = "Hello from the OpenAI SDK."] =
  process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0, timeout: 60000 });

const start = performance.now();
const response = await client.audio.speech.create({
  model: "cosyvoice2",
  voice,
  input,
  response_format: format,
  seed: 11, // a cosyserve extension, passed through as the SDK passes unknown body fields
});
const chunks = [];
let firstChunkMs = -1;
for await (const chunk of response.body) {
  if (firstChunkMs < 0) firstChunkMs = performance.now() - start;
  chunks.push(Buffer.from(chunk));
}
const audio = Buffer.concat(chunks);
writeFileSync(out, audio);
console.log(JSON.stringify({
  status: response.status,
  contentType: response.headers.get("content-type"),
  chunks: chunks.length,
  bytes: audio.length,
  firstChunkMs,
}));
