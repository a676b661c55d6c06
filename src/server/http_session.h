// One HTTP connection: reads requests, answers the small endpoints, and streams speech
// (raw audio with chunked transfer, or SSE) from a SpeechJob. Every handler runs on the
// connection's strand; a WebSocket upgrade is handed to ws_session.h.
#pragma once

#include <memory>

#include "server/net_common.h"

namespace cosy::server {

class ServerState;

void start_http_session(tcp::socket socket, std::shared_ptr<ServerState> server);

}  // namespace cosy::server
