#include "model/model_folder.h"

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/file_io.h"
#include "io/hyperpyyaml.h"
#include "io/zip_verify.h"
#include "model/param_schema.h"

namespace cosy {
namespace {

std::filesystem::path require(const std::filesystem::path& p, const char* what) {
  if (!std::filesystem::is_regular_file(p)) fail(p.string(), ": missing (", what, ")");
  return p;
}

}  // namespace

ModelConfig load_model_config(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir))
    fail(dir.string(), ": not a directory (expected a CosyVoice2 model folder)");
  const auto yaml_path =
      require(dir / "cosyvoice2.yaml", "the model's hyperparameters; is this a CosyVoice2 folder?");
  const auto qwen_path =
      require(dir / "CosyVoice-BlankEN" / "config.json", "the Qwen2 hyperparameters");
  const QwenConfig qwen = parse_qwen_config(read_whole_file(qwen_path), qwen_path.string());
  return parse_model_config(yaml::load(yaml_path), qwen);
}

ModelFolder load_model_folder(const std::filesystem::path& dir, const LoadOptions& options) {
  ModelFolder m;
  m.dir = dir;
  m.config = load_model_config(dir);
  auto load_stage = [&](const char* file, const std::vector<ParamSpec>& specs) {
    StateDict sd = load_state_dict(require(dir / file, "checkpoint"));
    check_state_dict(sd, specs);
    return sd;
  };
  if (options.llm) m.llm = load_stage("llm.pt", llm_param_specs(m.config.llm));
  if (options.flow) m.flow = load_stage("flow.pt", flow_param_specs(m.config.flow));
  if (options.hift) m.hift = load_stage("hift.pt", hift_param_specs(m.config.hift));
  if (options.voices && std::filesystem::exists(dir / "spk2info.pt")) {
    m.voices = load_voices(dir / "spk2info.pt", m.config);
  }
  std::vector<std::shared_ptr<const ZipArchive>> archives;
  for (const StateDict* sd : {&m.llm, &m.flow, &m.hift}) {
    if (sd->archive) archives.push_back(sd->archive);
  }
  if (options.verify_in_background) {
    m.verification = std::async(std::launch::async, [archives] {
                       verify_zip_entries(archives, ThreadPool::global());
                     }).share();
  } else {
    verify_zip_entries(archives, ThreadPool::global());
  }
  return m;
}

void ModelFolder::wait_verified() const {
  if (verification.valid()) verification.get();  // rethrows the check's Error
}

}  // namespace cosy
