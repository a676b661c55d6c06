// What every connection of one server shares: the engine, the options, admission (the
// stream slots and the bounded wait queue), the metrics, the access log and the drain.
// Connections (http_session.h, ws_session.h) hold it by shared_ptr.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "runtime/engine.h"
#include "runtime/voice_maker.h"
#include "server/api_error.h"
#include "server/memory_trimmer.h"
#include "server/metrics.h"
#include "server/net_common.h"
#include "server/quality_guard_request.h"
#include "server/recent_activity.h"
#include "server/server_options.h"
#include "server/speech_job.h"
#include "server/speech_request.h"
#include "server/stream_playback.h"
#include "server/voice_service.h"

namespace cosy::server {

// A job whose news runs `pump(session)` on the session's executor (a strand); the job holds
// the session weakly, so a session gone drops the news.
template <typename Session, typename Executor, typename Pump>
std::shared_ptr<SpeechJob> make_session_job(int64_t max_pending_samples,
                                            std::weak_ptr<Session> session, Executor executor,
                                            Pump pump) {
  return std::make_shared<SpeechJob>(max_pending_samples, [session, executor, pump] {
    net::post(executor, [session, pump] {
      if (const auto self = session.lock()) pump(*self);
    });
  });
}

// The engine stream of a request: its voice, sampling (the seed seeds the vocoder too), and
// the job told of its end.
inline StreamOptions speech_stream_options(const SpeechRequest& request,
                                           std::shared_ptr<const VoicePrompt> voice,
                                           StreamInput input, SpeechJob& job,
                                           const QualityGuardOptions& default_guard) {
  StreamOptions so;
  so.guard = merge_quality_guard(default_guard, request.quality_guard);
  so.voice = std::move(voice);
  so.input = input;
  so.streaming = true;
  so.sampling = request.sampling;
  so.beams = request.beams;
  so.vocoder_seed = request.sampling.seed;
  so.speed = request.speed;
  so.forced_tokens_per_text_token = request.forced_tokens_per_text_token;
  so.on_complete = job.completion_callback();
  return so;
}

class ServerState : public std::enable_shared_from_this<ServerState> {
 public:
  ServerState(Engine& engine, ServerOptions options, std::shared_ptr<VoiceService> voices = nullptr)
      : engine_(engine),
        voices_(std::move(voices)),
        o_(std::move(options)),
        ioc_(o_.threads),
        acceptor_(ioc_) {
    o_.validate();
    metrics_.add_gauge("cosyserve_streams_running", "Speech streams synthesising now.");
    metrics_.add_gauge("cosyserve_streams_waiting", "Speech requests waiting for a stream.");
    metrics_.add_counter("cosyserve_requests_total", "Requests by endpoint and HTTP status.");
    metrics_.add_histogram("cosyserve_time_to_first_audio_seconds",
                           "From a speech request's arrival to its first audio.",
                           {0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20});
    metrics_.add_histogram("cosyserve_request_rtf",
                           "Per speech request: synthesis wall time over audio duration.",
                           {0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5});
    metrics_.add_histogram("cosyserve_e2e_request_latency_seconds",
                           "From a speech request's arrival to its last byte.",
                           {0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80});
    metrics_.add_counter("cosyserve_audio_seconds_total", "Audio produced, in seconds.");
    metrics_.add_counter("cosyserve_stalls_total",
                         "Stalls a listener with no jitter buffer would hear: audio handed to "
                         "the client after the audio before it had played out.");
    metrics_.add_counter("cosyserve_stall_seconds_total",
                         "Time such a listener would spend stalled, in seconds.");
    metrics_.add_counter("cosyserve_stage_seconds_total",
                         "Wall time of each stage's batched calls.");
    metrics_.add_counter("cosyserve_stage_calls_total", "Batched calls of each stage.");
    metrics_.add_counter("cosyserve_stage_items_total",
                         "Stream-steps served by each stage (items / calls: mean batch size).");
    metrics_.add_gauge("cosyserve_kv_blocks_used", "The LM's paged KV pool: blocks in use.");
    metrics_.add_gauge("cosyserve_kv_blocks_free", "The LM's paged KV pool: free blocks.");
    metrics_.add_gauge("cosyserve_voice_cache_entries", "Voices the engine can speak with.");
    metrics_.add_counter("cosyserve_quality_detections_total",
                         "What the quality guard caught, by detector (run, loop, silence, "
                         "babble, ratio, nonfinite).");
    metrics_.add_counter(
        "cosyserve_quality_actions_total",
        "What the quality guard did, by action (mask, rollback, regenerate, end).");
    metrics_.add_counter("cosyserve_quality_guarded_requests_total",
                         "Speech requests that ran with the quality guard on.");
    metrics_.add_histogram("cosyserve_quality_longest_run",
                           "Per speech request: the longest run of one speech token.",
                           {2, 4, 6, 8, 10, 15, 20, 30, 50});
    metrics_.add_histogram("cosyserve_quality_entropy_mean",
                           "Per guarded speech request: the mean entropy (nats) the LM sampled "
                           "from.",
                           {0.5, 1, 1.5, 2, 3, 4, 5, 6, 8});
    metrics_.add_histogram("cosyserve_quality_length_ratio",
                           "Per speech request: speech tokens per text token.",
                           {1, 2, 3, 4, 5, 6, 8, 10, 15, 20});
  }

