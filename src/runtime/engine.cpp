#include "runtime/engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>

#include "core/error.h"
#include "runtime/engine_trace.h"
#include "runtime/prompt_state_cache.h"
#include "runtime/utterance.h"

namespace cosy {

ConfigFields EngineOptions::fields() const {
  return {{"llm_weights", weight_format_name(llm_weights)},
          {"flow_weights", weight_format_name(flow_weights)},
          {"hift_weights", weight_format_name(hift_weights)},
          {"max_streams", cat(max_streams)},
          {"kv_blocks", cat(kv_blocks)},
          {"kv_block_size", cat(kv_block_size)},
          {"max_input_chars", cat(max_input_chars)},
          {"prompt_state_voices", cat(prompt_state_voices)},
          {"uncond_first_passes", cat(uncond_first_passes)},
          {"lm_voice_prefixes", cat(lm_voice_prefixes)},
          {"flow_left_chunks", flow_left_chunks ? cat(*flow_left_chunks) : "model"},
          {"schedule", schedule_policy_name(schedule)},
          {"ttfa_target_s", cat(ttfa_target_s)}};
}

std::string EngineOptions::to_string() const { return fields_to_string("EngineOptions", fields()); }

void EngineOptions::validate() const {
  if (max_streams < 1) fail("engine: max_streams must be >= 1");
  if (kv_blocks < 1 || kv_block_size < 1) fail("engine: kv_blocks and kv_block_size must be >= 1");
  if (max_input_chars < 1) fail("engine: max_input_chars must be >= 1");
  if (prompt_state_voices < 0) fail("engine: prompt_state_voices must be >= 0");
  if (uncond_first_passes < 0) fail("engine: uncond_first_passes must be >= 0");
  if (lm_voice_prefixes < 0) fail("engine: lm_voice_prefixes must be >= 0");
  if (!(ttfa_target_s >= 0) || ttfa_target_s > 3600)
    fail("engine: ttfa_target_s must be in [0, 3600], got ", ttfa_target_s);
  if (flow_left_chunks && *flow_left_chunks < -1)
    fail("engine: flow_left_chunks must be -1 (all) or >= 0, got ", *flow_left_chunks);
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

const EngineOptions& validated(const EngineOptions& o) {
  o.validate();
  return o;
}

FlowConfig flow_config(const FlowConfig& model, const EngineOptions& o) {
  FlowConfig c = model;
  if (o.flow_left_chunks) {
    c.decoder.estimator.num_decoding_left_chunks = *o.flow_left_chunks;
    c.decoder.dit.num_decoding_left_chunks = *o.flow_left_chunks;
  }
  return c;
}

// The LM's limits; CosyVoice3's <|endofprompt|> is the folder tokenizer's id for it (the
// official tokenizer's 151646 unless the folder's tokenizer says otherwise).
LmSessionLimits lm_limits(const SpeechLm& lm, const text::TextFrontend* frontend) {
  LmSessionLimits l = LmSessionLimits::of(lm);
  if (l.end_of_prompt >= 0 && frontend != nullptr) {
    const int32_t id = frontend->tokenizer().token_id("<|endofprompt|>");
    if (id >= 0) l.end_of_prompt = id;
  }
  return l;
}

}  // namespace

// What the scheduler keeps for one stream.
struct ActiveStream {
  std::shared_ptr<SynthesisStream> handle;
  std::deque<std::unique_ptr<Utterance>> utterances;  // in order; the front one is voiced
  int64_t next_segment = 0;
  bool input_finished = false;
  bool ended = false;
  StreamResult result;
  std::vector<float> chunk;      // the audio of the current step
  std::vector<float> chunk_mel;  // the mel it was made from
  // When the listener's audio runs out at real-time playback, in seconds since the stream
  // opened (the deadline policy's deadline once audio has gone out).
  double playback_end_s = 0;
  int64_t serial = 0;    // the stream's number in traces
  bool selected = true;  // in this pass's batch (the deadline policy picks; lockstep: all)
};

class Engine::Scheduler {
 public:
  explicit Scheduler(Engine& engine)
      : e_(engine),
        limits_(lm_limits(engine.lm_, engine.frontend())),
        runner_(engine.backend_, engine.lm_,
                {engine.options_.kv_blocks, engine.options_.kv_block_size,
                 engine.options_.lm_voice_prefixes}) {
    if (engine.options_.uncond_first_passes > 0)
      uncond_cache_.emplace(engine.options_.uncond_first_passes);
    if (engine.options_.prompt_state_voices > 0 && engine.flow_->has_prompt_state()) {
      prompt_states_.emplace(
          static_cast<size_t>(engine.options_.prompt_state_voices),
          [&flow = *engine.flow_](const VoicePrompt& voice, bool half_state) {
            return flow.prompt_state(voice, half_state);
          },
          [signal = engine.signal_] { signal->notify(); });
    }
  }

