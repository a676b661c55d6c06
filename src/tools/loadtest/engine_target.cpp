#include "tools/loadtest/engine_target.h"

#include <thread>

#include "tools/loadtest/text_pieces.h"

namespace cosy::loadtest {

EngineTarget::EngineTarget(Engine& engine, std::shared_ptr<const VoicePrompt> voice,
                           std::string voice_id, EngineTargetOptions options)
    : engine_(engine),
      voice_(std::move(voice)),
      voice_id_(std::move(voice_id)),
      options_(options) {}

std::string EngineTarget::describe() const {
  return cat("in-process engine, voice ", voice_id_, ", first hop ", options_.first_hop);
}

StreamRecord EngineTarget::run(const LoadRequest& request, Clock::time_point sent,
                               const std::atomic<bool>& stop) {
  StreamRecord rec;
  rec.id = request.id;
  const double rate = engine_.sample_rate();
  try {
    StreamOptions so;
    so.voice = voice_;
    so.input = request.text_rate > 0 ? StreamInput::IncrementalText : StreamInput::Text;
    so.streaming = true;
    so.flow.first_hop = options_.first_hop;
    so.sampling.seed = request.seed;
    so.vocoder_seed = request.seed;
    so.forced_tokens_per_text_token = request.tokens_per_text_token;
    // Written on the scheduler thread, read here after wait(), which orders the two.
    std::vector<Arrival> arrivals;
    double ended = 0;
    auto stream = engine_.open(so, [&](const AudioChunk& c) {
      const double at = seconds_from(sent);
      arrivals.push_back({at, static_cast<double>(c.samples.size()) / rate});
      if (c.last) ended = at;
      return !stop.load(std::memory_order_relaxed);
    });
    if (request.text_rate > 0) {
      const auto* tokenizer =
          engine_.frontend() != nullptr ? &engine_.frontend()->tokenizer() : nullptr;
      const auto pieces = text_pieces(request.text, tokenizer);
      for (size_t i = 0; i < pieces.size() && !stream->done(); ++i) {
        std::this_thread::sleep_until(sent + seconds(static_cast<double>(i) / request.text_rate));
        if (stop.load()) break;
        stream->push_text(pieces[i]);
      }
    } else {
      stream->push_text(request.text);
    }
    if (!stream->done()) stream->finish_input();
    const StreamResult result = stream->wait();
    rec.arrivals = std::move(arrivals);
    rec.ended_s = ended > 0 ? ended : seconds_from(sent);
    rec.ok = result.status == StreamStatus::Done;
    if (!rec.ok) {
      rec.error =
          result.status == StreamStatus::Failed ? result.error : stream_status_name(result.status);
    }
  } catch (const std::exception& e) {
    rec.ok = false;
    rec.error = e.what();
    rec.ended_s = seconds_from(sent);
  }
  return rec;
}

}  // namespace cosy::loadtest
