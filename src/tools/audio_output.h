// Where a command's audio goes: a file, or standard output ("-"). The format comes from
// --format, else from the file's extension (.wav, .flac, .pcm, .raw), else WAV; a clash
// between the two is a usage error. A failed or interrupted command either finishes the
// file (valid, with what was written) or removes it: a listener gets a valid file or none.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>

#include "io/audio_file.h"

namespace cosy::tools {

// The format for `path` given --format (empty when the flag is absent).
AudioFormat resolve_audio_format(const std::string& path, const std::string& format_flag);

class AudioOutput {
 public:
  AudioOutput(const std::string& path, const std::string& format_flag, int sample_rate);

  void write(std::span<const float> samples) { writer_->write(samples); }
  void finish() { writer_->close(); }
  // Closes without reporting errors and removes the file if it is a regular file this
  // command wrote (never a device, a pipe or standard output).
  void abandon();

  const std::string& path() const { return path_; }
  AudioFormat format() const { return format_; }
  int64_t samples() const { return writer_->samples(); }

 private:
  std::string path_;
  AudioFormat format_;
  std::unique_ptr<AudioWriter> writer_;
};

}  // namespace cosy::tools
