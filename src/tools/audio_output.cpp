#include "tools/audio_output.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tools/cli_support.h"

namespace cosy::tools {
namespace {

bool stdout_is_seekable() { return lseek(STDOUT_FILENO, 0, SEEK_CUR) >= 0; }

bool is_wav(AudioFormat f) { return f == AudioFormat::Wav || f == AudioFormat::WavFloat; }

}  // namespace

AudioFormat resolve_audio_format(const std::string& path, const std::string& format_flag) {
  const std::optional<AudioFormat> implied =
      path == "-" ? std::nullopt : audio_format_of_path(path);
  AudioFormat format = AudioFormat::Wav;
  if (!format_flag.empty()) {
    try {
      format = parse_audio_format(format_flag);
    } catch (const Error& e) {
      usage_fail("--format: ", e.what());
    }
    // A .wav file may hold either WAV flavour.
    if (implied && *implied != format && !(is_wav(*implied) && is_wav(format))) {
      usage_fail("--format ", format_flag, " clashes with --out ", path, " (a .",
                 audio_format_name(*implied),
                 " file name): give a matching name, or drop --format");
    }
  } else if (implied) {
    format = *implied;
  }
  if (path == "-" && is_wav(format) && !stdout_is_seekable()) {
    usage_fail(
        "--out - writes to standard output, which cannot hold a WAV header here (it is "
        "not seekable): give --format pcm or --format flac");
  }
  return format;
}

AudioOutput::AudioOutput(const std::string& path, const std::string& format_flag, int sample_rate)
    : path_(path), format_(resolve_audio_format(path, format_flag)) {
  writer_ = std::make_unique<AudioWriter>(path, sample_rate, format_);
}

void AudioOutput::abandon() {
  writer_.reset();  // closes, ignoring errors
  if (path_ == "-") return;
  std::error_code ec;
  if (std::filesystem::is_regular_file(path_, ec)) std::filesystem::remove(path_, ec);
}

}  // namespace cosy::tools