  const LmSessionLimits& limits() const { return limits_; }

  // Called by open() with the signal's mutex held.
  void add_locked(std::shared_ptr<SynthesisStream> s) { incoming_.push_back(std::move(s)); }
  int64_t open_streams() const { return open_.load(); }
  void count_open() {
    ++open_;
    std::lock_guard lock(stats_mutex_);
    ++stats_.streams_opened;
  }

  EngineStats stats() const {
    std::lock_guard lock(stats_mutex_);
    EngineStats s = stats_;
    s.streams_open = open_.load();
    if (uncond_cache_) {
      s.uncond_first_pass_hits = uncond_cache_->hits();
      s.uncond_first_pass_bytes = static_cast<int64_t>(uncond_cache_->bytes());
    }
    return s;
  }

  void run() {
    SchedulerSignal& sig = *e_.signal_;
    uint64_t seen = 0;
    bool worked = false;
    for (;;) {
      std::vector<std::shared_ptr<SynthesisStream>> arrived;
      {
        std::unique_lock lock(sig.mutex);
        if (!worked) sig.cv.wait(lock, [&] { return sig.stopping || sig.generation != seen; });
        seen = sig.generation;
        if (sig.stopping) break;
        arrived.swap(incoming_);
      }
      trace_ = e_.trace_ptr_.load(std::memory_order_acquire);
      for (auto& h : arrived) admit(std::move(h));
      take_inputs();
      open_waiting_flows();
      if (trace_ != nullptr) trace_states();
      worked = e_.schedule() == SchedulePolicy::Lockstep ? lockstep_pass() : deadline_pass();
      retire();
      publish_pool();
    }
    // Shutting down: every stream still open ends as cancelled.
    {
      std::lock_guard lock(sig.mutex);
      for (auto& h : incoming_) admit(std::move(h));
      incoming_.clear();
    }
    for (auto& a : active_) end(*a, StreamStatus::Cancelled, "the engine shut down");
    retire();
  }

 private:
  void admit(std::shared_ptr<SynthesisStream> handle) {
    auto a = std::make_unique<ActiveStream>();
    a->handle = std::move(handle);
    a->serial = next_serial_++;
    const StreamOptions& o = a->handle->options();
    if (trace_ != nullptr) {
      trace_->stream_opened(
          a->serial, a->handle->opened_at(), std::chrono::steady_clock::now(),
          cat(stream_input_name(o.input), o.streaming ? ", streaming" : ", offline",
              o.fixed_tokens > 0 ? cat(", ", o.fixed_tokens, " tokens") : ""));
    }
    try {
      // Incremental text and speech tokens make one utterance that grows as input arrives.
      if (o.input != StreamInput::Text) {
        add_utterance(*a, {}, o.input == StreamInput::IncrementalText);
      }
    } catch (const std::exception& ex) {
      end(*a, StreamStatus::Failed, ex.what());
    }
    active_.push_back(std::move(a));
  }

