// 16-bit PCM WAV files from samples, for the download button and for recordings.

// s16le bytes (the server's "pcm" format) to Float32 samples in [-1, 1).
export function pcm16ToFloat32(buffer) {
  const view = new DataView(buffer);
  const out = new Float32Array(Math.floor(buffer.byteLength / 2));
  for (let i = 0; i < out.length; ++i) out[i] = view.getInt16(2 * i, true) / 32768;
  return out;
}

// A mono WAV file (RIFF, PCM, 16 bits) of `chunks` (Int16Array or Float32Array pieces).
export function wavBlob(chunks, sampleRate) {
  const samples = chunks.reduce((n, c) => n + c.length, 0);
  const bytes = new ArrayBuffer(44 + samples * 2);
  const v = new DataView(bytes);
  const text = (at, s) => { for (let i = 0; i < s.length; ++i) v.setUint8(at + i, s.charCodeAt(i)); };
  text(0, 'RIFF');
  v.setUint32(4, 36 + samples * 2, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);              // PCM
  v.setUint16(22, 1, true);              // mono
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * 2, true); // bytes per second
  v.setUint16(32, 2, true);              // bytes per frame
  v.setUint16(34, 16, true);             // bits per sample
  text(36, 'data');
  v.setUint32(40, samples * 2, true);
  let at = 44;
  for (const c of chunks) {
    const isFloat = c instanceof Float32Array;
    for (let i = 0; i < c.length; ++i, at += 2) {
      const s = isFloat ? Math.max(-32768, Math.min(32767, Math.round(c[i] * 32768))) : c[i];
      v.setInt16(at, s, true);
    }
  }
  return new Blob([bytes], { type: 'audio/wav' });
}
