// Captures the microphone's samples (the first channel) on the audio thread and hands
// them to the page in blocks, which wav.js turns into the WAV a new voice is made from.
class PcmRecorder extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(sampleRate / 10);
    this.filled = 0;
    this.port.onmessage = (e) => {
      if (e.data === 'flush') {
        this.port.postMessage(this.block.slice(0, this.filled));
        this.filled = 0;
      }
    };
  }

  process(inputs) {
    const input = inputs[0];
    if (input.length === 0) return true;
    const samples = input[0];
    let i = 0;
    while (i < samples.length) {
      const n = Math.min(samples.length - i, this.block.length - this.filled);
      this.block.set(samples.subarray(i, i + n), this.filled);
      this.filled += n;
      i += n;
      if (this.filled === this.block.length) {
        this.port.postMessage(this.block.slice());
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor('pcm-recorder', PcmRecorder);
