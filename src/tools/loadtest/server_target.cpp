#include "tools/loadtest/server_target.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <nlohmann/json.hpp>

#include "tools/loadtest/text_pieces.h"

namespace cosy::loadtest {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Json = nlohmann::json;

// The request's JSON fields shared by the REST body and the WebSocket's session.config.
Json speech_fields(const ServerTargetOptions& o, const LoadRequest& r) {
  Json j = {{"model", o.model}, {"voice", o.voice}, {"response_format", "pcm"}, {"seed", r.seed}};
  if (r.tokens_per_text_token > 0) j["forced_tokens_per_text_token"] = r.tokens_per_text_token;
  return j;
}

// An error body's message (OpenAI's shape), or the body itself.
std::string error_message(const std::string& body) {
  const Json j = Json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object() &&
      j["error"].contains("message") && j["error"]["message"].is_string()) {
    return j["error"]["message"].get<std::string>();
  }
  return body.substr(0, 300);
}

}  // namespace

ServerTarget::Url ServerTarget::parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind("https://", 0) == 0) {
    fail("--url ", url,
         ": https is not supported by loadtest; point it at the server itself "
         "(http://host:port), not at a TLS proxy");
  }
  if (url.rfind(scheme, 0) != 0) fail("--url ", url, ": expected http://host:port");
  std::string rest = url.substr(scheme.size());
  Url u;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    u.prefix = rest.substr(slash);
    while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
    rest = rest.substr(0, slash);
  }
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    u.host = rest.substr(0, colon);
    u.port = rest.substr(colon + 1);
  } else {
    u.host = rest;
    u.port = "80";
  }
  if (!u.host.empty() && u.host.front() == '[' && u.host.back() == ']')
    u.host = u.host.substr(1, u.host.size() - 2);
  if (u.host.empty()) fail("--url ", url, ": no host");
  if (u.port.empty() || u.port.find_first_not_of("0123456789") != std::string::npos ||
      u.port.size() > 5 || std::stoi(u.port) < 1 || std::stoi(u.port) > 65535) {
    fail("--url ", url, ": bad port '", u.port, "'");
  }
  return u;
}

ServerTarget::ServerTarget(ServerTargetOptions options)
    : options_(std::move(options)), url_(parse_url(options_.url)) {
  if (options_.voice.empty()) fail("loadtest --url needs --voice (a voice the server has)");
  // Fail now, with the reason, rather than once per request.
  try {
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(resolver.resolve(url_.host, url_.port));
    http::request<http::empty_body> req{http::verb::get, url_.prefix + "/health", 11};
    req.set(http::field::host, url_.host);
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    if (res.result() != http::status::ok) {
      fail("GET /health answered ", res.result_int(), ": ", error_message(res.body()));
    }
  } catch (const boost::system::system_error& e) {
    fail("cannot reach ", options_.url, ": ", e.code().message());
  } catch (const Error& e) {
    fail("cannot use ", options_.url, ": ", e.what());
  }
}

std::string ServerTarget::describe() const {
  return cat("server at ", options_.url,
             " (REST pcm streaming; WebSocket token mode for paced "
             "text), voice ",
             options_.voice);
}

StreamRecord ServerTarget::run(const LoadRequest& request, Clock::time_point sent,
                               const std::atomic<bool>& stop) {
  StreamRecord rec;
  try {
    rec =
        request.text_rate > 0 ? run_websocket(request, sent, stop) : run_rest(request, sent, stop);
  } catch (const boost::system::system_error& e) {
    rec.ok = false;
    rec.error = cat("network: ", e.code().message());
  } catch (const std::exception& e) {
    rec.ok = false;
    rec.error = e.what();
  }
  rec.id = request.id;
  if (rec.ended_s <= 0) rec.ended_s = seconds_from(sent);
  return rec;
}

StreamRecord ServerTarget::run_rest(const LoadRequest& request, Clock::time_point sent,
                                    const std::atomic<bool>& stop) const {
  StreamRecord rec;
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  const auto deadline = sent + seconds(options_.request_timeout_s);
  stream.expires_at(deadline);
  stream.connect(resolver.resolve(url_.host, url_.port));
  Json body = speech_fields(options_, request);
  body["input"] = request.text;
  body["stream_format"] = "audio";
  http::request<http::string_body> req{http::verb::post, url_.prefix + "/v1/audio/speech", 11};
  req.set(http::field::host, url_.host);
  req.set(http::field::content_type, "application/json");
  if (!options_.api_key.empty()) req.set(http::field::authorization, "Bearer " + options_.api_key);
  req.body() = body.dump();
  req.prepare_payload();
  http::write(stream, req);

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  http::read_header(stream, buffer, parser);
  if (parser.get().result() != http::status::ok) {
    std::string text;
    char chunk[4096];
    while (!parser.is_done() && text.size() < 65536) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      beast::error_code ec;
      http::read(stream, buffer, parser, ec);
      if (ec && ec != http::error::need_buffer) break;
      text.append(chunk, sizeof chunk - parser.get().body().size);
    }
    rec.error = cat("HTTP ", parser.get().result_int(), ": ", error_message(text));
    return rec;
  }
  std::vector<char> chunk(1 << 16);
  int64_t bytes = 0;
  while (!parser.is_done()) {
    if (stop.load()) {
      rec.error = "stopped";
      return rec;
    }
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    beast::error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec && ec != http::error::need_buffer) {
      // The server ends a failed stream by closing without the final chunk.
      rec.error = cat("the audio stream broke off after ", bytes, " bytes: ", ec.message());
      return rec;
    }
    const auto n = static_cast<int64_t>(chunk.size() - parser.get().body().size);
    if (n > 0) {
      bytes += n;
      rec.arrivals.push_back({seconds_from(sent), static_cast<double>(n) / 2.0 /
                                                      static_cast<double>(options_.sample_rate)});
    }
  }
  rec.ended_s = seconds_from(sent);
  rec.ok = true;
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return rec;
}

