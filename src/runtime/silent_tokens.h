// CosyVoice3's cap on silence reaching the flow (the official CosyVoice3Model.llm_job):
// tokens of the silent set ("FSQ silent and breath tokens") count up, any other token
// resets the count, and a silent token is dropped once the count passes max_run. The LM
// itself still sees and conditions on every token; only the flow's input is filtered.
#pragma once

#include <cstdint>
#include <vector>

namespace cosy {

class SilentTokenCap {
 public:
  struct Options {
    std::vector<int32_t> silent;
    int64_t max_run = 5;
  };
  // The official set and bound of CosyVoice3Model.
  static Options cosyvoice3();

  explicit SilentTokenCap(Options options);
  // Whether `token`, the LM's next output, goes on to the flow.
  bool keep(int32_t token);

 private:
  Options opt_;
  int64_t run_ = 0;
};

}  // namespace cosy