  void take_inputs() {
    for (auto& ap : active_) {
      ActiveStream& a = *ap;
      if (a.ended) continue;
      SynthesisStream::Input in = a.handle->take_input();
      if (in.cancelled) {
        end(a, StreamStatus::Cancelled, "");
        continue;
      }
      const StreamOptions& o = a.handle->options();
      try {
        switch (o.input) {
          case StreamInput::Text:
            for (auto& seg : in.segments) {
              add_utterance(a, std::move(seg), true);
            }
            break;
          case StreamInput::IncrementalText:
            if (!in.ids.empty()) a.utterances.front()->lm()->push_text(in.ids);
            if (in.finished) a.utterances.front()->lm()->end_text();
            break;
          case StreamInput::SpeechTokens:
            if (!in.ids.empty()) a.utterances.front()->push_tokens(in.ids);
            if (in.finished) a.utterances.front()->end_tokens();
            break;
        }
      } catch (const std::exception& ex) {
        end(a, StreamStatus::Failed, ex.what());
        continue;
      }
      if (in.finished) a.input_finished = true;
    }
  }

  // The voice's prompt flow state for incremental streaming, computed on first use (off
  // this thread) and kept for the most recent prompt_state_voices voices; empty when not
  // used.
  PendingPromptState prompt_state(const StreamOptions& o, int64_t serial) {
    if (!prompt_states_ || !o.streaming || !o.flow.incremental) return {};
    PendingPromptState state = prompt_states_->request(o.voice, o.flow.half_state, serial);
    publish_prompt_state_bytes();  // the request may have let an older voice's state go
    return state;
  }

  void publish_prompt_state_bytes() {
    const auto bytes = static_cast<int64_t>(prompt_states_->bytes());
    std::lock_guard lock(stats_mutex_);
    stats_.prompt_state_bytes = bytes;
  }

  // A segment's flow opened from its voice's prompt state.
  void count_prompt_state_start(const Utterance& u) {
    if (!u.started_from_prompt_state()) return;
    std::lock_guard lock(stats_mutex_);
    ++stats_.prompt_state_starts;
  }

  // The prompt states computed since the last pass go into the flow's stats and the trace;
  // the segments waiting for them open their flow.
  void open_waiting_flows() {
    if (!prompt_states_) return;
    const auto finished = prompt_states_->take_finished();
    for (const auto& c : finished) {
      record(stats_.flow, std::chrono::duration<double>(c.end - c.begin).count(), 0, 0);
      if (trace_ != nullptr) trace_->prompt_state(c.begin, c.end, c.requested_by, c.error);
    }
    if (!finished.empty()) publish_prompt_state_bytes();
    for (auto& ap : active_) {
      if (ap->ended) continue;
      try {
        for (auto& u : ap->utterances) {
          if (u->waiting_for_prompt_state() && u->open_flow()) count_prompt_state_start(*u);
        }
      } catch (const std::exception& ex) {
        end(*ap, StreamStatus::Failed, ex.what());
      }
    }
  }

  // Adds a segment's utterance to a stream.
  void add_utterance(ActiveStream& a, std::vector<int32_t> text, bool with_lm) {
    const StreamOptions& o = a.handle->options();
    auto u = std::make_unique<Utterance>(*e_.flow_, *e_.vocoder_, limits_, o, a.next_segment++,
                                         std::move(text), with_lm, prompt_state(o, a.serial),
                                         uncond_cache_ ? &*uncond_cache_ : nullptr,
                                         e_.silent_cap_ ? &*e_.silent_cap_ : nullptr);
    count_prompt_state_start(*u);
    a.utterances.push_back(std::move(u));
  }

  // Each stream's state before this pass's calls: what it waits for.
  void trace_states() {
    const auto now = std::chrono::steady_clock::now();
    for (auto& ap : active_) {
      ActiveStream& a = *ap;
      if (a.ended) continue;
      const char* state = "waiting for input";
      if (!a.utterances.empty()) {
        Utterance& u = *a.utterances.front();
        const LmDecoder* lm = current_lm(a);
        if (u.hift_ready()) {
          state = "waiting for vocoder";
        } else if (u.waiting_for_prompt_state()) {
          state = "waiting for voice prompt state";
        } else if (u.flow_ready()) {
          state = "waiting for flow";
        } else if (lm != nullptr && lm->ready()) {
          state = "waiting for llm";
        } else if (lm != nullptr && lm->waiting_for_text()) {
          state = "waiting for text";
        }
      }
      trace_->stream_state(a.serial, state, now);
    }
  }

