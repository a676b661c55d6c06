#include "model/lm/teacher_forcing.h"

#include <cmath>

#include "core/device_array.h"
#include "core/error.h"
#include "core/kv_pool.h"

namespace cosy {

namespace {

// The decoder's logits at positions [from, size) of `seq` after one forward, on the host.
std::vector<float> forced_logits(Backend& backend, const SpeechLm& lm, std::span<const LmInput> seq,
                                 int64_t from) {
  const auto n = static_cast<int64_t>(seq.size());
  if (n == 0 || from < 0 || from >= n)
    fail("teacher forcing: positions [", from, ", ", n, ") are empty");
  const int64_t h = lm.hidden(), v = lm.vocab().size(), rows = n - from;
  PagedKvPool pool(backend, lm.backbone().kv_geometry((n + 15) / 16, 16));
  auto stream = backend.create_stream();
  Exec e(backend, *stream);
  Qwen2Workspace ws;
  DeviceArray<float> x(backend, static_cast<size_t>(n * h)),
      hidden(backend, static_cast<size_t>(n * h)), logits(backend, static_cast<size_t>(rows * v));
  lm.embed(e, seq, x.data());
  const Qwen2Chunk chunk{pool.create(), x.data(), n, nullptr, hidden.data()};
  lm.backbone().forward(e, pool, {&chunk, 1}, ws);
  lm.logits(e, hidden.data() + from * h, rows, logits.data());
  std::vector<float> host(static_cast<size_t>(rows * v));
  backend.copy(*stream, host.data(), logits.data(), host.size() * sizeof(float));
  stream->synchronize();
  return host;
}

}  // namespace

TeacherForced teacher_forced(Backend& backend, const SpeechLm& lm, std::span<const LmInput> seq,
                             int64_t from) {
  const std::vector<float> host = forced_logits(backend, lm, seq, from);
  const int64_t v = lm.vocab().size();
  const auto rows = static_cast<int64_t>(host.size()) / v;
  TeacherForced out;
  out.top1.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = host.data() + r * v;
    int32_t best = -1;
    for (int64_t i = 0; i < v; ++i) {
      if (!std::isfinite(row[i])) {
        ++out.nonfinite;
        continue;
      }
      out.max_abs_logit = std::max(out.max_abs_logit, std::fabs(static_cast<double>(row[i])));
      if (best < 0 || row[i] > row[best]) best = static_cast<int32_t>(i);
    }
    out.top1[static_cast<size_t>(r)] = best;
  }
  return out;
}

std::vector<double> next_token_logp(Backend& backend, const SpeechLm& lm,
                                    std::span<const LmInput> seq) {
  const std::vector<float> logits =
      forced_logits(backend, lm, seq, static_cast<int64_t>(seq.size()) - 1);
  double top = -INFINITY;
  for (float l : logits) top = std::max(top, static_cast<double>(l));
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - top);
  const double log_z = top + std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - log_z;
  return out;
}

double top1_agreement(const TeacherForced& a, const TeacherForced& b) {
  if (a.top1.size() != b.top1.size())
    fail("top-1 agreement: ", a.top1.size(), " vs ", b.top1.size(), " positions");
  if (a.top1.empty()) return 1;
  size_t same = 0;
  for (size_t i = 0; i < a.top1.size(); ++i) same += a.top1[i] == b.top1[i] ? 1 : 0;
  return static_cast<double>(same) / static_cast<double>(a.top1.size());
}

}  // namespace cosy