  int listen() {
    port_ = bind(acceptor_, o_.port);
    accept();
    if (o_.agent_port >= 0) {
      agent_port_ = bind(agent_acceptor_, o_.agent_port);
      accept_agent();
    }
    return port_;
  }

  void run() {
    const MemoryTrimmer trimmer(o_.trim_memory_seconds);
    std::vector<std::thread> threads;
    for (int i = 1; i < o_.threads; ++i) threads.emplace_back([this] { ioc_.run(); });
    ioc_.run();
    for (auto& t : threads) t.join();
  }

  void drain() {
    if (draining_.exchange(true)) return;
    net::post(ioc_, [self = shared_from_this()] {
      std::fprintf(stderr, "draining: new requests get 503; %lld stream(s) in flight, up to %g s\n",
                   static_cast<long long>(self->active()), self->o_.drain_timeout);
      // The listener stays open: probes must see /ready turn 503, and new speech requests
      // get 503 so that a balancer retries them elsewhere.
      self->drain_started_ = Clock::now();
      self->poll_drain();
    });
  }

  // Admission ---------------------------------------------------------------------------
  struct Waiter {
    std::shared_ptr<net::steady_timer> timer;
    bool granted = false;
  };

  // The voice a request speaks with: a voice by name, or a one-off voice from its
  // ref_audio (made on the voice worker, never here), with its instructions applied
  // (instruct2). `done` runs on `executor` with the voice, or with the ApiError to answer.
  using VoiceDone =
      std::function<void(std::shared_ptr<const VoicePrompt>, std::optional<ApiError>)>;
  template <typename Executor>
  void resolve_voice(const SpeechRequest& r, Executor executor, VoiceDone done) {
    if (!r.has_ref_audio()) {
      std::shared_ptr<const VoicePrompt> v;
      try {
        v = engine_.voice(r.voice);
      } catch (const Error& e) {
        return done(nullptr,
                    ApiError(400, "invalid_request_error", "voice", "invalid_value", e.what()));
      }
      std::optional<ApiError> err = apply_instructions(r, v);
      return done(err ? nullptr : std::move(v), std::move(err));
    }
    if (!voices_ || !voices_->unavailable().empty()) {
      return done(nullptr,
                  ApiError(400, "invalid_request_error", "ref_audio", "invalid_value",
                           cat("this server cannot make voices from recordings: ",
                               voices_ ? voices_->unavailable() : std::string("not configured"))));
    }
    auto self = shared_from_this();
    const bool queued = voices_->submit([self, r, executor, done] {
      std::shared_ptr<const VoicePrompt> v;
      std::optional<ApiError> err;
      try {
        v = self->voices_->make_one_off(r.ref_audio, r.ref_text);
        err = self->apply_instructions(r, v);
      } catch (const Error& e) {
        err = ApiError(400, "invalid_request_error", "ref_audio", "invalid_value", e.what());
      }
      net::post(executor, [done, v, err] { done(err ? nullptr : v, err); });
    });
    if (!queued) {
      done(nullptr, ApiError(429, "rate_limit_error", "ref_audio", "voice_queue_full",
                             "too many recordings are waiting to become voices; retry later"));
    }
  }

