// Measures model-folder loading against the cost of just reading its bytes, and memory
// against the weight size. Usage: load_bench MODEL_DIR
//
// Reported:
//   read_s      reading every checkpoint byte with read() (the floor for any loader)
//   load_s      load_model_folder: parse, validate, map (weights stay on disk until used)
//   touch_s     reading every weight through the mapped tensors
//   verify_s    the CRC-32 check of every record, alone (load_model_folder runs it in the
//               background; an engine waits for it before serving)
//   rss/pss     resident and proportional memory after touching, vs. weight bytes;
//               a second load of the same folder shows what another instance costs.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/model_folder.h"
#include "model/model_summary.h"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// kB value of `key` in a /proc file ("VmRSS:", "Pss:").
long proc_kb(const char* file, const char* key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::strlen(key)));
  }
  return -1;
}

double read_all(const std::filesystem::path& p) {
  std::vector<char> buf(1 << 24);
  const int fd = ::open(p.c_str(), O_RDONLY);
  if (fd < 0) return 0;
  double sink = 0;
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) sink += buf[static_cast<size_t>(n) - 1];
  ::close(fd);
  return sink;
}

// Reads every element of every weight (as the first inference would).
double touch(const cosy::StateDict& sd) {
  double sum = 0;
  for (const auto& name : sd.names()) {
    const cosy::Tensor& t = sd.at(name);
    const auto* p = reinterpret_cast<const unsigned char*>(t.raw());
    for (size_t i = 0; i < t.nbytes(); i += 64) sum += p[i];
  }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  try {
    size_t file_bytes = 0;
    double sink = 0;
    const double t0 = now();
    for (const char* f : {"llm.pt", "flow.pt", "hift.pt"}) {
      file_bytes += std::filesystem::file_size(dir / f);
      sink += read_all(dir / f);
    }
    const double read_s = now() - t0;

    const long rss0 = proc_kb("/proc/self/status", "VmRSS:");
    const double t1 = now();
    cosy::ModelFolder m = cosy::load_model_folder(dir);
    const double load_s = now() - t1;
    const long rss_loaded = proc_kb("/proc/self/status", "VmRSS:");
    const double t2 = now();
    sink += touch(m.llm) + touch(m.flow) + touch(m.hift);
    const double touch_s = now() - t2;
    const long rss_touched = proc_kb("/proc/self/status", "VmRSS:");
    m.wait_verified();
    cosy::LoadOptions sync;
    sync.verify_in_background = false;
    const double t3 = now();
    (void)cosy::load_model_folder(dir, sync);
    const double verify_s = now() - t3 - load_s;
    const long pss_touched = proc_kb("/proc/self/smaps_rollup", "Pss:");

    cosy::ModelFolder second = cosy::load_model_folder(dir);
    sink += touch(second.llm) + touch(second.flow) + touch(second.hift);
    const long pss_two = proc_kb("/proc/self/smaps_rollup", "Pss:");

    const size_t weights = cosy::summarize(m.llm).bytes + cosy::summarize(m.flow).bytes +
                           cosy::summarize(m.hift).bytes;
    const double wmb = weights / 1048576.0;
    std::printf("model            %s\n", dir.c_str());
    std::printf("checkpoint bytes %.1f MiB, weight bytes %.1f MiB\n", file_bytes / 1048576.0, wmb);
    std::printf("read_s           %.3f  (read() of every checkpoint byte, page cache warm)\n",
                read_s);
    std::printf("load_s           %.3f  (parse + validate + map; %.1f%% of read_s)\n", load_s,
                100 * load_s / read_s);
    std::printf("touch_s          %.3f  (first pass over every mapped weight)\n", touch_s);
    std::printf(
        "verify_s         %.3f  (CRC-32 of every record on %d threads, page cache warm; "
        "%.1f%% of read_s)\n",
        verify_s, cosy::ThreadPool::global().num_threads(), 100 * verify_s / read_s);
    std::printf(
        "rss_mb           before %.1f, after load %.1f, after touch %.1f (%.2f x weights)\n",
        rss0 / 1024.0, rss_loaded / 1024.0, rss_touched / 1024.0,
        (rss_touched - rss0) / 1024.0 / wmb);
    std::printf(
        "pss_mb           one instance %.1f, two instances %.1f (second instance adds %.1f MiB)\n",
        pss_touched / 1024.0, pss_two / 1024.0, (pss_two - pss_touched) / 1024.0);
    std::printf("(checksum %g)\n", sink);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