// One WebSocket session, driven on this thread's own io_context: the text pieces go out on
// a timer at the request's pace while audio frames are read as they come.
StreamRecord ServerTarget::run_websocket(const LoadRequest& request, Clock::time_point sent,
                                         const std::atomic<bool>& stop) const {
  StreamRecord rec;
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  websocket::stream<beast::tcp_stream> ws(ioc);
  beast::get_lowest_layer(ws).expires_at(sent + seconds(options_.request_timeout_s));
  beast::get_lowest_layer(ws).connect(resolver.resolve(url_.host, url_.port));
  beast::get_lowest_layer(ws).expires_never();
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
  const std::string key = options_.api_key;
  ws.set_option(websocket::stream_base::decorator([key](websocket::request_type& req) {
    if (!key.empty()) req.set(http::field::authorization, "Bearer " + key);
  }));
  ws.handshake(url_.host + ":" + url_.port, url_.prefix + "/v1/audio/speech/stream");

  Json config = speech_fields(options_, request);
  config["type"] = "session.config";
  config["text_streaming"] = "token";
  const std::vector<std::string> pieces = text_pieces(request.text, nullptr);

  std::deque<std::string> outbox;
  bool writing = false, finished = false;
  std::function<void()> write_next = [&] {
    if (writing || outbox.empty() || finished) return;
    writing = true;
    ws.text(true);
    ws.async_write(net::buffer(outbox.front()), [&](beast::error_code ec, size_t) {
      writing = false;
      outbox.pop_front();
      if (ec) {
        if (!finished) rec.error = cat("network: ", ec.message());
        finished = true;
        return;
      }
      write_next();
    });
  };
  auto send = [&](std::string message) {
    outbox.push_back(std::move(message));
    write_next();
  };
  send(config.dump());

  net::steady_timer pacer(ioc), watchdog(ioc);
  size_t next_piece = 0;
  std::function<void()> pace = [&] {
    if (finished) return;
    if (next_piece == pieces.size()) {
      send(Json{{"type", "input.done"}}.dump());
      return;
    }
    send(Json{{"type", "input.text"}, {"text", pieces[next_piece]}}.dump());
    ++next_piece;
    pacer.expires_at(sent + seconds(static_cast<double>(next_piece) / request.text_rate));
    pacer.async_wait([&](beast::error_code ec) {
      if (!ec) pace();
    });
  };
  pace();

  auto finish = [&] {
    finished = true;
    pacer.cancel();
    watchdog.cancel();
    beast::get_lowest_layer(ws).cancel();
  };
  // The request's time limit, and the stop flag, checked a few times a second.
  std::function<void()> watch = [&] {
    watchdog.expires_after(std::chrono::milliseconds(200));
    watchdog.async_wait([&](beast::error_code ec) {
      if (ec || finished) return;
      if (stop.load()) {
        rec.error = "stopped";
        finish();
      } else if (Clock::now() > sent + seconds(options_.request_timeout_s)) {
        rec.error = cat("no end after ", options_.request_timeout_s, " s");
        finish();
      } else {
        watch();
      }
    });
  };
  watch();

  beast::flat_buffer buffer;
  std::function<void()> read_next = [&] {
    ws.async_read(buffer, [&](beast::error_code ec, size_t n) {
      if (finished) return;
      if (ec) {
        rec.error =
            ec == websocket::error::closed
                ? cat("the server closed the session (", ws.reason().code, " ",
                      std::string(ws.reason().reason.data(), ws.reason().reason.size()), ")")
                : cat("network: ", ec.message());
        finish();
        return;
      }
      if (ws.got_binary()) {
        rec.arrivals.push_back({seconds_from(sent), static_cast<double>(n) / 2.0 /
                                                        static_cast<double>(options_.sample_rate)});
      } else {
        const Json m = Json::parse(beast::buffers_to_string(buffer.data()), nullptr, false);
        const std::string type = m.is_object() && m.contains("type") && m["type"].is_string()
                                     ? m["type"].get<std::string>()
                                     : "";
        if (type == "error") {
          rec.error = cat("error frame: ", m.dump());
          finish();
          return;
        }
        if (type == "audio.done") {
          rec.ended_s = seconds_from(sent);
          rec.ok = true;
          send(Json{{"type", "session.close"}}.dump());
          finished = true;
          pacer.cancel();
          watchdog.cancel();
          return;
        }
      }
      buffer.consume(buffer.size());
      read_next();
    });
  };
  read_next();
  ioc.run();
  if (rec.ok) {
    beast::error_code ignored;
    ws.close(websocket::close_code::normal, ignored);
  }
  return rec;
}

}  // namespace cosy::loadtest
