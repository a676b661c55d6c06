// WebSocket /v1/audio/speech/stream: text in as a chat LLM writes it, audio out as it is
// made. vLLM-Omni's message names, so its clients work:
//   client: session.config {REST fields, "text_streaming": "sentence" | "token"},
//           input.text {text}, input.flush, input.done, cancel, session.close
//   server: audio.start, binary audio frames, audio.done {usage}, session.done,
//           error {code, message}
// "token" feeds each input.text straight into the engine's bistream path; "sentence" (the
// default) feeds whole sentences as they complete. input.flush speaks what has arrived,
// input.done ends the utterance, cancel drops queued text and audio now (barge-in). One
// connection runs any number of utterances in turn.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "server/net_common.h"

namespace cosy::server {

class ServerState;

// Browsers' WebSocket cannot send an Authorization header, so a page offers its API key as
// a subprotocol, beside "cosyserve" (OpenAI's realtime API does the same):
//   new WebSocket(url, ["cosyserve", "cosyserve.api-key." + key])
// The key from such an offer, or "" (the server answers with "cosyserve", never the key).
inline constexpr std::string_view kWsSubprotocol = "cosyserve";
std::string ws_subprotocol_api_key(const http::request<http::string_body>& upgrade);

// Takes over a connection whose request asked to upgrade.
void start_ws_session(beast::tcp_stream stream, http::request<http::string_body> upgrade,
                      std::shared_ptr<ServerState> server);

}  // namespace cosy::server