  // Every stage, each over every stream ready for it (no short-circuit: a stream can be
  // ready in several).
  bool lockstep_pass() {
    for (auto& ap : active_) ap->selected = true;
    const bool lm = lm_stage();
    const bool flow = flow_stage();
    const bool hift = hift_stage();
    return lm || flow || hift;
  }

  // The stage the most urgent stream needs, over the streams the policy picks; the LM step
  // (cheap, batched) after it.
  bool deadline_pass() {
    const auto planning = std::chrono::steady_clock::now();
    std::vector<StreamNeed> needs;
    std::vector<ActiveStream*> who;
    for (auto& ap : active_) {
      ActiveStream& a = *ap;
      a.selected = false;
      if (a.ended || a.utterances.empty()) continue;
      Utterance& u = *a.utterances.front();
      const StreamOptions& o = a.handle->options();
      StreamNeed n;
      n.hift_ready = u.hift_ready();
      // A stream's mel goes to the vocoder in the pieces its flow calls made, as when it
      // runs alone (the streaming vocoder's output depends on the pieces): its next flow
      // chunk waits until the vocoder has taken the last one.
      n.flow_ready = u.flow_ready() && !n.hift_ready;
      const LmDecoder* lm = current_lm(a);
      n.lm_ready = lm != nullptr && lm->ready();
      n.lm_steps = u.tokens_missing();
      n.flow_flops = u.next_flow_flops();
      n.hift_frames = u.hift_frames_in_step();
      n.started = a.result.first_chunk_s >= 0;
      if (o.streaming) {
        const double now = a.handle->seconds_since_open();
        n.deadline_s = (n.started ? a.playback_end_s : e_.options_.ttfa_target_s) - now;
      }
      needs.push_back(n);
      who.push_back(&a);
    }
    const PassPlan plan = plan_deadline_pass(needs, costs_);
    for (const size_t i : plan.members) who[i]->selected = true;
    if (trace_ != nullptr) trace_->scheduler("plan", planning, std::chrono::steady_clock::now());
    bool worked = false;
    if (plan.stage == Stage::Flow) worked = flow_stage();
    if (plan.stage == Stage::Hift) worked = hift_stage();
    return lm_stage() || worked;
  }

  // The LM session a stream runs now: its first segment whose LM has not finished.
  static LmDecoder* current_lm(ActiveStream& a) {
    for (auto& u : a.utterances) {
      LmDecoder* lm = u->lm();
      if (lm != nullptr && !lm->finished()) return lm;
    }
    return nullptr;
  }

  // One batched LM step over every stream whose current segment has input ready. The
  // runner also sees the streams waiting for text: under KV pressure it may evict them.
  bool lm_stage() {
    std::vector<LmDecoder*> sessions;
    std::vector<std::pair<ActiveStream*, Utterance*>> owners;
    for (auto& ap : active_) {
      if (ap->ended) continue;
      for (auto& u : ap->utterances) {
        LmDecoder* lm = u->lm();
        if (lm == nullptr || lm->finished()) continue;
        sessions.push_back(lm);
        if (lm->ready()) owners.emplace_back(ap.get(), u.get());
        break;  // one LM segment at a time per stream
      }
    }
    if (owners.empty()) return false;
    if (trace_ != nullptr) EngineTrace::enter_stage(Stage::Lm);
    const auto t0 = std::chrono::steady_clock::now();
    const LmStepStats st = runner_.step(sessions);
    costs_.observe_lm(seconds_since(t0));
    const double flops = e_.lm_.backbone().linear_flops(st.rows) + e_.lm_.decoder_flops(st.outputs);
    record(stats_.llm, t0, flops, st.sessions);
    if (trace_ != nullptr) {
      std::vector<int64_t> serials;
      for (auto& [a, u] : owners) serials.push_back(a->serial);
      trace_->stage_call(Stage::Lm, t0, std::chrono::steady_clock::now(), serials,
                         {{"rows", st.rows}, {"gflop", flops / 1e9}, {"evicted", st.evicted}});
    }
    if (st.evicted > 0 || st.prefix_rows > 0) {
      std::lock_guard lock(stats_mutex_);
      stats_.lm_evictions += st.evicted;
      stats_.lm_prefix_rows += st.prefix_rows;
    }
    for (auto& [a, u] : owners) {
      try {
        if (!u->take_lm_output()) end(*a, StreamStatus::Failed, "speech LM: " + u->lm()->error());
      } catch (const std::exception& ex) {
        end(*a, StreamStatus::Failed, ex.what());
      }
    }
    if (trace_ != nullptr) trace_states();  // what each stream waits for now
    return st.sessions > 0;
  }

