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

ModelFamily model_folder_family(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir))
    fail(dir.string(), ": not a directory (expected a CosyVoice2 or CosyVoice3 model folder)");
  // The official AutoModel's order: cosyvoice.yaml, cosyvoice2.yaml, cosyvoice3.yaml.
  if (std::filesystem::exists(dir / "cosyvoice.yaml"))
    fail(dir.string(),
         ": holds cosyvoice.yaml, a CosyVoice (version 1) folder; cosyserve serves "
         "CosyVoice2 and CosyVoice3 folders");
  if (std::filesystem::exists(dir / "cosyvoice2.yaml")) return ModelFamily::CosyVoice2;
  if (std::filesystem::exists(dir / "cosyvoice3.yaml")) return ModelFamily::CosyVoice3;
  fail(dir.string(),
       ": no cosyvoice2.yaml or cosyvoice3.yaml (the model's hyperparameters); is "
       "this a CosyVoice2 or CosyVoice3 model folder?");
}

ModelConfig load_model_config(const std::filesystem::path& dir) {
  const ModelFamily family = model_folder_family(dir);
  const auto yaml_path =
      dir / (family == ModelFamily::CosyVoice3 ? "cosyvoice3.yaml" : "cosyvoice2.yaml");
  const auto qwen_path =
      require(dir / "CosyVoice-BlankEN" / "config.json", "the Qwen2 hyperparameters");
  const QwenConfig qwen = parse_qwen_config(read_whole_file(qwen_path), qwen_path.string());
  return parse_model_config(yaml::load(yaml_path), qwen, family);
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

text::TextFrontend load_text_frontend(const std::filesystem::path& dir, ModelFamily family) {
  return text::TextFrontend::load(dir / "CosyVoice-BlankEN", family == ModelFamily::CosyVoice3
                                                                 ? text::TextFlavor::CosyVoice3
                                                                 : text::TextFlavor::CosyVoice2);
}

}  // namespace cosy
