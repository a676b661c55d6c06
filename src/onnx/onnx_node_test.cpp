// ONNX's own operator conformance tests (the node tests python3-onnx generates): every
// case whose model the runtime accepts must reproduce the expected outputs. Cases the
// runtime refuses (an operator, opset, attribute or type it does not implement) are
// counted, and every operator the runtime lists must pass somewhere.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "core/file_io.h"
#include "core/test_support.h"
#include "onnx.pb.h"
#include "onnx/graph.h"
#include "onnx/op_registry.h"
#include "onnx/tensor_proto.h"

namespace cosy::onnx {
namespace {

namespace fs = std::filesystem;

enum class Outcome { Passed, Refused, Failed };

struct CaseResult {
  std::string name;
  std::set<std::string> ops;
  Outcome outcome = Outcome::Passed;
  std::string detail;
};

std::set<std::string> model_ops(const fs::path& model) {
  ::onnx::ModelProto proto;
  std::string bytes = read_whole_file(model);
  std::set<std::string> ops;
  if (!proto.ParseFromString(bytes)) return ops;
  for (const auto& n : proto.graph().node()) ops.insert(n.op_type());
  return ops;
}

// ONNX's backend tests compare with rtol 1e-3, atol 1e-7; integers and bools exactly.
std::string compare(const Tensor& want, const Tensor& got) {
  if (want.dtype() != got.dtype())
    return cat("type ", dtype_name(got.dtype()), " != ", dtype_name(want.dtype()));
  if (want.shape() != got.shape())
    return cat("shape ", shape_str(got.shape()), " != ", shape_str(want.shape()));
  if (is_floating(want.dtype())) {
    std::vector<float> w = want.to_float_vector();
    std::vector<float> g = got.to_float_vector();
    for (size_t i = 0; i < w.size(); ++i) {
      if (std::isnan(w[i]) && std::isnan(g[i])) continue;
      if (w[i] == g[i]) continue;
      if (!(std::fabs(g[i] - w[i]) <= 1e-7 + 1e-3 * std::fabs(w[i]))) {
        return cat("element ", i, ": ", g[i], " != ", w[i]);
      }
    }
    return "";
  }
  if (std::memcmp(want.contiguous().raw(), got.contiguous().raw(), want.nbytes()) != 0) {
    std::vector<int64_t> w = want.to_int_vector();
    std::vector<int64_t> g = got.to_int_vector();
    for (size_t i = 0; i < w.size(); ++i) {
      if (w[i] != g[i]) return cat("element ", i, ": ", g[i], " != ", w[i]);
    }
    return "values differ";
  }
  return "";
}

// Runs `step`; an Unsupported refuses the case, another Error fails it ("" when it ran).
template <typename Fn>
bool attempt(CaseResult& r, const char* what, Fn&& step) {
  try {
    step();
    return true;
  } catch (const Unsupported& e) {
    r.outcome = Outcome::Refused;
    r.detail = e.what();
  } catch (const Error& e) {
    r.outcome = Outcome::Failed;
    r.detail = cat(what, ": ", e.what());
  }
  return false;
}

CaseResult run_case(const fs::path& dir) {
  CaseResult r;
  r.name = dir.filename().string();
  r.ops = model_ops(dir / "model.onnx");
  std::shared_ptr<const Model> model;
  if (!attempt(r, "load", [&] { model = Model::load(dir / "model.onnx"); })) return r;
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
      sets.push_back(e.path());
  }
  std::sort(sets.begin(), sets.end());
  for (const fs::path& set : sets) {
    std::vector<Tensor> inputs;
    std::vector<Tensor> expected;
    try {
      for (size_t i = 0; fs::exists(set / cat("input_", i, ".pb")); ++i)
        inputs.push_back(read_tensor_file(set / cat("input_", i, ".pb")));
      for (size_t i = 0; fs::exists(set / cat("output_", i, ".pb")); ++i)
        expected.push_back(read_tensor_file(set / cat("output_", i, ".pb")));
    } catch (const Error& e) {  // sequences, strings, optionals: not tensors we hold
      r.outcome = Outcome::Refused;
      r.detail = cat("test data: ", e.what());
      return r;
    }
    // Some cases leave trailing optional inputs out of the data set.
    if (inputs.size() != model->inputs().size()) {
      r.outcome = Outcome::Failed;
      r.detail = cat(inputs.size(), " inputs in ", set.filename().string(), ", the model takes ",
                     model->inputs().size());
      return r;
    }
    std::vector<Tensor> got;
    if (!attempt(r, "run", [&] { got = model->run(inputs); })) return r;
    if (got.size() != expected.size()) {
      r.outcome = Outcome::Failed;
      r.detail = cat(got.size(), " outputs, ", expected.size(), " expected");
      return r;
    }
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::string diff = compare(expected[i], got[i]); !diff.empty()) {
        r.outcome = Outcome::Failed;
        r.detail = cat(set.filename().string(), " output ", i, ": ", diff);
        return r;
      }
    }
  }
  return r;
}

TEST(OnnxNodeTests, EveryAcceptedCaseReproducesOnnxsOutputs) {
  COSY_NEED_ONNX_NODE();
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(testing::onnx_node_dir())) {
    if (e.is_directory() && fs::exists(e.path() / "model.onnx")) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  ASSERT_FALSE(dirs.empty()) << "no test_*/model.onnx under " << testing::onnx_node_dir();

  std::vector<CaseResult> results;
  for (const fs::path& d : dirs) results.push_back(run_case(d));

  std::map<std::string, std::array<int, 3>> per_op;  // passed, refused, failed
  int totals[3] = {0, 0, 0};
  for (const CaseResult& r : results) {
    totals[static_cast<int>(r.outcome)]++;
    for (const std::string& op : r.ops) per_op[op][static_cast<int>(r.outcome)]++;
    if (r.outcome == Outcome::Failed) ADD_FAILURE() << r.name << ": " << r.detail;
  }
  std::set<std::string> supported;
  for (const std::string& op : supported_ops()) supported.insert(op);
  for (const std::string& op : supported) {
    EXPECT_GT(per_op[op][0], 0) << op << " is listed as supported but passes no node test";
  }

  std::ostringstream report;
  report << "| operator | cases passed | refused | failed |\n|---|---|---|---|\n";
  for (const std::string& op : supported) {
    report << "| " << op << " | " << per_op[op][0] << " | " << per_op[op][1] << " | "
           << per_op[op][2] << " |\n";
  }
  report << "\n"
         << dirs.size() << " node tests: " << totals[0] << " passed, " << totals[1] << " refused, "
         << totals[2] << " failed.\n\nWhy cases were refused:\n\n";
  std::map<std::string, int> reasons;
  for (const CaseResult& r : results) {
    if (r.outcome != Outcome::Refused) continue;
    std::string why = r.detail;
    if (auto p = why.find(": "); p != std::string::npos && why.rfind("/", p) != std::string::npos)
      why = why.substr(p + 2);
    if (auto p = why.find("node '"); p != std::string::npos) {
      if (auto q = why.find("): ", p); q != std::string::npos) why = why.substr(q + 3);
    }
    reasons[why]++;
  }
  for (const auto& [why, n] : reasons) report << "- " << n << " × " << why << "\n";
  std::cout << report.str();
  if (const char* path = std::getenv("COSY_ONNX_REPORT"); path != nullptr && *path != '\0') {
    std::ofstream(path) << report.str();
  }
}

}  // namespace
}  // namespace cosy::onnx
