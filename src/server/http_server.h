// `cosyserve serve`'s transport: HTTP/1.1 on Boost.Beast over Asio, a thin layer over the
// Engine. Network threads parse requests, encode audio and write it; the engine's scheduler
// thread runs every model step and hands audio over through SpeechJob's bounded queue.
//
// Routes: POST /v1/audio/speech (OpenAI's API: raw audio with chunked transfer, or SSE);
// GET /v1/models, /v1/audio/voices, /metrics, /load; GET /health, /ready and the KServe v2
// aliases /v2/health/live, /v2/health/ready (these stay open without an API key); the
// playground at / (public). Optionally a HAProxy agent-check port (free capacity).
#pragma once

#include <memory>

#include "runtime/engine.h"
#include "server/server_options.h"

namespace cosy::server {

class VoiceService;

class HttpServer {
 public:
  // `voices` (optional): one-off voices from ref_audio and the /v1/audio/voices registry.
  HttpServer(Engine& engine, ServerOptions options, std::shared_ptr<VoiceService> voices = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the port (the chosen one when options.port is 0).
  int listen();
  // The HAProxy agent-check port listen() bound (options.agent_port >= 0), else -1.
  int agent_port() const;
  // Serves on options.threads network threads until a drain has finished.
  void run();
  // Thread-safe, e.g. from a signal watcher: /ready turns false and new requests get 503 at
  // once; streams in flight may finish for drain_timeout, then end with an error; then run()
  // returns.
  void drain();

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace cosy::server
