// Writes the seed corpora for the fuzzers from the fixtures and small files of our own.
// Usage: make_seeds GOLDEN_DIR OUT_DIR  (creates
// OUT_DIR/{zip,pickle,yaml,npy,safetensors,tokenizer,speech_request,onnx,prompt_audio,form_data,
// ws_session})
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "io/audio_file.h"
#include "io/mapped_file.h"
#include "io/npy.h"
#include "io/torch_checkpoint.h"
#include "io/zip_reader.h"
#include "model/model_writer.h"
#include "onnx/graph_builder.h"

namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s GOLDEN_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path golden = argv[1], out = argv[2];
  try {
    for (const char* d : {"zip", "pickle", "yaml", "npy", "safetensors", "tokenizer",
                          "speech_request", "onnx", "prompt_audio", "form_data", "ws_session"}) {
      fs::create_directories(out / d);
    }
    // zip + pickle: the fixture checkpoints and their data.pkl, and a small file of ours.
    for (const char* f : {"llm.pt", "flow.pt", "hift.pt"}) {
      const fs::path src = golden / "model" / f;
      fs::copy_file(src, out / "zip" / f, fs::copy_options::overwrite_existing);
      cosy::ZipArchive zip(cosy::map_file(src), src.string());
      for (const auto& e : zip.entries()) {
        if (e.name.size() > 9 && e.name.compare(e.name.size() - 9, 9, "/data.pkl") == 0) {
          write(out / "pickle" / (std::string(f) + ".pkl"), zip.read(e).text());
        }
      }
    }
    cosy::Tensor t = cosy::Tensor::zeros(cosy::DType::F32, {2, 3});
    cosy::save_state_dict(out / "zip" / "small.pt", "small", {{"a", t}, {"b", t}});
    cosy::ZipArchive small(cosy::map_file(out / "zip" / "small.pt"), "small.pt");
    write(out / "pickle" / "small.pkl", small.read(*small.find("small/data.pkl")).text());
    // yaml: the fixture's and our writer's.
    fs::copy_file(golden / "model" / "cosyvoice2.yaml", out / "yaml" / "fixture.yaml",
                  fs::copy_options::overwrite_existing);
    write(out / "yaml" / "tiny.yaml", cosy::model_yaml(cosy::preset_config("tiny")));
    write(out / "yaml" / "cosyvoice3-tiny.yaml",
          cosy::model_yaml(cosy::preset_config("cosyvoice3-tiny")));
    // npy: the small fixture cases.
    for (const auto& e : fs::directory_iterator(golden / "cases")) {
      if (e.path().extension() == ".npy" && fs::file_size(e.path()) <= 8192) {
        fs::copy_file(e.path(), out / "npy" / e.path().filename(),
                      fs::copy_options::overwrite_existing);
      }
    }
    write(out / "npy" / "ours.npy", cosy::npy_bytes(t));
    // safetensors: a small valid file.
    const std::string header =
        R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"format":"pt"}})";
    std::string st(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(st.data(), &n, 8);
    st += header + std::string(16, '\0');
    write(out / "safetensors" / "small.safetensors", st);
    // tokenizer: the texts of the fixture cases, one file each.
    std::ifstream cases(golden / "tokenizer" / "cases.jsonl");
    std::string line;
    for (int i = 0; std::getline(cases, line); ++i) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("text") && j["text"].is_string()) {
        write(out / "tokenizer" / ("case" + std::to_string(i) + ".txt"),
              j["text"].get<std::string>());
      }
    }
    // ...and written forms for the normalisers to read.
    const char* written[] = {"共1,234.5元，增长50%-60%，2024-03-05 10:30:15打13812345678。",
                             "On 03/05/2024 at 9:05 pm, $1.50 bought 2.5kg; call (555) 123-4567.",
                             "-5℃ 3/4 1st 1990s ¥100 £3 €2.5万 +86 010-12345678 ５０％"};
    for (size_t i = 0; i < std::size(written); ++i)
      write(out / "tokenizer" / ("written" + std::to_string(i) + ".txt"), written[i]);
    // speech requests: OpenAI's and the extensions' fields.
    const char* requests[] = {
        R"({"model":"cosyvoice2","input":"Hello there.","voice":"v"})",
        R"({"model":"cosyvoice2","input":"你好","voice":{"id":"v"},"response_format":"wav","stream":true})",
        R"({"model":"cosyvoice2","input":"hi","voice":"v","seed":7,"temperature":0.8,"top_p":0.7,"top_k":10,"sampling":"top-k","speed":1.0,"stream_format":"sse","instructions":""})"};
    for (size_t i = 0; i < std::size(requests); ++i)
      write(out / "speech_request" / ("request" + std::to_string(i) + ".json"), requests[i]);
    write(
        out / "speech_request" / "ref_audio.json",
        R"({"model":"cosyvoice2","input":"hi","ref_audio":"data:audio/wav;base64,UklGRiQAAABXQVZF","ref_text":"hi","instructions":"slowly"})");

    // onnx: small graphs of our own builder (the fixture models exceed the length limit).
    {
      cosy::onnx::GraphBuilder g("seed", 17);
      const std::string x = g.input("x", cosy::DType::F32, {std::string("N"), int64_t{4}});
      cosy::Tensor w = cosy::Tensor::zeros(cosy::DType::F32, {4, 3});
      const std::string y = g.node("Relu", {g.node("MatMul", {x, g.weight("w", w)})});
      const std::string z = g.node("Reshape", {y, g.ints({-1})});
      g.output(z, cosy::DType::F32, {std::string("M")});
      write(out / "onnx" / "matmul.onnx", g.serialize());
      cosy::onnx::GraphBuilder c("conv", 14);
      const std::string in =
          c.input("input", cosy::DType::F32, {int64_t{1}, int64_t{2}, std::string("T")});
      const std::string conv =
          c.node("Conv", {in, c.weight("k", cosy::Tensor::zeros(cosy::DType::F32, {2, 2, 3}))},
                 {{"pads", std::vector<int64_t>{1, 1}}});
      const std::string pooled =
          c.node("AveragePool", {conv},
                 {{"kernel_shape", std::vector<int64_t>{2}}, {"ceil_mode", int64_t{1}}});
      c.output(pooled, cosy::DType::F32, {int64_t{1}, int64_t{2}, std::string("U")});
      write(out / "onnx" / "conv.onnx", c.serialize());
    }
    // prompt audio: short files in the formats uploads come in.
    {
      std::vector<float> tone(1600);
      for (size_t i = 0; i < tone.size(); ++i)
        tone[i] = 0.3f * static_cast<float>(std::sin(0.05 * static_cast<double>(i)));
      cosy::write_audio(out / "prompt_audio" / "tone.wav", tone, 16000, cosy::AudioFormat::Wav);
      cosy::write_audio(out / "prompt_audio" / "tone.flac", tone, 16000, cosy::AudioFormat::Flac);
      cosy::write_audio(out / "prompt_audio" / "tone-float.wav", tone, 22050,
                        cosy::AudioFormat::WavFloat);
    }
    write(out / "form_data" / "voice.txt",
          "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nmine\r\n"
          "--XyZ\r\nContent-Disposition: form-data; name=\"audio_sample\"; filename=\"a.wav\"\r\n"
          "Content-Type: audio/wav\r\n\r\nRIFF\0\0\0\0WAVE\r\n--XyZ--\r\n");
    // WebSocket sessions: one message per line.
    const char* sessions[] = {
        "{\"type\":\"session.config\",\"model\":\"cosyvoice2\",\"voice\":\"random_voice\",\"text_"
        "streaming\":\"token\"}\n"
        "{\"type\":\"input.text\",\"text\":\"Hi there. "
        "\"}\n{\"type\":\"input.done\"}\n{\"type\":\"session.close\"}",
        "{\"type\":\"session.config\",\"model\":\"cosyvoice2\",\"voice\":\"random_voice\"}\n"
        "{\"type\":\"input.text\",\"text\":\"One\"}\n{\"type\":\"input.flush\"}\n{\"type\":"
        "\"cancel\"}\n{\"type\":\"input.done\"}",
        "{\"type\":\"input.text\",\"text\":\"no config\"}",
        "\x01binary",
    };
    for (size_t i = 0; i < std::size(sessions); ++i)
      write(out / "ws_session" / ("session" + std::to_string(i) + ".txt"), sessions[i]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
