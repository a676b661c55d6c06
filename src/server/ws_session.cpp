#include "server/ws_session.h"

#include <algorithm>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <optional>
#include <vector>

#include "server/api_error.h"
#include "server/audio_encoder.h"
#include "server/server_state.h"
#include "server/speech_request.h"

namespace cosy::server {
namespace {

namespace websocket = beast::websocket;

enum class TextStreaming { Sentence, Token };

// Whether a sentence-ending full-width mark (。！？；) starts at text[i].
bool full_width_stop(const std::string& text, size_t i) {
  static const char* const kStops[] = {"\xE3\x80\x82", "\xEF\xBC\x81", "\xEF\xBC\x9F",
                                       "\xEF\xBC\x9B"};
  for (const char* stop : kStops) {
    if (text.compare(i, 3, stop) == 0) return true;
  }
  return false;
}

// The end of the last complete sentence in `text` (after its closing punctuation), or 0.
size_t sentence_end(const std::string& text) {
  size_t end = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.' || c == '!' || c == '?' || c == ';' || c == '\n') {
      end = i + 1;
    } else if (full_width_stop(text, i)) {
      end = i + 3;
    }
  }
  return end;
}

// The comma-separated tokens of Sec-WebSocket-Protocol, trimmed.
std::vector<std::string_view> offered_subprotocols(const http::request<http::string_body>& req) {
  std::vector<std::string_view> out;
  const auto it = req.find(http::field::sec_websocket_protocol);
  if (it == req.end()) return out;
  std::string_view v = it->value();
  while (!v.empty()) {
    const size_t comma = v.find(',');
    std::string_view token = v.substr(0, comma);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    if (!token.empty()) out.push_back(token);
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return out;
}

bool offers_subprotocol(const http::request<http::string_body>& req, std::string_view name) {
  const auto offered = offered_subprotocols(req);
  return std::find(offered.begin(), offered.end(), name) != offered.end();
}

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(beast::tcp_stream stream, std::shared_ptr<ServerState> server)
      : ws_(std::move(stream)), server_(std::move(server)) {}

  void start(http::request<http::string_body> upgrade) {
    // session.config may carry a recording (ref_audio), as large as an HTTP body may be;
    // the messages after it are text, held to max_ws_message_bytes (configured()).
    ws_.read_message_max(
        static_cast<uint64_t>(std::max(o().max_ws_message_bytes, o().max_body_bytes)));
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    // A client that offered subprotocols must get one of them back, or its browser drops
    // the connection.
    if (offers_subprotocol(upgrade, kWsSubprotocol)) {
      ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& r) {
        r.set(http::field::sec_websocket_protocol, kWsSubprotocol);
      }));
    }
    ws_.async_accept(upgrade, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->arm_idle_timer();
      self->read();
    });
  }

 private:
  const ServerOptions& o() const { return server_->o_; }

  void read() {
    ws_.async_read(
        in_, [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      // Closed, reset, or over the size limit (Beast closes with 1009).
      if (utterance_) cancel_utterance(false);
      closed_ = true;
      return;
    }
    arm_idle_timer();
    if (!ws_.got_text()) {
      return protocol_error(websocket::close_code::bad_payload, "binary_message",
                            "messages to the server are JSON text frames");
    }
    const std::string text = beast::buffers_to_string(in_.data());
    in_.consume(in_.size());
    const Json m = Json::parse(text, nullptr, false);
    if (m.is_discarded() || !m.is_object() || !m.contains("type") || !m["type"].is_string()) {
      return protocol_error(websocket::close_code::bad_payload, "invalid_json",
                            "each message must be a JSON object with a string 'type'");
    }
    const std::string type = m["type"];
    try {
      handle(type, m);
    } catch (const ApiError& e) {
      return protocol_error(websocket::close_code::policy_error, e.code(), e.what());
    }
    if (!closing_ && !awaiting_voice_) read();
  }

  void handle(const std::string& type, const Json& m) {
    if (type == "session.config") {
      if (configured_) invalid("type", "session.config may come only once, first");
      configure(m);
      return;
    }
    if (!configured_) invalid("type", "the first message must be session.config, not ", type);
    if (type == "input.text") {
      if (!m.contains("text") || !m["text"].is_string())
        invalid("text", "input.text needs a string 'text'");
      for (const auto& [k, v] : m.items()) {
        if (k != "type" && k != "text") invalid(k, "unknown field '", k, "' in input.text");
      }
      input_text(m["text"].get<std::string>());
    } else if (type == "input.flush") {
      flush_text();
    } else if (type == "input.done") {
      if (!utterance_ && pending_text_.empty())
        invalid("type", "input.done without any input.text");
      flush_text();
      if (utterance_ && utterance_->finished_input) {
        queued_done_ = true;  // ends the next utterance, once the current one is spoken
      } else if (utterance_) {
        finish_utterance_input();
      }
    } else if (type == "cancel") {
      pending_text_.clear();
      queued_text_.clear();
      queued_done_ = false;
      if (utterance_) cancel_utterance(true);
    } else if (type == "session.close") {
      if (utterance_) cancel_utterance(false);
      send_json({{"type", "session.done"}});
      close(websocket::close_code::normal);
    } else {
      invalid("type", "unknown message type '", type, "'");
    }
  }

  void configure(const Json& m) {
    Json fields = m;
    fields.erase("type");
    if (fields.contains("text_streaming")) {
      const Json& t = fields["text_streaming"];
      if (t == "token") {
        streaming_ = TextStreaming::Token;
      } else if (t == "sentence") {
        streaming_ = TextStreaming::Sentence;
      } else {
        invalid("text_streaming", "text_streaming must be 'sentence' or 'token'");
      }
      fields.erase("text_streaming");
    }
    if (!fields.contains("response_format")) fields["response_format"] = "pcm";
    fields["input"] = "-";  // the text comes in input.text messages
    SpeechLimits limits;
    limits.models = {o().model_name};
    limits.max_input_chars = o().max_input_chars;
    config_ = parse_speech_request(fields.dump(), limits);
    merge_quality_guard(o().guard, config_.quality_guard);  // over this server's default: a 400
    if (config_.stream_format == StreamFormat::Sse) invalid("stream_format", "not for a WebSocket");
    if (!config_.has_ref_audio()) {
      std::optional<ApiError> error;
      server_->resolve_voice(config_, ws_.get_executor(),
                             [&](std::shared_ptr<const VoicePrompt> v, std::optional<ApiError> e) {
                               voice_ = std::move(v);
                               error = std::move(e);
                             });
      if (error) throw *error;
      configured();
      return;
    }
    // A voice from the recording: made on the voice worker. Messages wait unread meanwhile.
    awaiting_voice_ = true;
    server_->resolve_voice(config_, ws_.get_executor(),
                           [self = shared_from_this()](std::shared_ptr<const VoicePrompt> v,
                                                       std::optional<ApiError> error) {
                             self->awaiting_voice_ = false;
                             if (self->closed_ || self->closing_) return;
                             if (error) {
                               return self->protocol_error(
                                   error->status() == 429 ? websocket::close_code::try_again_later
                                                          : websocket::close_code::policy_error,
                                   error->code(), error->what());
                             }
                             self->voice_ = std::move(v);
                             self->configured();
                             self->read();
                           });
  }

  void configured() {
    configured_ = true;
    ws_.read_message_max(static_cast<uint64_t>(o().max_ws_message_bytes));
  }

  void input_text(const std::string& text) {
    if (count_code_points(text) + chars_ > o().max_input_chars) {
      throw ApiError(413, "invalid_request_error", "text", "input_too_long",
                     cat("the utterance's text exceeds ", o().max_input_chars, " characters"));
    }
    chars_ += count_code_points(text);
    if (streaming_ == TextStreaming::Token) {
      pending_text_ += text;
      return flush_text();
    }
    pending_text_ += text;
    const size_t end = sentence_end(pending_text_);
    if (end == 0) return;
    const std::string sentence = pending_text_.substr(0, end);
    pending_text_.erase(0, end);
    speak(sentence);
  }

  void flush_text() {
    if (pending_text_.empty()) return;
    std::string text;
    text.swap(pending_text_);
    speak(text);
  }

  void finish_utterance_input() {
    try {
      utterance_->stream->finish_input();
    } catch (const Error& e) {
      invalid("text", e.what());
    }
    utterance_->finished_input = true;
  }

  // Text into the utterance's engine stream; the first text of an utterance opens it. Text
  // for the next utterance waits while the current one finishes speaking.
  void speak(const std::string& text) {
    if (utterance_ && utterance_->finished_input) {
      queued_text_ += text;
      return;
    }
    if (!utterance_) {
      if (server_->draining_) {
        return close(websocket::close_code::try_again_later, "draining",
                     "the server is shutting down; reconnect to another instance");
      }
      if (!server_->try_acquire()) {
        return close(websocket::close_code::try_again_later, "server_busy",
                     "every stream is busy; retry later");
      }
      open_utterance();
      if (!utterance_) return;
    }
    try {
      utterance_->stream->push_text(text);
    } catch (const Error& e) {
      invalid("text", e.what());
    }
  }

  void open_utterance() {
    auto u = std::make_unique<Utterance>();
    const int rate = server_->engine_.sample_rate();
    u->job =
        make_session_job(static_cast<int64_t>(o().client_buffer_seconds * rate), weak_from_this(),
                         ws_.get_executor(), [](auto& self) { self.pump(); });
    u->encoder = StreamEncoder::create(config_.format, rate);
    u->started = Clock::now();
    u->playback = StreamPlayback(u->started);
    u->id = server_->next_id_++;
    const StreamOptions so =
        speech_stream_options(config_, voice_, StreamInput::IncrementalText, *u->job, o().guard);
    try {
      u->stream = server_->engine_.open(so, u->job->audio_callback());
    } catch (const std::exception& e) {
      server_->release();
      return close(websocket::close_code::try_again_later, "engine_unavailable", e.what());
    }
    u->job->attach(u->stream);
    server_->track(u->job);
    utterance_ = std::move(u);
    keep_alive_ = shared_from_this();
  }

  void pump() {
    if (!utterance_) return;
    Utterance& u = *utterance_;
    SpeechJob::Taken t = u.job->take();
    for (const auto& chunk : t.chunks) {
      if (chunk.empty() || u.cancelled) continue;
      server_->note_audio(u.playback, static_cast<int64_t>(chunk.size()), !u.started_audio,
                          u.job->seconds_to_first_audio());
      if (!u.started_audio) {
        u.started_audio = true;
        send_json({{"type", "audio.start"},
                   {"format", audio_encoding_name(config_.format)},
                   {"sample_rate", server_->engine_.sample_rate()}});
      }
      u.samples += static_cast<int64_t>(chunk.size());
      send_binary(u.encoder->encode(chunk));
    }
    if (!t.result) return;
    server_->note_quality(t.result->quality);
    const double audio_s = double(u.samples) / server_->engine_.sample_rate();
    int status = 200;
    std::string error;
    if (u.cancelled) {
      status = 499;
      error = "cancelled by the client";
    } else if (t.too_slow) {
      status = 503;
      error = "the client read too slowly";
    } else if (t.result->status != StreamStatus::Done) {
      status = server_->draining_ ? 503 : 500;
      error = server_->draining_ ? "the server shut down before the utterance finished"
                                 : "synthesis failed: " + t.result->error;
    }
    if (status == 200) {
      if (!u.started_audio) {
        send_json({{"type", "audio.start"},
                   {"format", audio_encoding_name(config_.format)},
                   {"sample_rate", server_->engine_.sample_rate()}});
      }
      send_binary(u.encoder->finish());
      send_json({{"type", "audio.done"},
                 {"usage", {{"input_characters", chars_}, {"output_audio_seconds", audio_s}}},
                 {"quality", t.result->quality.to_json()}});
    } else if (u.user_cancel) {
      send_json({{"type", "audio.done"},
                 {"cancelled", true},
                 {"usage", {{"input_characters", chars_}, {"output_audio_seconds", audio_s}}}});
    } else if (!closed_) {
      send_json({{"type", "error"},
                 {"code", status == 503 ? "unavailable" : "synthesis_failed"},
                 {"message", error}});
    }
    const Playback heard = u.playback.finish();
    server_->count_request("speech_stream", status);
    server_->access_log({{"request_id", u.id},
                         {"endpoint", "speech_stream"},
                         {"voice", config_.voice},
                         {"input_chars", chars_},
                         {"audio_s", audio_s},
                         {"ttfa_s", u.job->seconds_to_first_audio()},
                         {"stalls", heard.stalls},
                         {"status", status},
                         {"seconds", seconds_since(u.started)},
                         {"error", error}});
    if (status == 200 && u.job->seconds_to_first_audio() >= 0) {
      server_->metrics_.observe("cosyserve_time_to_first_audio_seconds",
                                u.job->seconds_to_first_audio());
      server_->metrics_.increment("cosyserve_audio_seconds_total", {}, audio_s);
      server_->note_playback(heard);
    }
    server_->release();
    utterance_.reset();
    chars_ = 0;
    auto self = std::move(keep_alive_);
    // The next utterance's text, if it came meanwhile.
    if (!queued_text_.empty() && !closing_) {
      std::string text;
      text.swap(queued_text_);
      const bool done = std::exchange(queued_done_, false);
      try {
        chars_ = count_code_points(text);
        speak(text);
        if (done && utterance_) finish_utterance_input();
      } catch (const ApiError& e) {
        protocol_error(websocket::close_code::policy_error, e.code(), e.what());
      }
    }
  }

  void cancel_utterance(bool by_user) {
    utterance_->cancelled = true;
    utterance_->user_cancel = by_user;
    utterance_->job->cancel();
  }

  // Writing ---------------------------------------------------------------------------------
  struct Out {
    bool binary;
    std::string data;
  };
  void send_json(const Json& j) { queue({false, j.dump()}); }
  void send_binary(std::string bytes) {
    if (!bytes.empty()) queue({true, std::move(bytes)});
  }
  void queue(Out out) {
    if (closed_) return;
    out_.push_back(std::move(out));
    write_next();
  }
  void write_next() {
    if (writing_ || out_.empty() || closed_) return;
    writing_ = true;
    ws_.binary(out_.front().binary);
    ws_.async_write(net::buffer(out_.front().data),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->writing_ = false;
                      self->out_.pop_front();
                      if (ec) {
                        self->closed_ = true;
                        if (self->utterance_) self->cancel_utterance(false);
                        return;
                      }
                      if (self->out_.empty() && self->closing_) return self->do_close();
                      self->write_next();
                    });
  }

  void protocol_error(websocket::close_code code, const std::string& err, const std::string& why) {
    if (utterance_) cancel_utterance(false);
    close(code, err, why);
  }

  // An error frame (when there is a reason), then the close handshake with `code`.
  void close(websocket::close_code code, const std::string& err = "", const std::string& why = "") {
    if (closing_) return;
    if (!err.empty()) {
      send_json({{"type", "error"}, {"code", err}, {"message", why}});
      server_->count_request("speech_stream",
                             code == websocket::close_code::try_again_later ? 503 : 400);
    }
    closing_ = true;
    close_code_ = code;
    if (out_.empty() && !writing_) do_close();
  }
  void do_close() {
    if (closed_) return;
    closed_ = true;
    idle_.cancel();
    ws_.async_close(close_code_, [self = shared_from_this()](beast::error_code) {});
  }

  void arm_idle_timer() {
    idle_.expires_after(seconds(o().ws_idle_timeout));
    idle_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (ec) return;
      const auto self = weak.lock();
      if (self && !self->utterance_) {
        self->close(websocket::close_code::normal, "idle_timeout",
                    "no message for the idle timeout");
      } else if (self) {
        self->arm_idle_timer();  // an utterance in flight keeps the connection
      }
    });
  }

  struct Utterance {
    std::shared_ptr<SpeechJob> job;
    std::shared_ptr<SynthesisStream> stream;
    std::unique_ptr<StreamEncoder> encoder;
    Clock::time_point started;
    StreamPlayback playback;
    uint64_t id = 0;
    int64_t samples = 0;
    bool started_audio = false;
    bool finished_input = false;
    bool cancelled = false;
    bool user_cancel = false;
  };

  websocket::stream<beast::tcp_stream> ws_;
  std::shared_ptr<ServerState> server_;
  net::steady_timer idle_{ws_.get_executor()};
  beast::flat_buffer in_;
  std::deque<Out> out_;
  bool writing_ = false, closing_ = false, closed_ = false, configured_ = false;
  websocket::close_code close_code_ = websocket::close_code::normal;
  TextStreaming streaming_ = TextStreaming::Sentence;
  SpeechRequest config_;
  bool awaiting_voice_ = false;  // session.config's ref_audio is becoming a voice
  std::shared_ptr<const VoicePrompt> voice_;
  std::string pending_text_;  // sentence mode: text before its sentence ends
  std::string queued_text_;   // for the next utterance, while the current one finishes
  bool queued_done_ = false;
  int64_t chars_ = 0;
  std::unique_ptr<Utterance> utterance_;
  std::shared_ptr<WsSession> keep_alive_;
};

}  // namespace

std::string ws_subprotocol_api_key(const http::request<http::string_body>& upgrade) {
  constexpr std::string_view kPrefix = "cosyserve.api-key.";
  for (const std::string_view token : offered_subprotocols(upgrade)) {
    if (token.starts_with(kPrefix)) return std::string(token.substr(kPrefix.size()));
  }
  return "";
}

void start_ws_session(beast::tcp_stream stream, http::request<http::string_body> upgrade,
                      std::shared_ptr<ServerState> server) {
  std::make_shared<WsSession>(std::move(stream), std::move(server))->start(std::move(upgrade));
}

}  // namespace cosy::server
