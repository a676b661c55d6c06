#include "tools/cli_support.h"

#include "core/backend.h"
#include "runtime/engine.h"
#include "runtime/sampler.h"
#include "runtime/trace.h"

namespace cosy::tools {

std::string join(const std::vector<std::string>& names, const char* separator) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : separator) + n;
  return out;
}

std::vector<std::string> weight_format_names() {
  std::vector<std::string> names;
  for (const WeightFormat f : all_weight_formats()) names.emplace_back(weight_format_name(f));
  return names;
}

std::vector<std::string> sampling_method_names() {
  std::vector<std::string> names;
  for (const SamplingMethod m :
       {SamplingMethod::Ras, SamplingMethod::TopKTopP, SamplingMethod::Greedy}) {
    names.emplace_back(sampling_method_name(m));
  }
  return names;
}

std::shared_ptr<TraceWriter> start_trace(Engine& engine, const std::string& file) {
  auto writer = std::make_shared<TraceWriter>(file);
  writer->listen_for_sync_points();
  engine.set_trace(writer);
  return writer;
}

}  // namespace cosy::tools
