#include "kernels/kernel_tuning.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/error.h"
#include "core/file_io.h"
#include "kernels/cpu_identity.h"

namespace cosy::cpu {

namespace {

constexpr const char* kFormatTag = "cosyserve-kernel-tuning/1";

using Json = nlohmann::json;

const Json& field(const Json& j, const char* key, Json::value_t type, const char* where) {
  const auto it = j.find(key);
  if (it == j.end()) fail(where, " has no \"", key, "\"");
  const bool ok =
      type == Json::value_t::number_integer
          ? it->is_number_integer()
          : (type == Json::value_t::number_float ? it->is_number() : it->type() == type);
  if (!ok) fail(where, ": \"", key, "\" has the wrong type");
  return *it;
}

int64_t positive(const Json& j, const char* key, const char* where) {
  const auto v = field(j, key, Json::value_t::number_integer, where).get<int64_t>();
  if (v <= 0) fail(where, ": \"", key, "\" must be positive, not ", v);
  return v;
}

GemmKernel kernel_named(const Json& j, const char* where) {
  if (!j.is_string()) fail(where, ": a kernel name must be a string");
  const auto name = j.get<std::string>();
  const auto kernel = parse_gemm_kernel(name);
  if (!kernel) fail(where, ": unknown kernel \"", name, "\"");
  return *kernel;
}

}  // namespace

std::string MachineKey::describe() const {
  std::string s = cpu + " [";
  for (size_t i = 0; i < isa.size(); ++i) s += (i > 0 ? " " : "") + isa[i];
  return cat(s, "], ", threads, " threads, ", kernels);
}

MachineKey this_machine(int threads) {
#if defined(__clang__)
  const std::string compiler = cat("clang ", __clang_major__, ".", __clang_minor__);
#else
  const std::string compiler = cat("gcc ", __GNUC__, ".", __GNUC_MINOR__);
#endif
  return {cpu_model_name(), cpu_isa_flags(), threads,
          cat("cosyserve-kernels/", kGemmKernelsVersion, " ", compiler)};
}

KernelTuning read_kernel_tuning(const std::string& path) {
  return with_context(path, [&] {
    const Json j = Json::parse(read_whole_file(path), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) fail("not valid JSON");
    if (!j.is_object()) fail("not a JSON object");
    if (field(j, "format", Json::value_t::string, "the file").get<std::string>() != kFormatTag) {
      fail("not a kernel tuning file (format is not \"", kFormatTag, "\")");
    }
    KernelTuning t;
    const Json& m = field(j, "machine", Json::value_t::object, "the file");
    t.machine.cpu = field(m, "cpu", Json::value_t::string, "machine").get<std::string>();
    for (const Json& f : field(m, "isa", Json::value_t::array, "machine")) {
      if (!f.is_string()) fail("machine: \"isa\" must hold strings");
      t.machine.isa.push_back(f.get<std::string>());
    }
    t.machine.threads = static_cast<int>(positive(m, "threads", "machine"));
    t.machine.kernels = field(m, "kernels", Json::value_t::string, "machine").get<std::string>();
    for (const Json& g : field(j, "gemm", Json::value_t::array, "the file")) {
      if (!g.is_object()) fail("a \"gemm\" entry is not an object");
      TunedGemm e;
      e.shape = {positive(g, "n", "gemm entry"), positive(g, "taps", "gemm entry"),
                 positive(g, "tap_width", "gemm entry"),
                 parse_weight_format(
                     field(g, "format", Json::value_t::string, "gemm entry").get<std::string>())};
      e.rows = positive(g, "rows", "gemm entry");
      // The regime follows from the row count the entry was timed at.
      e.shape.regime = e.rows <= kGemmStreamRows ? GemmRows::Few : GemmRows::Many;
      e.kernel =
          kernel_named(field(g, "kernel", Json::value_t::string, "gemm entry"), "gemm entry");
      if (const auto s = g.find("seconds"); s != g.end()) {
        if (!s->is_object()) fail("gemm entry: \"seconds\" is not an object");
        for (const auto& [name, v] : s->items()) {
          if (!v.is_number() || v.get<double>() <= 0) fail("gemm entry: a time is not positive");
          e.seconds[kernel_named(Json(name), "gemm entry")] = v.get<double>();
        }
      }
      t.gemm.push_back(std::move(e));
    }
    if (const auto f = j.find("formats"); f != j.end()) {
      if (!f->is_object()) fail("\"formats\" is not an object");
      for (const auto& [model, stages] : f->items()) {
        if (!stages.is_object()) fail("formats: \"", model, "\" is not an object");
        for (const auto& [stage, times] : stages.items()) {
          if (!times.is_object()) fail("formats: ", model, ": \"", stage, "\" is not an object");
          for (const auto& [name, v] : times.items()) {
            if (!v.is_number() || !(v.get<double>() > 0)) {
              fail("formats: ", model, ": ", stage, " ", name, ": not a positive real-time factor");
            }
            t.formats[model][stage][parse_weight_format(name)] = v.get<double>();
          }
        }
      }
    }
    return t;
  });
}

void write_kernel_tuning(const std::string& path, const KernelTuning& tuning) {
  Json j;
  j["format"] = kFormatTag;
  j["machine"] = {{"cpu", tuning.machine.cpu},
                  {"isa", tuning.machine.isa},
                  {"threads", tuning.machine.threads},
                  {"kernels", tuning.machine.kernels}};
  j["gemm"] = Json::array();
  for (const TunedGemm& e : tuning.gemm) {
    Json s = Json::object();
    for (const auto& [k, sec] : e.seconds) s[std::string(gemm_kernel_name(k))] = sec;
    j["gemm"].push_back({{"format", weight_format_name(e.shape.format)},
                         {"n", e.shape.n},
                         {"taps", e.shape.taps},
                         {"tap_width", e.shape.tap_width},
                         {"rows", e.rows},
                         {"kernel", gemm_kernel_name(e.kernel)},
                         {"seconds", s}});
  }
  Json formats = Json::object();
  for (const auto& [model, stages] : tuning.formats) {
    for (const auto& [stage, times] : stages) {
      for (const auto& [format, rtf] : times) {
        formats[model][stage][weight_format_name(format)] = rtf;
      }
    }
  }
  if (!formats.empty()) j["formats"] = formats;
  const std::filesystem::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(target.parent_path(), ec);
    if (ec) fail(path, ": cannot create its folder: ", ec.message());
  }
  const std::string tmp = cat(path, ".tmp.", ::getpid());
  write_whole_file(tmp, j.dump(2) + "\n");
  std::error_code ec;
  std::filesystem::rename(tmp, target, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail(path, ": cannot write: ", ec.message());
  }
}