  // instruct2 in place of the voice's transcript, or cross-lingual (no LM prompt); an
  // ApiError when it cannot apply.
  std::optional<ApiError> apply_instructions(const SpeechRequest& r,
                                             std::shared_ptr<const VoicePrompt>& v) const {
    if (r.cross_lingual) {
      try {
        v = cross_lingual(v, engine_.frontend());
      } catch (const Error& e) {
        return ApiError(400, "invalid_request_error", "cross_lingual", "invalid_value", e.what());
      }
      return std::nullopt;
    }
    if (r.instructions.find_first_not_of(" \t\r\n") == std::string::npos) return std::nullopt;
    try {
      if (engine_.frontend() == nullptr) fail("the model folder has no tokenizer");
      v = instruct2(v, instruction_ids(*engine_.frontend(), r.instructions));
    } catch (const Error& e) {
      return ApiError(400, "invalid_request_error", "instructions", "invalid_value", e.what());
    }
    return std::nullopt;
  }

  // Runs `then(true)` once a stream slot is held, or `then(false)` when the queue is full
  // or the wait timed out; always on `executor`.
  template <typename Executor>
  void acquire(Executor executor, std::function<void(bool)> then) {
    std::shared_ptr<Waiter> w;
    {
      std::lock_guard lock(mutex_);
      if (active_ < o_.max_streams) {
        ++active_;
        update_gauges_locked();
        net::post(executor, [then] { then(true); });
        return;
      }
      if (static_cast<int64_t>(waiting_.size()) >= o_.max_queue) {
        net::post(executor, [then] { then(false); });
        return;
      }
      w = std::make_shared<Waiter>();
      w->timer = std::make_shared<net::steady_timer>(executor);
      w->timer->expires_after(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(o_.queue_timeout)));
      waiting_.push_back(w);
      update_gauges_locked();
    }
    w->timer->async_wait([this, w, then](const beast::error_code&) {
      bool granted;
      {
        std::lock_guard lock(mutex_);
        granted = w->granted;
        if (!granted) {  // timed out: leave the queue
          std::erase(waiting_, w);
          update_gauges_locked();
        }
      }
      then(granted);
    });
  }

  // A slot now, or false (no waiting: a WebSocket utterance is told to retry instead).
  bool try_acquire() {
    std::lock_guard lock(mutex_);
    if (active_ >= o_.max_streams) return false;
    ++active_;
    update_gauges_locked();
    return true;
  }

  void release() {
    std::lock_guard lock(mutex_);
    --active_;
    while (!waiting_.empty() && active_ < o_.max_streams) {
      auto w = waiting_.front();
      waiting_.pop_front();
      w->granted = true;
      ++active_;
      w->timer->cancel();  // its handler runs on its own session's strand
    }
    update_gauges_locked();
  }

  int64_t active() const {
    std::lock_guard lock(mutex_);
    return active_;
  }

  // A speech response from its start until its connection is gone. A stream frees its slot
  // when it ends, before its last bytes are written; drain waits for these too, so that no
  // response is cut off when the process exits.
  std::shared_ptr<void> hold_response() {
    ++responses_;
    return {nullptr, [self = shared_from_this()](void*) { --self->responses_; }};
  }
  int64_t responses() const { return responses_.load(); }