  // One batched flow call over the streaming chunks that are ready, and one over the
  // whole-segment (non-streaming) calls.
  bool flow_stage() {
    std::vector<FlowWork> work;
    std::vector<ActiveStream*> owners;
    double planned = 0;  // the calls' FLOPs as predicted, for the policy's cost estimate
    for (auto& ap : active_) {
      if (ap->ended || ap->utterances.empty() || !ap->selected) continue;
      Utterance& u = *ap->utterances.front();
      if (!u.flow_ready()) continue;
      planned += u.next_flow_flops();
      work.push_back(u.flow_work());
      owners.push_back(ap.get());
    }
    if (work.empty()) return false;
    // Useful work: each stream's flow cost so far, before and after (see flow_flops_done).
    std::vector<double> before;
    for (auto* a : owners) before.push_back(a->utterances.front()->flow_flops_done());
    if (trace_ != nullptr) EngineTrace::enter_stage(Stage::Flow);
    const auto t0 = std::chrono::steady_clock::now();
    run_isolated(work, owners, [&](std::span<FlowWork> w) { e_.flow_->run(w); });
    costs_.observe_flow(seconds_since(t0), planned);
    double flops = 0;
    for (size_t i = 0; i < owners.size(); ++i) {
      if (owners[i]->ended) continue;
      Utterance& u = *owners[i]->utterances.front();
      u.flow_ran();
      flops += u.flow_flops_done() - before[i];
    }
    record(stats_.flow, t0, flops, static_cast<int64_t>(owners.size()));
    if (trace_ != nullptr) {
      std::vector<int64_t> serials;
      for (auto* a : owners) serials.push_back(a->serial);
      trace_->stage_call(Stage::Flow, t0, std::chrono::steady_clock::now(), serials,
                         {{"gflop", flops / 1e9}, {"computed_gflop", planned / 1e9}});
    }
    record_flow_state();
    if (trace_ != nullptr) trace_states();
    return true;
  }

  void record_flow_state() {
    int64_t bytes = 0;
    for (auto& ap : active_) {
      if (ap->ended) continue;
      for (auto& u : ap->utterances) bytes += static_cast<int64_t>(u->flow_state_bytes());
    }
    std::lock_guard lock(stats_mutex_);
    stats_.flow_state_bytes = bytes;
    stats_.flow_state_peak_bytes = std::max(stats_.flow_state_peak_bytes, bytes);
  }

