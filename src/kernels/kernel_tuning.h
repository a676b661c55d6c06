// The tuning file: the GEMM kernel measured fastest for each of a model's float32 weight
// shapes on one machine (`cosyserve tune` writes it; every command that loads a model
// reads it). It is keyed by what makes a measurement hold: the CPU model, its ISA
// extensions, the thread count and the kernels' own version (with the compiler that built
// them). A file measured under another key, a corrupt one or none at all leaves every
// shape on the default kernel, with a warning that says why: start-up never measures.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm_kernel.h"

namespace cosy::cpu {

// Bumped whenever a kernel's speed can change, so that older measurements read as stale.
// 2: bf16 and w8a8 on AMX tiles (a bf16 stage's timing moved 2-3x on such a CPU).
inline constexpr int kGemmKernelsVersion = 2;

struct MachineKey {
  std::string cpu;               // CPUID brand string
  std::vector<std::string> isa;  // cpu_isa_flags()
  int threads = 0;
  std::string kernels;  // "cosyserve-kernels/<version> <compiler>"
  bool operator==(const MachineKey&) const = default;
  std::string describe() const;
};
MachineKey this_machine(int threads);

// One shape's measurement: seconds per call of each kernel at `rows` rows.
struct TunedGemm {
  GemmShape shape;
  int64_t rows = 0;
  GemmKernel kernel = GemmKernel::Avx2;
  std::map<GemmKernel, double> seconds;
};

// Each stage's real-time factor (compute seconds per audio second) in each weight format
// this CPU runs, measured with the tuned kernels: what `--weights auto` picks from.
// Stages are "llm", "flow" and "hift".
using StageFormatTimes = std::map<std::string, std::map<WeightFormat, double>>;

struct KernelTuning {
  MachineKey machine;
  std::vector<TunedGemm> gemm;
  // By model folder (its canonical path): a stage's speed in each format depends on the
  // model's sizes (a tiny model's weights stay in cache). Empty: not measured.
  std::map<std::string, StageFormatTimes> formats;
};

// Throws Error naming what is wrong for a file that cannot be read or parsed, or whose
// contents are not a tuning (wrong format tag, missing fields, unknown kernel names).
KernelTuning read_kernel_tuning(const std::string& path);
// Written to a temporary file beside `path`, then renamed over it: a reader never sees half
// a file. Creates the parent folder.
void write_kernel_tuning(const std::string& path, const KernelTuning& tuning);

// `--weights auto` for one stage: the fastest format in `times[stage]` among `allowed`
// (fp32 is always allowed: it is the exact one). A reduced format is picked only when it is
// at least `min_gain` faster than fp32 here; one that is not is never picked, and `why`
// says so with both figures. Without a measurement of fp32 the pick is fp32.
struct FormatPick {
  WeightFormat format = WeightFormat::F32;
  std::string why;  // "int8 (RTF 0.731 against fp32's 1.540)", ...
};
// The key of a model folder in KernelTuning::formats: its canonical path.
std::string tuning_model_key(const std::string& model_dir);

FormatPick pick_stage_format(const StageFormatTimes& times, const std::string& stage,
                             const std::vector<WeightFormat>& allowed, double min_gain = 0.03);

// $COSY_TUNING_FILE, else $XDG_CACHE_HOME/cosyserve/tuning.json, else
// $HOME/.cache/cosyserve/tuning.json.
std::string default_kernel_tuning_path();

// The file's choices as a table to install; throws Error for an entry this CPU cannot run.
std::shared_ptr<GemmKernelChoices> kernel_choices_of(const KernelTuning& tuning);

struct TuningStatus {
  bool installed = false;  // the file's choices are in effect
  std::string message;     // one line for the log: what was installed, or why not
};
// Reads `path` (empty: the default path) and installs its choices when it was measured on
// this machine at `threads` threads; otherwise installs the defaults. Never throws for the
// file: a missing, stale or corrupt one is a warning in the status.
TuningStatus install_kernel_tuning(const std::string& path, int threads);

}  // namespace cosy::cpu