std::string tuning_model_key(const std::string& model_dir) {
  std::error_code ec;
  const auto canonical = std::filesystem::weakly_canonical(model_dir, ec);
  return ec ? model_dir : canonical.string();
}

FormatPick pick_stage_format(const StageFormatTimes& times, const std::string& stage,
                             const std::vector<WeightFormat>& allowed, double min_gain) {
  const auto it = times.find(stage);
  if (it == times.end() || it->second.count(WeightFormat::F32) == 0) {
    return {WeightFormat::F32, "fp32 (no measurement of this stage: `cosyserve tune` makes one)"};
  }
  const auto& rtf = it->second;
  const double exact = rtf.at(WeightFormat::F32);
  FormatPick pick{WeightFormat::F32, ""};
  double best = exact;
  std::string slower;  // allowed formats that are not faster enough here
  std::string unmeasured;
  for (const WeightFormat f : allowed) {
    if (f == WeightFormat::F32) continue;
    const auto m = rtf.find(f);
    if (m == rtf.end()) {
      unmeasured += cat(unmeasured.empty() ? "" : ", ", weight_format_name(f));
      continue;
    }
    if (m->second <= exact * (1.0 - min_gain) && m->second < best) {
      best = m->second;
      pick.format = f;
    } else if (m->second > exact * (1.0 - min_gain)) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s %.3f", weight_format_name(f), m->second);
      slower += cat(slower.empty() ? "" : ", ", buf);
    }
  }
  char head[128];
  if (pick.format == WeightFormat::F32) {
    std::snprintf(head, sizeof head, "fp32 (RTF %.3f)", exact);
  } else {
    std::snprintf(head, sizeof head, "%s (RTF %.3f against fp32's %.3f)",
                  weight_format_name(pick.format), best, exact);
  }
  pick.why = head;
  if (std::none_of(allowed.begin(), allowed.end(),
                   [](WeightFormat f) { return f != WeightFormat::F32; })) {
    pick.why += "; only fp32 allowed (--allow-formats opens reduced ones)";
  }
  if (!slower.empty()) pick.why += cat("; not faster here, so never picked: ", slower);
  if (!unmeasured.empty()) pick.why += cat("; not measured on this CPU: ", unmeasured);
  return pick;
}

std::string default_kernel_tuning_path() {
  if (const char* f = std::getenv("COSY_TUNING_FILE"); f != nullptr && *f != '\0') return f;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0') {
    return cat(x, "/cosyserve/tuning.json");
  }
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    return cat(h, "/.cache/cosyserve/tuning.json");
  }
  return "cosyserve-tuning.json";
}

std::shared_ptr<GemmKernelChoices> kernel_choices_of(const KernelTuning& tuning) {
  auto choices = std::make_shared<GemmKernelChoices>();
  for (const TunedGemm& e : tuning.gemm) choices->set(e.shape, e.kernel);
  return choices;
}

TuningStatus install_kernel_tuning(const std::string& path_in, int threads) {
  const std::string path = path_in.empty() ? default_kernel_tuning_path() : path_in;
  install_gemm_kernel_choices(nullptr);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return {false, cat("kernels: default (no tuning file at ", path,
                       "; `cosyserve tune --model DIR` measures this machine)")};
  }
  KernelTuning t;
  try {
    t = read_kernel_tuning(path);
  } catch (const Error& e) {
    return {false, cat("warning: kernels: default, the tuning file is unreadable: ", e.what())};
  }
  const MachineKey here = this_machine(threads);
  if (!(t.machine == here)) {
    return {false, cat("warning: kernels: default, ", path, " is stale: measured on ",
                       t.machine.describe(), "; this is ", here.describe(),
                       " (`cosyserve tune` measures again)")};
  }
  std::shared_ptr<GemmKernelChoices> choices;
  try {
    choices = kernel_choices_of(t);
  } catch (const Error& e) {
    return {false, cat("warning: kernels: default, ", path, ": ", e.what())};
  }
  const auto not_default = std::count_if(t.gemm.begin(), t.gemm.end(), [](const TunedGemm& e) {
    return e.kernel != GemmKernel::Avx2;
  });
  install_gemm_kernel_choices(std::move(choices));
  return {true, cat("kernels: tuned (", path, "): ", t.gemm.size(), " GEMM shapes, ", not_default,
                    " on an AVX-512 kernel")};
}

}  // namespace cosy::cpu
