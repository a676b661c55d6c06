// The in-process target: requests go straight to an Engine (no network, no encoding), so
// what is measured is the engine and its scheduler alone.
#pragma once

#include <memory>
#include <string>

#include "tools/loadtest/load_target.h"

namespace cosy::loadtest {

struct EngineTargetOptions {
  int64_t first_hop = 25;  // the flow's first streaming chunk, in speech tokens
};

class EngineTarget : public LoadTarget {
 public:
  EngineTarget(Engine& engine, std::shared_ptr<const VoicePrompt> voice, std::string voice_id,
               EngineTargetOptions options);
  std::string describe() const override;
  StreamRecord run(const LoadRequest& request, Clock::time_point sent,
                   const std::atomic<bool>& stop) override;
  std::optional<EngineStats> engine_stats() const override { return engine_.stats(); }

 private:
  Engine& engine_;
  std::shared_ptr<const VoicePrompt> voice_;
  std::string voice_id_;
  EngineTargetOptions options_;
};

}  // namespace cosy::loadtest
