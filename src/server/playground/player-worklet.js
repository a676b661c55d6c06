// Plays streamed PCM with a small jitter buffer, on the audio thread. Chunks arrive as
// Float32Arrays over the port; playback starts once `startSeconds` are buffered (or the
// stream has ended), so chunks join with no gap. Running dry before the end is a stall: it
// plays silence, counts the stall and rebuffers. Reports what it played every ~100 ms.
class PcmPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions || {};
    this.startSamples = Math.round((o.startSeconds ?? 0.15) * sampleRate);
    this.queue = [];        // Float32Arrays waiting
    this.offset = 0;        // read position in queue[0]
    this.buffered = 0;      // samples waiting
    this.played = 0;        // samples played
    this.stalls = 0;
    this.stallSamples = 0;  // silence played while stalled
    this.ended = false;     // no more audio will come
    this.playing = false;   // past the initial buffering
    this.finished = false;
    this.sinceReport = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    if (m.type === 'push') {
      this.queue.push(m.samples);
      this.buffered += m.samples.length;
    } else if (m.type === 'end') {
      this.ended = true;
    } else if (m.type === 'stop') {
      this.queue = [];
      this.offset = 0;
      this.buffered = 0;
      this.ended = true;
    }
  }

  report(kind) {
    this.port.postMessage({
      type: kind, played: this.played, buffered: this.buffered, stalls: this.stalls,
      stallSamples: this.stallSamples, playing: this.playing,
    });
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    if (!this.playing && (this.buffered >= this.startSamples || (this.ended && this.buffered > 0))) {
      this.playing = true;
    }
    while (this.playing && i < out.length && this.queue.length > 0) {
      const head = this.queue[0];
      const n = Math.min(out.length - i, head.length - this.offset);
      out.set(head.subarray(this.offset, this.offset + n), i);
      i += n;
      this.offset += n;
      this.buffered -= n;
      this.played += n;
      if (this.offset === head.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    if (i < out.length) {
      out.fill(0, i);
      if (this.playing && !this.ended) {
        // Ran dry mid-stream: a stall the listener hears. Buffer up again before resuming.
        this.stalls += 1;
        this.playing = false;
      }
      if (!this.playing && this.played > 0 && !this.ended) this.stallSamples += out.length - i;
    }
    for (let c = 1; c < outputs[0].length; ++c) outputs[0][c].set(out);
    this.sinceReport += out.length;
    if (this.sinceReport >= sampleRate / 10 && !this.finished) {
      this.sinceReport = 0;
      this.report('stats');
    }
    if (this.ended && this.buffered === 0 && !this.finished) {
      this.finished = true;
      this.report('drained');
    }
    // Played out: the node may go (the page disconnects it when the next stream starts).
    return !this.finished;
  }
}

registerProcessor('pcm-player', PcmPlayer);
