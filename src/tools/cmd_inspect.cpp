#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "model/model_folder.h"
#include "model/model_summary.h"
#include "tools/commands.h"

namespace cosy::tools {
namespace {

struct InspectOptions {
  std::string model;
  bool json = false;
};

std::string human_bytes(size_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

void print_fields(const ConfigFields& fields, const char* indent) {
  for (const auto& [k, v] : fields) std::printf("%s%-28s %s\n", indent, k.c_str(), v.c_str());
}

void print_stage(const char* name, const char* file, const StateDict& sd,
                 const ConfigFields& fields) {
  const StageSummary s = summarize(sd);
  std::printf("\n%s (%s)\n", name, file);
  std::printf("  %-28s %lld\n", "parameters", static_cast<long long>(s.parameters));
  std::printf("  %-28s %s\n", "dtype", s.dtypes().c_str());
  std::printf("  %-28s %s (%zu bytes)\n", "bytes", human_bytes(s.bytes).c_str(), s.bytes);
  std::printf("  %-28s %zu\n", "tensors", s.tensors);
  print_fields(fields, "  ");
}

std::string tensor_brief(const Tensor& t) {
  return shape_str(t.shape()) + " " + std::string(dtype_name(t.dtype()));
}

nlohmann::ordered_json fields_json(const ConfigFields& fields) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [k, v] : fields) j[k] = v;
  return j;
}

nlohmann::ordered_json stage_json(const StateDict& sd, const ConfigFields& fields) {
  const StageSummary s = summarize(sd);
  return {{"parameters", s.parameters},
          {"dtype", s.dtypes()},
          {"bytes", s.bytes},
          {"tensors", s.tensors},
          {"config", fields_json(fields)}};
}

int run_inspect(const InspectOptions& o) {
  const ModelFolder m = load_model_folder(o.model);
  m.wait_verified();
  const ModelConfig& c = m.config;
  ConfigFields llm_fields = c.llm.fields();
  for (const auto& f : c.llm.qwen.fields()) llm_fields.emplace_back("qwen." + f.first, f.second);

  if (o.json) {
    nlohmann::ordered_json j;
    j["model"] = o.model;
    j["config"] = fields_json(c.fields());
    j["llm"] = stage_json(m.llm, llm_fields);
    j["flow"] = stage_json(m.flow, c.flow.fields());
    j["hift"] = stage_json(m.hift, c.hift.fields());
    nlohmann::ordered_json voices = nlohmann::ordered_json::array();
    if (m.voices) {
      for (const Voice& v : m.voices->voices) {
        nlohmann::ordered_json tensors = nlohmann::ordered_json::object();
        for (const auto& [k, t] : v.tensors) tensors[k] = tensor_brief(t);
        voices.push_back({{"id", v.id}, {"zero_shot", v.is_zero_shot()}, {"tensors", tensors}});
      }
    }
    j["voices"] = voices;
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::printf("model folder: %s\n", o.model.c_str());
  print_fields(c.fields(), "  ");
  print_stage("llm", "llm.pt", m.llm, llm_fields);
  print_stage("flow", "flow.pt", m.flow, c.flow.fields());
  print_stage("hift", "hift.pt", m.hift, c.hift.fields());
  if (!m.voices) {
    std::printf("\nvoices: none (no spk2info.pt)\n");
    return 0;
  }
  std::printf("\nvoices (spk2info.pt): %zu\n", m.voices->voices.size());
  for (const Voice& v : m.voices->voices) {
    std::printf("  %s (%s)\n", v.id.c_str(),
                v.is_zero_shot() ? "zero-shot prompt" : "speaker embedding only");
    for (const auto& [k, t] : v.tensors)
      std::printf("    %-30s %s\n", k.c_str(), tensor_brief(t).c_str());
  }
  return 0;
}

}  // namespace

Command register_inspect(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  app.add_option("--model", o->model, "CosyVoice2 or CosyVoice3 model folder")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_flag("--json", o->json, "Print JSON instead of a table");
  return [o] { return run_inspect(*o); };
}

}  // namespace cosy::tools