  // One batched vocoder call over every stream with new mel (or a tail to flush); then
  // each stream's chunk goes to its callback.
  bool hift_stage() {
    std::vector<VocoderWork> steps;
    std::vector<ActiveStream*> owners;
    double flops = 0;
    int64_t frames = 0;
    for (auto& ap : active_) {
      if (ap->ended || ap->utterances.empty() || !ap->selected) continue;
      Utterance& u = *ap->utterances.front();
      if (!u.hift_ready()) continue;
      frames += u.hift_frames_in_step();
      ap->chunk.clear();
      ap->chunk_mel = u.mel_out();
      flops += e_.vocoder_->flops(u.hift_frames_in_step());
      steps.push_back(u.hift_step(ap->chunk));
      owners.push_back(ap.get());
    }
    if (steps.empty()) return false;
    if (trace_ != nullptr) EngineTrace::enter_stage(Stage::Hift);
    const auto t0 = std::chrono::steady_clock::now();
    run_isolated(steps, owners, [&](std::span<VocoderWork> w) { e_.vocoder_->run(w); });
    costs_.observe_hift(seconds_since(t0), frames);
    record(stats_.hift, t0, flops, static_cast<int64_t>(steps.size()));
    if (trace_ != nullptr) {
      std::vector<int64_t> serials;
      for (auto* a : owners) serials.push_back(a->serial);
      trace_->stage_call(Stage::Hift, t0, std::chrono::steady_clock::now(), serials,
                         {{"frames", frames}, {"gflop", flops / 1e9}});
    }
    for (size_t i = 0; i < steps.size(); ++i) {
      ActiveStream& a = *owners[i];
      if (a.ended) continue;
      if (const char* what = !all_finite(a.chunk_mel) ? "mel"
                             : !all_finite(a.chunk)   ? "audio"
                                                      : nullptr) {
        // Never sent: a listener would hear a burst of noise or nothing.
        ++a.result.quality.nonfinite;
        end(a, StreamStatus::Failed,
            cat("non-finite ", what, " (NaN or Inf) in segment ", a.utterances.front()->segment(),
                "; none of it was sent (the model's numerics overflowed: try another weight "
                "format)"));
        continue;
      }
      Utterance& u = *a.utterances.front();
      const int64_t segment = u.segment();
      u.hift_ran(steps[i].finalize);
      pop_done(a);
      const bool last = a.input_finished && a.utterances.empty();
      if (!a.chunk.empty() || last) deliver(a, a.chunk, a.chunk_mel, segment, last);
    }
    if (trace_ != nullptr) trace_states();
    return true;
  }

  // Ends streams that are complete, cancelled or failed, and frees their memory.
  void retire() {
    for (auto& ap : active_) {
      ActiveStream& a = *ap;
      if (a.ended) continue;
      pop_done(a);  // segments that had nothing to say
      if (a.input_finished && a.utterances.empty()) {
        const int64_t segment = a.next_segment - 1;
        deliver(a, {}, {}, segment, true);
      }
    }
    std::erase_if(active_, [&](std::unique_ptr<ActiveStream>& ap) {
      if (!ap->ended) return false;
      for (auto& u : ap->utterances) {
        if (u->lm() != nullptr) runner_.release(*u->lm());
      }
      ap->result.total_s = ap->handle->seconds_since_open();
      ap->result.quality.enabled = ap->handle->options().guard.enabled;
      if (trace_ != nullptr) {
        trace_->stream_ended(ap->serial, stream_status_name(ap->result.status),
                             std::chrono::steady_clock::now());
      }
      --open_;  // before waking the waiter, so it sees the engine's room
      ap->handle->complete(std::move(ap->result));
      return true;
    });
  }

  void pop_done(ActiveStream& a) {
    while (!a.utterances.empty() && a.utterances.front()->done()) {
      Utterance& u = *a.utterances.front();
      // The LM's own final output (the flow was given exactly this, once committed).
      const auto& t = u.lm() != nullptr ? u.lm()->tokens() : u.tokens();
      a.result.speech_tokens.insert(a.result.speech_tokens.end(), t.begin(), t.end());
      ++a.result.segments;
      if (u.lm() != nullptr) {
        a.result.quality.add(u.lm()->quality_report());
        runner_.release(*u.lm());
      }
      a.utterances.pop_front();
    }
  }

  void deliver(ActiveStream& a, std::span<const float> samples, std::span<const float> mel,
               int64_t segment, bool last) {
    if (!samples.empty()) {
      const double now = a.handle->seconds_since_open();
      if (a.result.first_chunk_s < 0) a.result.first_chunk_s = now;
      // The listener plays from the first chunk; after a stall, from the chunk's arrival.
      a.playback_end_s =
          std::max(a.playback_end_s, now) + static_cast<double>(samples.size()) / e_.sample_rate_;
    }
    AudioChunk chunk{samples, mel, a.result.chunks, segment, last};
    const bool first = !samples.empty() && a.result.samples == 0;
    ++a.result.chunks;
    a.result.samples += static_cast<int64_t>(samples.size());
    bool keep = true;
    if (a.handle->callback()) {
      const auto t0 = std::chrono::steady_clock::now();
      try {
        keep = a.handle->callback()(chunk);
      } catch (const std::exception& ex) {
        end(a, StreamStatus::Failed, cat("the audio callback threw: ", ex.what()));
        return;
      }
      if (trace_ != nullptr) {
        trace_->delivered(a.serial, t0, std::chrono::steady_clock::now(), first,
                          static_cast<int64_t>(samples.size()));
      }
    }
    if (last) {
      end(a, StreamStatus::Done, "");
    } else if (!keep) {
      end(a, StreamStatus::Cancelled, "");
    }
  }

