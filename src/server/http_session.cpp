#include "server/http_session.h"

#include <openssl/evp.h>

#include <boost/beast/websocket.hpp>
#include <deque>
#include <optional>

#include "server/api_error.h"
#include "server/audio_encoder.h"
#include "server/base64.h"
#include "server/form_data.h"
#include "server/server_state.h"
#include "server/speech_request.h"
#include "server/static_assets.h"
#include "server/ws_session.h"

namespace cosy::server {
namespace {

std::string sse_event(const Json& j) { return "data: " + j.dump() + "\n\n"; }

bool is_health_path(std::string_view p) {
  return p == "/health" || p == "/ready" || p == "/v2/health/live" || p == "/v2/health/ready";
}

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, std::shared_ptr<ServerState> server)
      : stream_(std::move(socket)), server_(std::move(server)) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  using Response = http::response<http::string_body>;

  const ServerOptions& o() const { return server_->o_; }

  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(o().max_header_bytes));
    parser_->body_limit(static_cast<uint64_t>(o().max_body_bytes));
    stream_.expires_after(std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(o().request_timeout)));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
        ec == net::error::operation_aborted) {
      return close();  // the client finished, or sent nothing in time
    }
    started_ = Clock::now();
    playback_ = StreamPlayback(started_);
    id_ = server_->next_id_++;
    if (ec == http::error::body_limit) {
      return send_error(ApiError(413, "invalid_request_error", "", "body_too_large",
                                 cat("the request body exceeds ", o().max_body_bytes, " bytes")),
                        "other", false);
    }
    if (ec == http::error::header_limit) {
      return send_error(
          ApiError(431, "invalid_request_error", "", "header_too_large",
                   cat("the request header exceeds ", o().max_header_bytes, " bytes")),
          "other", false);
    }
    if (ec) {
      return send_error(ApiError(400, "invalid_request_error", "", "malformed_request",
                                 cat("malformed HTTP request: ", ec.message())),
                        "other", false);
    }
    req_ = parser_->release();
    handle();
  }

  void handle() {
    const std::string_view path = req_.target();
    const bool get = req_.method() == http::verb::get;
    if (const StaticAsset* asset = find_static_asset(path.substr(0, path.find('?')))) {
      return serve_asset(*asset);
    }
    if (is_health_path(path)) {
      if (!get) return method_not_allowed("health");
      const bool live = path == "/health" || path == "/v2/health/live";
      const bool ok = live || !server_->draining_;
      Response r{ok ? http::status::ok : http::status::service_unavailable, req_.version()};
      r.set(http::field::content_type, "application/json");
      r.body() = Json{{"status", ok ? (live ? "ok" : "ready") : "draining"}}.dump();
      return send(std::move(r), "health", req_.keep_alive());
    }
    if (!authorized()) {
      Response r = error_response(ApiError(401, "invalid_request_error", "", "invalid_api_key",
                                           "missing or wrong API key (Authorization: Bearer KEY)"));
      r.set(http::field::www_authenticate, "Bearer");
      return send(std::move(r), "auth", false);
    }
    if (path == "/v1/audio/speech") {
      if (req_.method() != http::verb::post) return method_not_allowed("speech");
      return speech();
    }
    if (path == "/v1/audio/speech/stream") {
      if (!beast::websocket::is_upgrade(req_)) {
        return send_error(ApiError(426, "invalid_request_error", "", "upgrade_required",
                                   "this endpoint speaks WebSocket"),
                          "speech_stream", false);
      }
      if (server_->draining_) {
        return send_error(ApiError(503, "server_error", "", "draining",
                                   "the server is shutting down; retry on another instance"),
                          "speech_stream", false);
      }
      stream_.expires_never();
      return start_ws_session(std::move(stream_), std::move(req_), server_);
    }
    if (path == "/v1/audio/voices" && req_.method() == http::verb::post) return add_voice();
    if (path.starts_with("/v1/audio/voices/")) {
      if (req_.method() != http::verb::delete_) return method_not_allowed("voices");
      return delete_voice(path.substr(std::string_view("/v1/audio/voices/").size()));
    }
    if (path == "/v1/models" || path == "/v1/audio/voices" || path == "/metrics" ||
        path == "/load") {
      if (!get) return method_not_allowed("other");
      Response r{http::status::ok, req_.version()};
      if (path == "/load") {
        r.set(http::field::content_type, "application/json");
        r.set(http::field::cache_control, "no-store");
        r.body() = server_->load_json().dump();
        return send(std::move(r), "load", req_.keep_alive());
      }
      if (path == "/metrics") {
        r.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        r.body() = server_->render_metrics();
        return send(std::move(r), "metrics", req_.keep_alive());
      }
      r.set(http::field::content_type, "application/json");
      if (path == "/v1/models") {
        r.body() =
            Json{{"object", "list"},
                 {"data",
                  Json::array(
                      {{{"id", o().model_name}, {"object", "model"}, {"owned_by", "cosyserve"}}})}}
                .dump();
        return send(std::move(r), "models", req_.keep_alive());
      }
      Json voices = Json::array();
      for (const auto& id : server_->engine_.voice_ids()) {
        const bool custom = server_->voices_ && server_->voices_->is_stored(id);
        voices.push_back({{"id", id}, {"name", id}, {"custom", custom}});
      }
      r.body() = Json{{"voices", voices}}.dump();
      return send(std::move(r), "voices", req_.keep_alive());
    }
    send_error(ApiError(404, "invalid_request_error", "", "not_found",
                        cat("no route ", std::string(path))),
               "other", req_.keep_alive());
  }

  // The playground's files: revalidated on every load (an upgraded server's page is never
  // stale), a 304 when unchanged.
  void serve_asset(const StaticAsset& asset) {
    if (req_.method() != http::verb::get) return method_not_allowed("playground");
    const auto inm = req_.find(http::field::if_none_match);
    const bool unchanged = inm != req_.end() && inm->value() == asset.etag;
    Response r{unchanged ? http::status::not_modified : http::status::ok, req_.version()};
    r.set(http::field::etag, asset.etag);
    r.set(http::field::cache_control, "no-cache");
    r.set(http::field::content_type, asset.content_type);
    r.set("X-Content-Type-Options", "nosniff");
    r.set("Referrer-Policy", "no-referrer");
    // The page talks only to this server, and runs only its own scripts.
    r.set("Content-Security-Policy",
          "default-src 'self'; connect-src 'self'; media-src 'self' blob:; img-src 'self' data:; "
          "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    if (!unchanged) r.body() = std::string(asset.bytes);
    send(std::move(r), "playground", req_.keep_alive());
  }

  // The voice registry -----------------------------------------------------------------
  // POST /v1/audio/voices: multipart/form-data with audio_sample (the recording), name,
  // ref_text (what it says) and consent; the voice is made on the voice worker.
  void add_voice() {
    if (server_->draining_) {
      return send_error(
          ApiError(503, "server_error", "", "draining", "the server is shutting down"), "voices",
          false);
    }
    if (!server_->voices_ || !server_->voices_->unavailable().empty()) {
      return send_error(
          ApiError(400, "invalid_request_error", "audio_sample", "voices_unavailable",
                   cat("this server cannot make voices from recordings: ",
                       server_->voices_ ? server_->voices_->unavailable() : "not configured")),
          "voices", false);
    }
    const auto ct = req_.find(http::field::content_type);
    if (ct == req_.end() || !std::string_view(ct->value()).starts_with("multipart/form-data")) {
      return send_error(
          ApiError(415, "invalid_request_error", "", "unsupported_media_type",
                   "POST /v1/audio/voices takes multipart/form-data (audio_sample, name, "
                   "ref_text, consent)"),
          "voices", false);
    }
    std::string name, ref_text, consent, audio;
    try {
      bool have_audio = false;
      for (FormPart& p : parse_form_data(ct->value(), req_.body())) {
        if (p.name == "audio_sample") {
          audio = std::move(p.data);
          have_audio = true;
        } else if (p.name == "name") {
          name = p.data;
        } else if (p.name == "ref_text") {
          ref_text = p.data;
        } else if (p.name == "consent") {
          consent = p.data;
        } else {
          invalid(p.name, "unknown form field '", p.name, "'");
        }
      }
      if (!have_audio || audio.empty())
        invalid("audio_sample", "'audio_sample' (the recording) is required");
      if (name.empty()) invalid("name", "'name' is required");
      if (!is_valid_voice_id(name))
        invalid("name", "'name' must be 1 to 64 letters, digits, '_', '-' or '.'");
      if (ref_text.find_first_not_of(" \t\r\n") == std::string::npos) {
        invalid("ref_text", "'ref_text' (what the recording says) is required");
      }
      if (consent.find_first_not_of(" \t\r\n") == std::string::npos) {
        invalid("consent",
                "'consent' is required: a reference to the speaker's consent to be cloned");
      }
      if (server_->voices_->is_stored(name) || engine_has_voice(name)) {
        throw ApiError(
            409, "invalid_request_error", "name", "voice_exists",
            cat("a voice named '", name, "' exists (DELETE /v1/audio/voices/", name, " first)"));
      }
    } catch (const ApiError& e) {
      return send_error(e, "voices", false);
    }
    stream_.expires_never();
    auto self = shared_from_this();
    auto voices = server_->voices_;
    auto executor = stream_.get_executor();  // taken here: the worker must not touch stream_
    const bool queued =
        voices->submit([self, voices, executor, name, ref_text, audio = std::move(audio)] {
          std::optional<ApiError> error;
          try {
            voices->store_voice(voices->make_voice(name, audio, ref_text));
          } catch (const Error& e) {
            error =
                ApiError(400, "invalid_request_error", "audio_sample", "invalid_value", e.what());
          }
          net::post(executor, [self, name, error] {
            if (error) return self->send_error(*error, "voices", false);
            Response r{http::status::created, self->req_.version()};
            r.set(http::field::content_type, "application/json");
            r.body() = Json{{"id", name}, {"name", name}, {"object", "audio.voice"}}.dump();
            self->send(std::move(r), "voices", false);
          });
        });
    if (!queued) refuse_busy("too many recordings are waiting to become voices; retry later");
  }

  bool engine_has_voice(const std::string& name) const {
    for (const auto& id : server_->engine_.voice_ids()) {
      if (id == name) return true;
    }
    return false;
  }

  void delete_voice(std::string_view name) {
    const std::string id(name);
    bool deleted = false;
    try {
      deleted = server_->voices_ && server_->voices_->delete_voice(id);
    } catch (const Error& e) {
      return send_error(ApiError(500, "server_error", "", "store_failed", e.what()), "voices",
                        false);
    }
    if (!deleted) {
      return send_error(ApiError(404, "invalid_request_error", "name", "voice_not_found",
                                 cat("no registered voice '", id, "'")),
                        "voices", req_.keep_alive());
    }
    Response r{http::status::ok, req_.version()};
    r.set(http::field::content_type, "application/json");
    r.body() = Json{{"id", id}, {"object", "audio.voice.deleted"}, {"deleted", true}}.dump();
    send(std::move(r), "voices", req_.keep_alive());
  }

  bool authorized() const {
    if (o().api_keys.empty()) return true;
    const auto known = [&](std::string_view key) {
      bool ok = false;
      for (const auto& k : o().api_keys) ok = ok || key == k;
      return ok;
    };
    const auto it = req_.find(http::field::authorization);
    if (it != req_.end()) {
      const std::string_view v = it->value();
      return v.starts_with("Bearer ") && known(v.substr(7));
    }
    // A browser's WebSocket cannot set headers: it offers the key as a subprotocol.
    const std::string key = ws_subprotocol_api_key(req_);
    return !key.empty() && known(key);
  }

  void method_not_allowed(const char* endpoint) {
    send_error(ApiError(405, "invalid_request_error", "", "method_not_allowed",
                        cat("method ", std::string(req_.method_string()), " is not allowed on ",
                            std::string(req_.target()))),
               endpoint, false);
  }

  // The speech endpoint --------------------------------------------------------------------
  void speech() {
    if (server_->draining_) {
      return send_error(ApiError(503, "server_error", "", "draining",
                                 "the server is shutting down; retry on another instance"),
                        "speech", false);
    }
    try {
      SpeechLimits limits;
      limits.models = {o().model_name};
      limits.max_input_chars = o().max_input_chars;
      speech_ = parse_speech_request(req_.body(), limits);
    } catch (const ApiError& e) {
      return send_error(e, "speech", false);
    }
    stream_.expires_never();  // a voice from ref_audio may take a moment to make
    server_->resolve_voice(speech_, stream_.get_executor(),
                           [self = shared_from_this()](std::shared_ptr<const VoicePrompt> voice,
                                                       std::optional<ApiError> error) {
                             if (error) {
                               if (error->status() == 429) return self->refuse_busy(error->what());
                               return self->send_error(*error, "speech", false);
                             }
                             self->voice_ = std::move(voice);
                             self->admit();
                           });
  }

  void admit() {
    server_->acquire(stream_.get_executor(), [self = shared_from_this()](bool granted) {
      if (!granted) return self->refuse_busy();
      self->holds_slot_ = true;
      self->start_speech();
    });
  }

  void refuse_busy(const std::string& why =
                       "every stream is busy and the wait queue is full or "
                       "timed out; retry later") {
    Response r = error_response(ApiError(429, "rate_limit_error", "", "server_busy", why));
    r.set(http::field::retry_after, "1");
    send(std::move(r), "speech", false);
  }

  void start_speech() {
    // The connection lives until its stream has ended and been accounted for, even if the
    // client is gone and no socket operation holds it any more.
    keep_alive_ = shared_from_this();
    response_ = server_->hold_response();  // until this session is gone: drain waits for it
    const int rate = server_->engine_.sample_rate();
    job_ =
        make_session_job(static_cast<int64_t>(o().client_buffer_seconds * rate), weak_from_this(),
                         stream_.get_executor(), [](auto& self) { self.pump(); });
    encoder_ = StreamEncoder::create(speech_.format, rate);
    try {
      const StreamOptions so =
          speech_stream_options(speech_, voice_, StreamInput::Text, *job_, o().guard);
      guard_on_ = so.guard.enabled;
      auto stream = server_->engine_.open(so, job_->audio_callback());
      job_->attach(stream);
      server_->track(job_);
      try {
        stream->push_text(speech_.input);
        stream->finish_input();
      } catch (const Error& e) {
        stream->cancel();
        invalid("input", e.what());
      }
    } catch (const ApiError& e) {
      return finish_with_error(e);
    } catch (const std::exception& e) {
      return finish_with_error(ApiError(503, "server_error", "", "engine_unavailable", e.what()));
    }
    // From here the socket is written only by pump(); watch it for a client that leaves.
    stream_.expires_never();
    watch();
  }

  // A read that completes only when the client closes or resets the connection.
  void watch() {
    stream_.socket().async_read_some(
        net::buffer(watch_buffer_), [self = shared_from_this()](beast::error_code ec, size_t) {
          if (!ec) return self->watch();  // pipelined bytes: ignored, this response closes
          if (!self->done_) {
            self->client_gone_ = true;
            if (self->job_) self->job_->cancel();
          }
        });
  }

  void pump() {
    if (done_ || job_ == nullptr) return;
    SpeechJob::Taken t = job_->take();
    try {
      for (const auto& chunk : t.chunks) {
        if (chunk.empty()) continue;
        const std::string bytes = encoder_->encode(chunk);
        audio_samples_ += static_cast<int64_t>(chunk.size());
        server_->note_audio(playback_, static_cast<int64_t>(chunk.size()), !header_sent_,
                            job_->seconds_to_first_audio());
        emit(bytes);
      }
    } catch (const std::exception& e) {
      job_->cancel();
      return end_stream(cat("encoding failed: ", e.what()), 500);
    }
    if (!t.result) return;
    server_->note_quality(t.result->quality);
    if (t.too_slow) {
      return end_stream(cat("the client read too slowly: more than ", o().client_buffer_seconds,
                            " s of audio were waiting"),
                        503);
    }
    if (client_gone_) return end_stream("the client disconnected", 499);
    if (t.result->status != StreamStatus::Done) {
      const bool drained = server_->draining_;
      return end_stream(drained ? "the server shut down before the stream finished"
                                : cat("synthesis failed: ", t.result->error),
                        drained ? 503 : 500);
    }
    try {
      emit(encoder_->finish());
    } catch (const std::exception& e) {
      return end_stream(cat("encoding failed: ", e.what()), 500);
    }
    if (!header_sent_) send_header();  // no audio at all: an empty, complete stream
    const double audio_s = double(audio_samples_) / server_->engine_.sample_rate();
    const Json quality = t.result->quality.to_json();
    if (speech_.stream_format == StreamFormat::Sse) {
      queue_data(sse_event({{"type", "speech.audio.done"},
                            {"usage",
                             {{"input_characters", count_code_points(speech_.input)},
                              {"output_audio_seconds", audio_s}}},
                            {"quality", quality}}));
    }
    // The report as a trailer too (declared in the header), for clients of raw audio.
    trailer_.set("X-Quality-Report", quality.dump());
    last_chunk_.emplace(trailer_);
    queue(Out::Last);
    complete(200, "");
  }

  // Encoded audio out: raw bytes or an SSE delta. The header goes with the first audio.
  void emit(const std::string& bytes) {
    if (bytes.empty()) return;
    if (!header_sent_) send_header();
    if (speech_.stream_format == StreamFormat::Sse) {
      queue_data(sse_event({{"type", "speech.audio.delta"}, {"audio", base64_encode(bytes)}}));
    } else {
      queue_data(bytes);
    }
  }

  void send_header() {
    header_sent_ = true;
    header_ = std::make_unique<http::response<http::empty_body>>(http::status::ok, req_.version());
    header_->set(http::field::content_type, speech_.stream_format == StreamFormat::Sse
                                                ? "text/event-stream"
                                                : StreamEncoder::content_type(speech_.format));
    header_->set(http::field::cache_control, "no-cache");
    header_->set("X-Request-Id", std::to_string(id_));
    header_->set("X-Quality-Guard", guard_on_ ? "on" : "off");
    header_->set(http::field::trailer, "X-Quality-Report");
    header_->keep_alive(false);
    header_->chunked(true);
    serializer_ = std::make_unique<http::response_serializer<http::empty_body>>(*header_);
    queue(Out::Header);
  }

  // The stream ends badly. Before any audio: an error response. After: SSE says so in an
  // event; raw audio stops without the final chunk, so the client sees a truncated body.
  void end_stream(const std::string& why, int status) {
    if (!header_sent_) {
      if (client_gone_) return complete(499, why), close();
      return finish_with_error(
          ApiError(status, status >= 500 ? "server_error" : "invalid_request_error", "",
                   status == 503 ? "unavailable" : "synthesis_failed", why));
    }
    if (speech_.stream_format == StreamFormat::Sse && !client_gone_) {
      queue_data(sse_event({{"type", "speech.audio.error"}, {"error", {{"message", why}}}}));
      queue(Out::Last);
    } else {
      queue(Out::Close);
    }
    complete(status, why);
  }

  void finish_with_error(const ApiError& e) {
    complete(e.status(), e.what());
    send_error(e, "", false, /*logged=*/true);
  }

  // Counts, logs and frees the stream slot once per speech request.
  void complete(int status, const std::string& error) {
    if (done_) return;
    done_ = true;
    const auto self = std::move(keep_alive_);  // released when this returns
    if (holds_slot_) {
      holds_slot_ = false;
      server_->release();
    }
    const double total = seconds_since(started_);
    const double audio_s = double(audio_samples_) / server_->engine_.sample_rate();
    const double ttfa = job_ ? job_->seconds_to_first_audio() : -1;
    const Playback heard = playback_.finish();
    server_->count_request("speech", status);
    if (status == 200) {
      if (ttfa >= 0) server_->metrics_.observe("cosyserve_time_to_first_audio_seconds", ttfa);
      if (audio_s > 0) server_->metrics_.observe("cosyserve_request_rtf", total / audio_s);
      server_->metrics_.observe("cosyserve_e2e_request_latency_seconds", total);
      server_->metrics_.increment("cosyserve_audio_seconds_total", {}, audio_s);
      server_->note_playback(heard);
    }
    Json line = {{"request_id", id_},
                 {"endpoint", "speech"},
                 {"voice", speech_.voice},
                 {"input_chars", count_code_points(speech_.input)},
                 {"audio_s", audio_s},
                 {"ttfa_s", ttfa},
                 {"rtf", audio_s > 0 ? total / audio_s : 0.0},
                 {"stalls", heard.stalls},
                 {"status", status},
                 {"seconds", total}};
    if (!error.empty()) line["error"] = error;
    server_->access_log(line);
  }

  // Writing -----------------------------------------------------------------------------
  enum class Out { Header, Data, Last, Close };
  struct Pending {
    Out kind;
    std::string data;
  };

  void queue_data(std::string data) {
    out_.push_back({Out::Data, std::move(data)});
    write_next();
  }
  void queue(Out kind) {
    out_.push_back({kind, {}});
    write_next();
  }

  void write_next() {
    if (writing_ || out_.empty()) return;
    Pending& p = out_.front();
    auto done = [self = shared_from_this()](beast::error_code ec, size_t) { self->on_written(ec); };
    writing_ = true;
    switch (p.kind) {
      case Out::Header:
        return http::async_write_header(stream_, *serializer_, std::move(done));
      case Out::Data:
        return net::async_write(stream_, http::make_chunk(net::buffer(p.data)), std::move(done));
      case Out::Last:
        // With the quality report when the stream succeeded; it lives in last_chunk_ until
        // written.
        if (last_chunk_) return net::async_write(stream_, *last_chunk_, std::move(done));
        return net::async_write(stream_, http::make_chunk_last(), std::move(done));
      case Out::Close:
        writing_ = false;
        out_.clear();
        return close();
    }
  }

  void on_written(beast::error_code ec) {
    writing_ = false;
    const Out kind = out_.front().kind;
    out_.pop_front();
    if (ec) {  // the client is gone: stop the synthesis now
      client_gone_ = true;
      if (job_) job_->cancel();
      if (!done_) complete(499, "the client disconnected");
      return close();
    }
    if (kind == Out::Last) return close();
    write_next();
  }

  // Small responses -----------------------------------------------------------------------
  Response error_response(const ApiError& e) {
    Response r{static_cast<http::status>(e.status()), req_.version()};
    r.set(http::field::content_type, "application/json");
    r.body() = e.json();
    return r;
  }

  void send_error(const ApiError& e, const std::string& endpoint, bool keep_alive,
                  bool logged = false) {
    if (!logged) {
      server_->count_request(endpoint.empty() ? "speech" : endpoint, e.status());
      server_->access_log({{"request_id", id_},
                           {"endpoint", endpoint.empty() ? "speech" : endpoint},
                           {"path", std::string(req_.target())},
                           {"status", e.status()},
                           {"error", e.what()}});
    }
    send(error_response(e), "", keep_alive, /*counted=*/true);
  }

  void send(Response r, const std::string& endpoint, bool keep_alive, bool counted = false) {
    if (!counted) server_->count_request(endpoint, static_cast<int>(r.result_int()));
    r.keep_alive(keep_alive);
    r.prepare_payload();
    auto sp = std::make_shared<Response>(std::move(r));
    stream_.expires_after(std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(o().request_timeout)));
    http::async_write(stream_, *sp, [self = shared_from_this(), sp](beast::error_code ec, size_t) {
      if (ec || !sp->keep_alive()) return self->close();
      self->read();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (job_ && !done_) job_->cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    response_.reset();  // every byte it will ever send is written: drain may end
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<ServerState> server_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> req_;
  Clock::time_point started_ = Clock::now();
  uint64_t id_ = 0;

  SpeechRequest speech_;
  std::shared_ptr<const VoicePrompt> voice_;
  std::shared_ptr<SpeechJob> job_;
  std::shared_ptr<HttpSession> keep_alive_;  // while a speech stream runs
  std::unique_ptr<StreamEncoder> encoder_;
  StreamPlayback playback_;  // from the request's arrival
  std::unique_ptr<http::response<http::empty_body>> header_;
  std::unique_ptr<http::response_serializer<http::empty_body>> serializer_;
  std::deque<Pending> out_;
  std::array<char, 256> watch_buffer_{};
  int64_t audio_samples_ = 0;
  bool holds_slot_ = false;
  bool header_sent_ = false;
  bool guard_on_ = false;
  std::shared_ptr<void> response_;  // ServerState::hold_response(), until close()
  // The final chunk with the quality report: Beast's writer refers to trailer_, so both live
  // until the write completes.
  http::fields trailer_;
  std::optional<http::chunk_last<http::fields>> last_chunk_;
  bool writing_ = false;
  bool client_gone_ = false;
  bool done_ = false;
  bool closed_ = false;
};

}  // namespace

void start_http_session(tcp::socket socket, std::shared_ptr<ServerState> server) {
  std::make_shared<HttpSession>(std::move(socket), std::move(server))->start();
}

}  // namespace cosy::server
