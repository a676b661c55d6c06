// A running cosyserve (or any server with its API) as the target: POST /v1/audio/speech with
// raw pcm streaming for whole texts, and the WebSocket /v1/audio/speech/stream in token mode
// for text fed at a chat LLM's pace. Arrival times are when the bytes reach this client, so
// the network and the server's encoding are part of what is measured.
#pragma once

#include <string>

#include "tools/loadtest/load_target.h"

namespace cosy::loadtest {

struct ServerTargetOptions {
  std::string url;  // http://host:port[/prefix]
  std::string model = "cosyvoice2";
  std::string voice;
  std::string api_key;
  double request_timeout_s = 600;
  int64_t sample_rate = 24000;  // of the API's pcm format
};

class ServerTarget : public LoadTarget {
 public:
  // Fails on a URL it cannot use, and when nothing answers GET /health there.
  explicit ServerTarget(ServerTargetOptions options);
  std::string describe() const override;
  StreamRecord run(const LoadRequest& request, Clock::time_point sent,
                   const std::atomic<bool>& stop) override;

  struct Url {
    std::string host, port, prefix;
  };
  static Url parse_url(const std::string& url);

 private:
  StreamRecord run_rest(const LoadRequest& request, Clock::time_point sent,
                        const std::atomic<bool>& stop) const;
  StreamRecord run_websocket(const LoadRequest& request, Clock::time_point sent,
                             const std::atomic<bool>& stop) const;

  ServerTargetOptions options_;
  Url url_;
};

}  // namespace cosy::loadtest
