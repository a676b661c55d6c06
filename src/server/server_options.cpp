#include "server/server_options.h"

#include <sstream>

#include "core/error.h"

namespace cosy::server {

void ServerOptions::validate() const {
  if (port < 0 || port > 65535) fail("port must be in 0..65535, got ", port);
  if (agent_port < -1 || agent_port > 65535)
    fail("agent-port must be in 0..65535 (or -1: none), got ", agent_port);
  if (threads < 1) fail("threads must be >= 1");
  if (max_streams < 1) fail("max-streams must be >= 1");
  if (max_queue < 0) fail("max-queue must be >= 0");
  if (!(queue_timeout >= 0)) fail("queue-timeout must be >= 0");
  if (max_input_chars < 1) fail("max-input-chars must be >= 1");
  if (max_body_bytes < 64) fail("max-body-bytes must be >= 64");
  if (max_header_bytes < 1024) fail("max-header-bytes must be >= 1024");
  if (!(request_timeout > 0)) fail("request-timeout must be > 0");
  if (!(client_buffer_seconds > 0)) fail("client-buffer-seconds must be > 0");
  if (!(drain_timeout >= 0)) fail("drain-timeout must be >= 0");
  if (max_ws_message_bytes < 256) fail("max-ws-message-bytes must be >= 256");
  if (!(ws_idle_timeout > 0)) fail("ws-idle-timeout must be > 0");
  for (const auto& k : api_keys) {
    if (k.empty()) fail("an api-key must not be empty");
  }
  if (max_voice_jobs < 1) fail("max-voice-jobs must be >= 1");
  if (!(trim_memory_seconds >= 0)) fail("trim-memory-seconds must be >= 0");
  guard.validate();
  if (access_log != "json" && access_log != "logfmt" && access_log != "off")
    fail("access-log must be json, logfmt or off");
}

std::string ServerOptions::to_string() const {
  std::ostringstream s;
  s << "host: " << host << "\nport: " << port
    << "\nagent-port: " << (agent_port < 0 ? std::string("none") : std::to_string(agent_port))
    << "\nmodel-name: " << (model_name.empty() ? "the folder's family" : model_name)
    << "\nthreads: " << threads << "\nmax-streams: " << max_streams << "\nmax-queue: " << max_queue
    << "\nqueue-timeout: " << queue_timeout << "\nmax-input-chars: " << max_input_chars
    << "\nmax-body-bytes: " << max_body_bytes << "\nmax-header-bytes: " << max_header_bytes
    << "\nrequest-timeout: " << request_timeout
    << "\nclient-buffer-seconds: " << client_buffer_seconds << "\ndrain-timeout: " << drain_timeout
    << "\napi-keys: " << api_keys.size() << (api_keys.empty() ? " (no authentication)" : "")
    << "\naccess-log: " << access_log
    << "\nvoice-store: " << (voice_store.empty() ? "<model>/spk2info.pt" : voice_store)
    << "\nmax-voice-jobs: " << max_voice_jobs << "\ntrim-memory-seconds: " << trim_memory_seconds
    << "\nguard: " << (guard.enabled ? "on" : "off") << " (max-run " << guard.max_run
    << ", loop-repeats " << guard.loop_repeats << ", lookahead " << guard.lookahead << ")\n";
  return s.str();
}

}  // namespace cosy::server
