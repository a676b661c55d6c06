// What `cosyserve serve` is configured with: every field is a command-line flag and a key
// of the same name in the --config YAML file (flags win), printed in full at start.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/quality_guard.h"

namespace cosy::server {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0: any free port (printed at start)
  int agent_port = -1;  // HAProxy agent-check port on `host` (free capacity); -1: none, 0: any
  // The id /v1/models lists and requests name; empty: the folder family's, cosyvoice2 or
  // cosyvoice3.
  std::string model_name;
  int threads = 2;                          // network threads (model code never runs on them)
  int64_t max_streams = 16;                 // streams synthesising at once
  int64_t max_queue = 32;                   // requests waiting for a stream; beyond: 429
  double queue_timeout = 10;                // seconds a request may wait; then 429
  int64_t max_input_chars = 4096;           // longer input: 413
  int64_t max_body_bytes = 16 << 20;        // request body (recordings too); larger: 413
  int64_t max_header_bytes = 16 << 10;      // request header; larger: 431
  double request_timeout = 30;              // seconds to receive a whole request
  double client_buffer_seconds = 30;        // audio a client may leave unread; beyond: cut off
  double drain_timeout = 30;                // seconds in-flight streams get after SIGTERM
  int64_t max_ws_message_bytes = 64 << 10;  // a larger WebSocket message: close 1009
  double ws_idle_timeout = 60;              // seconds a WebSocket may stay silent
  std::vector<std::string> api_keys;        // empty: no authentication
  std::string access_log = "json";          // json | logfmt | off (stderr)
  std::string voice_store;                  // registered voices; "": <model>/spk2info.pt
  int64_t max_voice_jobs = 8;               // recordings waiting to become voices; beyond: 429
  double trim_memory_seconds = 10;
  QualityGuardOptions guard;  // what a request that does not say gets (--guard ...)  // hand freed
                              // heap back to the system this often; 0: never

  void validate() const;
  std::string to_string() const;  // one "key: value" line each, for the start banner
};

}  // namespace cosy::server
