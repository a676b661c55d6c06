// libFuzzer: a WebSocket message sequence, as untrusted bytes, into a live session of an
// in-process server (a tiny random-weight model): one message per line, a line starting
// with 0x01 sent as a binary frame. The server must answer or close, never crash, hang or
// leak, and stay up for the next input.
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "kernels/cpu_backend.h"
#include "model/model_folder.h"
#include "model/model_writer.h"
#include "runtime/engine.h"
#include "server/http_server.h"
#include "server/voice_service.h"

namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Server {
  std::filesystem::path dir;
  std::unique_ptr<cosy::ModelFolder> folder;
  std::unique_ptr<cosy::Backend> backend;
  std::unique_ptr<cosy::Engine> engine;
  std::unique_ptr<cosy::server::HttpServer> http;
  std::thread thread;
  int port = 0;
};

Server& server() {
  static Server* s = [] {
    auto* srv = new Server();
    srv->dir =
        std::filesystem::temp_directory_path() / ("cosy-fuzz-ws-" + std::to_string(getpid()));
    cosy::WriteModelOptions w;
    cosy::write_model_folder(cosy::preset_config("tiny"), srv->dir, w);
    srv->folder = std::make_unique<cosy::ModelFolder>(cosy::load_model_folder(srv->dir));
    srv->backend = cosy::cpu::create_cpu_backend(1);
    cosy::EngineOptions eo;
    eo.max_streams = 4;
    srv->engine = std::make_unique<cosy::Engine>(*srv->backend, *srv->folder, eo);
    cosy::server::ServerOptions o;
    o.port = 0;
    o.access_log = "off";
    o.max_input_chars = 200;
    o.ws_idle_timeout = 2;
    o.max_ws_message_bytes = 4096;
    o.max_body_bytes = 1 << 16;
    auto voices = std::make_shared<cosy::server::VoiceService>(*srv->engine, *srv->folder,
                                                               srv->dir / "voices.pt", 2);
    srv->http = std::make_unique<cosy::server::HttpServer>(*srv->engine, o, voices);
    srv->port = srv->http->listen();
    srv->thread = std::thread([srv] { srv->http->run(); });
    return srv;
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Server& s = server();
  std::vector<std::string> messages;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty() && messages.size() < 16) {
    const size_t nl = rest.find('\n');
    messages.emplace_back(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  net::io_context ioc;
  beast::websocket::stream<beast::tcp_stream> ws(ioc);
  beast::error_code ec;
  beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(3));
  beast::get_lowest_layer(ws).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), s.port),
                                      ec);
  if (ec) __builtin_trap();  // the server must stay up
  ws.handshake("127.0.0.1", "/v1/audio/speech/stream", ec);
  if (ec) __builtin_trap();
  for (const std::string& m : messages) {
    const bool binary = !m.empty() && m[0] == '\x01';
    ws.binary(binary);
    ws.write(net::buffer(binary ? m.substr(1) : m), ec);
    if (ec) break;
  }
  // Read what comes back for a moment (the server may close on its own), then close: the
  // server must answer the close handshake promptly whatever the session was doing.
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (!ec && std::chrono::steady_clock::now() < end) {
    beast::flat_buffer buf;
    beast::get_lowest_layer(ws).expires_at(end);
    ws.read(buf, ec);
  }
  if (ws.is_open()) {
    beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(5));
    ws.close(beast::websocket::close_code::normal, ec);
    // Drain until the server's close frame arrives.
    while (!ec) {
      beast::flat_buffer buf;
      ws.read(buf, ec);
    }
    if (ec == beast::error::timeout) __builtin_trap();  // the server did not close
  }
  beast::get_lowest_layer(ws).socket().close(ec);
  return 0;
}