  void track(const std::shared_ptr<SpeechJob>& job) {
    std::lock_guard lock(mutex_);
    std::erase_if(jobs_, [](const auto& w) { return w.expired(); });
    jobs_.push_back(job);
  }

  // Observability -----------------------------------------------------------------------
  void count_request(const std::string& endpoint, int status) {
    metrics_.increment("cosyserve_requests_total",
                       {{"endpoint", endpoint}, {"status", std::to_string(status)}});
  }

  std::string render_metrics() {
    const EngineStats s = engine_.stats();
    for (const auto& [name, st] :
         {std::pair{"llm", &s.llm}, std::pair{"flow", &s.flow}, std::pair{"hift", &s.hift}}) {
      metrics_.increment("cosyserve_stage_seconds_total", {{"stage", name}}, 0);
      set_counter("cosyserve_stage_seconds_total", name, st->seconds);
      set_counter("cosyserve_stage_calls_total", name, double(st->calls));
      set_counter("cosyserve_stage_items_total", name, double(st->items));
    }
    metrics_.set("cosyserve_kv_blocks_used", double(s.kv_blocks_total - s.kv_blocks_free));
    metrics_.set("cosyserve_kv_blocks_free", double(s.kv_blocks_free));
    metrics_.set("cosyserve_voice_cache_entries", double(engine_.voice_ids().size()));
    return metrics_.render();
  }

  // The engine's totals are counters already: publish their current value.
  void set_counter(const std::string& name, const std::string& stage, double total) {
    std::lock_guard lock(stage_mutex_);
    double& last = stage_last_[name + "/" + stage];
    metrics_.increment(name, {{"stage", stage}}, total - last);
    last = total;
  }

  // A stream's end, as a listener with no jitter buffer would have heard it.
  // A speech request's quality report (every end, failures too: a NaN is counted there).
  void note_quality(const QualityReport& q) {
    const std::pair<const char*, int64_t> detected[] = {
        {"run", q.runs},      {"loop", q.loops},  {"silence", q.silences},
        {"babble", q.babble}, {"ratio", q.ratio}, {"nonfinite", q.nonfinite}};
    for (const auto& [name, n] : detected) {
      if (n > 0)
        metrics_.increment("cosyserve_quality_detections_total", {{"detector", name}}, double(n));
    }
    const std::pair<const char*, int64_t> actions[] = {{"mask", q.masked},
                                                       {"rollback", q.rollbacks},
                                                       {"regenerate", q.regenerations},
                                                       {"end", q.ended}};
    for (const auto& [name, n] : actions) {
      if (n > 0)
        metrics_.increment("cosyserve_quality_actions_total", {{"action", name}}, double(n));
    }
    if (q.tokens == 0) return;
    metrics_.observe("cosyserve_quality_longest_run", double(q.longest_run));
    metrics_.observe("cosyserve_quality_length_ratio", q.length_ratio());
    if (q.enabled) {
      metrics_.increment("cosyserve_quality_guarded_requests_total");
      metrics_.observe("cosyserve_quality_entropy_mean", q.entropy_mean());
    }
  }

  void note_playback(const Playback& p) {
    metrics_.increment("cosyserve_stalls_total", {}, double(p.stalls));
    metrics_.increment("cosyserve_stall_seconds_total", {}, p.stall_s);
  }

  // Audio handed to a client (`first`: its stream's first): into the stream's playback, and
  // into GET /load's last minute as it happens.
  void note_audio(StreamPlayback& playback, int64_t samples, bool first, double ttfa_s) {
    const double seconds = double(samples) / engine_.sample_rate();
    if (first && ttfa_s >= 0) activity_.first_audio(ttfa_s);
    activity_.audio(seconds);
    playback.sent(seconds);
  }