  void end(ActiveStream& a, StreamStatus status, const std::string& error) {
    if (a.ended) return;
    a.ended = true;
    a.result.status = status;
    a.result.error = error;
    for (auto& u : a.utterances) {
      if (u->lm() == nullptr) continue;
      a.result.quality.add(u->lm()->quality_report());  // what ran of the unfinished segments
      u->lm()->cancel();
    }
  }

  // Runs a stage over the batch; if that throws (a request the stage refuses), runs each
  // stream alone so that only the streams at fault fail.
  template <typename T, typename Fn>
  void run_isolated(std::vector<T>& items, const std::vector<ActiveStream*>& owners, Fn&& fn) {
    if (items.empty()) return;
    try {
      fn(std::span<T>(items));
      return;
    } catch (const std::exception& ex) {
      if (items.size() == 1) {
        end(*owners[0], StreamStatus::Failed, ex.what());
        return;
      }
    }
    for (size_t i = 0; i < items.size(); ++i) {
      try {
        fn(std::span<T>(&items[i], 1));
      } catch (const std::exception& ex) {
        end(*owners[i], StreamStatus::Failed, ex.what());
      }
    }
  }

  // The KV pool as the last pass left it, for whoever reads stats() (the pool itself is
  // the scheduler thread's alone).
  void publish_pool() {
    const PagedKvPool& pool = runner_.pool();
    if (trace_ != nullptr) {
      trace_->counters(std::chrono::steady_clock::now(), open_.load(),
                       pool.geometry().blocks - pool.free_blocks());
    }
    std::lock_guard lock(stats_mutex_);
    stats_.kv_blocks_total = pool.geometry().blocks;
    stats_.kv_blocks_free = pool.free_blocks();
    stats_.kv_sequences = pool.sequences();
  }

  void record(StageStats& s, std::chrono::steady_clock::time_point t0, double flops,
              int64_t items) {
    record(s, seconds_since(t0), flops, items);
  }
  void record(StageStats& s, double dt, double flops, int64_t items) {
    std::lock_guard lock(stats_mutex_);
    s.seconds += dt;
    s.flops += flops;
    s.calls += 1;
    s.items += items;
    if (items >= 0) {
      if (static_cast<int64_t>(s.batch_sizes.size()) <= items) s.batch_sizes.resize(items + 1);
      ++s.batch_sizes[items];
    }
  }

