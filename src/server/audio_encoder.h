// Encodes a stream of audio chunks into one of the response formats, chunk by chunk, so
// the first bytes can leave as soon as the first chunk exists. FLAC, Ogg/Opus and MP3 come
// from libsndfile (libFLAC, libopus, LAME beneath), writing into memory through its virtual
// I/O; pcm is raw s16le; wav is that PCM behind a RIFF header whose sizes say "unknown"
// (0xFFFFFFFF), as OpenAI streams WAV, since a stream's length is not known up front.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "server/speech_request.h"

namespace cosy::server {

class StreamEncoder {
 public:
  static std::unique_ptr<StreamEncoder> create(AudioEncoding encoding, int sample_rate);
  virtual ~StreamEncoder() = default;

  // The bytes that `samples` (mono, [-1, 1]) add to the stream; may be empty while the
  // codec buffers a frame.
  virtual std::string encode(std::span<const float> samples) = 0;
  // The stream's last bytes (codec flush, trailers).
  virtual std::string finish() = 0;

  static const char* content_type(AudioEncoding encoding);
};

}  // namespace cosy::server