  // GET /load: what a balancer (or the playground) needs to place the next stream.
  // free_capacity is the share of stream slots free, 0 while requests queue or the server
  // drains.
  struct Occupancy {
    int64_t active = 0, waiting = 0, free_capacity = 0;
    bool draining = false;
  };
  Occupancy occupancy() const {
    Occupancy o;
    {
      std::lock_guard lock(mutex_);
      o.active = active_;
      o.waiting = static_cast<int64_t>(waiting_.size());
    }
    o.draining = draining_;
    if (!o.draining && o.waiting == 0) {
      o.free_capacity = std::max<int64_t>(0, o_.max_streams - o.active) * 100 / o_.max_streams;
    }
    return o;
  }

  Json load_json() const {
    const auto [active, waiting, free_capacity, draining] = occupancy();
    const RecentActivity::Summary recent = activity_.summary();
    const auto or_null = [](double v) { return v < 0 ? Json(nullptr) : Json(v); };
    return {{"streams_active", active},
            {"streams_queued", waiting},
            {"max_streams", o_.max_streams},
            {"max_queue", o_.max_queue},
            {"draining", draining},
            {"free_capacity", free_capacity},
            {"window_s", recent.window_s},
            {"first_audios", recent.first_audios},
            {"ttfa_p50_s", or_null(recent.ttfa_p50_s)},
            {"ttfa_p99_s", or_null(recent.ttfa_p99_s)},
            {"audio_s", recent.audio_s},
            {"xrt", recent.xrt}};
  }

  // HAProxy's agent-check reads one line per connection: the weight to give this instance
  // as a share of its configured one, so that a loaded instance gets fewer new streams
  // (leastconn divides by the weight). Never below 1 %: with every instance full, new
  // streams still spread and queue rather than find no server. "drain" while draining.
  std::string agent_reply() const {
    const Occupancy o = occupancy();
    if (o.draining) return "drain\n";
    return "ready up " + std::to_string(std::max<int64_t>(1, o.free_capacity)) + "%\n";
  }

  void access_log(const Json& fields) {
    if (o_.access_log == "off") return;
    std::string line;
    if (o_.access_log == "json") {
      line = fields.dump();
    } else {
      for (const auto& [k, v] : fields.items()) {
        line += (line.empty() ? "" : " ") + k + "=" + (v.is_string() ? Json(v).dump() : v.dump());
      }
    }
    std::lock_guard lock(log_mutex_);
    std::fprintf(stderr, "%s\n", line.c_str());
  }

  Engine& engine_;
  std::shared_ptr<VoiceService> voices_;  // null: no voices from recordings
  ServerOptions o_;
  Metrics metrics_;
  RecentActivity activity_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  tcp::acceptor agent_acceptor_{ioc_};
  int port_ = 0;
  int agent_port_ = -1;  // -1: no agent-check port
  std::atomic<bool> draining_{false};
  std::atomic<uint64_t> next_id_{1};

 private:
  int bind(tcp::acceptor& acceptor, int port) {
    const tcp::endpoint at(net::ip::make_address(o_.host), static_cast<unsigned short>(port));
    acceptor.open(at.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(at);
    acceptor.listen(net::socket_base::max_listen_connections);
    return acceptor.local_endpoint().port();
  }
  void accept();
  void accept_agent();
  void poll_drain();

  void update_gauges_locked() {
    metrics_.set("cosyserve_streams_running", double(active_));
    metrics_.set("cosyserve_streams_waiting", double(waiting_.size()));
  }

  mutable std::mutex mutex_;
  int64_t active_ = 0;
  std::atomic<int64_t> responses_{0};
  std::deque<std::shared_ptr<Waiter>> waiting_;
  std::vector<std::weak_ptr<SpeechJob>> jobs_;
  Clock::time_point drain_started_;
  bool drain_cancelled_ = false;
  std::mutex stage_mutex_;
  std::map<std::string, double> stage_last_;
  std::mutex log_mutex_;
};

}  // namespace cosy::server