  Engine& e_;
  LmSessionLimits limits_;
  LmRunner runner_;
  std::vector<std::shared_ptr<SynthesisStream>> incoming_;  // guarded by the signal's mutex
  std::vector<std::unique_ptr<ActiveStream>> active_;       // scheduler thread only
  // Absent when turned off or the family keeps none. Its worker wakes this scheduler.
  std::optional<PromptStateCache> prompt_states_;
  std::optional<UncondFirstPassCache> uncond_cache_;  // thread-safe; absent when turned off
  StageCosts costs_;              // the deadline policy's estimates; scheduler thread only
  EngineTrace* trace_ = nullptr;  // this pass's (null: tracing off)
  int64_t next_serial_ = 1;
  std::atomic<int64_t> open_{0};
  mutable std::mutex stats_mutex_;
  EngineStats stats_;
};

Engine::Engine(Backend& backend, const ModelFolder& folder, EngineOptions options)
    : backend_(backend),
      options_(validated(options)),
      schedule_(options_.schedule),
      family_(folder.config.family),
      lm_(backend, folder.config.llm, folder.llm, options.llm_weights),
      sample_rate_(static_cast<int>(folder.config.sample_rate)),
      signal_(std::make_shared<SchedulerSignal>()) {
  ModelStages stages = load_model_stages(backend, folder, flow_config(folder.config.flow, options_),
                                         options_.flow_weights, options_.hift_weights);
  flow_ = std::move(stages.flow);
  vocoder_ = std::move(stages.vocoder);
  if (family_ == ModelFamily::CosyVoice3) silent_cap_ = SilentTokenCap::cosyvoice3();
  const auto tokenizer_dir = folder.dir / "CosyVoice-BlankEN";
  if (text::BpeTokenizer::present(tokenizer_dir))
    frontend_.emplace(load_text_frontend(folder.dir, family_));
  if (folder.voices) {
    for (const Voice& v : folder.voices->voices) {
      try {
        auto p = std::make_shared<VoicePrompt>(VoicePrompt::from_voice(v));
        check_voice(*p);
        voices_[v.id] = std::move(p);
      } catch (const std::exception& ex) {
        unusable_voices_[v.id] = ex.what();
      }
    }
  }
  // The weights were packed from the mapping while their CRC-32 check ran; a corrupt record
  // fails the engine here, before it serves anything.
  folder.wait_verified();
  scheduler_ = std::make_unique<Scheduler>(*this);
  thread_ = std::thread([this] { scheduler_->run(); });
}

Engine::~Engine() {
  {
    std::lock_guard lock(signal_->mutex);
    signal_->stopping = true;
  }
  signal_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<SynthesisStream> Engine::open(StreamOptions options, AudioCallback on_audio) {
  options.validate();
  check_voice(*options.voice);
  options.guard.check_vocabulary(lm_.vocab().speech_tokens);
  auto stream = std::make_shared<SynthesisStream>(std::move(options), std::move(on_audio),
                                                  scheduler_->limits(), frontend(),
                                                  options_.max_input_chars, signal_);
  {
    std::lock_guard lock(signal_->mutex);
    if (signal_->stopping) fail("engine: shutting down");
    if (scheduler_->open_streams() >= options_.max_streams) {
      fail("engine: at capacity (", options_.max_streams, " streams open)");
    }
    scheduler_->count_open();
    scheduler_->add_locked(stream);
    ++signal_->generation;
  }
  signal_->cv.notify_all();
  return stream;
}

void Engine::set_voice(const std::string& id, std::shared_ptr<const VoicePrompt> voice) {
  if (!voice) fail("engine: no voice given for '", id, "'");
  check_voice(*voice);
  std::unique_lock lock(voices_mutex_);
  unusable_voices_.erase(id);
  voices_[id] = std::move(voice);
}

bool Engine::remove_voice(const std::string& id) {
  std::unique_lock lock(voices_mutex_);
  return voices_.erase(id) + unusable_voices_.erase(id) > 0;
}

std::shared_ptr<const VoicePrompt> Engine::voice(const std::string& id) const {
  std::shared_lock lock(voices_mutex_);
  if (auto it = voices_.find(id); it != voices_.end()) return it->second;
  if (auto it = unusable_voices_.find(id); it != unusable_voices_.end()) {
    fail("voice '", id, "' cannot be used: ", it->second);
  }
  if (voices_.empty() && unusable_voices_.empty()) {
    fail("no voice '", id, "': the model folder has no spk2info.pt voices");
  }
  std::string ids;
  for (const auto& [k, v] : voices_) ids += (ids.empty() ? "" : ", ") + k;
  fail("no voice '", id, "' in spk2info.pt (zero-shot voices: ", ids.empty() ? "none" : ids, ")");
}

std::vector<std::string> Engine::voice_ids() const {
  std::shared_lock lock(voices_mutex_);
  std::vector<std::string> ids;
  for (const auto& [k, v] : voices_) ids.push_back(k);
  return ids;
}

EngineStats Engine::stats() const { return scheduler_->stats(); }

void Engine::set_trace(std::shared_ptr<TraceWriter> writer) {
  if (!writer) fail("engine: no trace writer given");
  if (trace_) fail("engine: a trace is already being written");
  trace_writer_ = std::move(writer);
  trace_ = std::make_unique<EngineTrace>(*trace_writer_);
  trace_ptr_.store(trace_.get(), std::memory_order_release);
}

}  // namespace cosy
