// `cosyserve voice add | list | remove` and `synth --prompt-wav`, end to end with the
// fixture set's two ONNX models and recordings, and every kind of bad prompt.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <numbers>

#include "cli_test_util.h"
#include "core/file_io.h"
#include "io/audio_file.h"
#include "io/npy.h"
#include "model/model_folder.h"
#include "model/voices.h"

namespace cosy::tools {
namespace {

namespace fs = std::filesystem;
using testing::Result;
using testing::run;

// A tiny make-model folder (with its starter tokenizer) plus the fixture set's ONNX files.
fs::path voice_model(const std::string& name) {
  const fs::path d = cosy::testing::scratch_dir("cli-voice-" + name);
  const Result r = run("make-model --preset tiny --seed 4 --no-voices --out " + d.string());
  EXPECT_EQ(r.code, 0) << r.out;
  for (const char* f : {"speech_tokenizer_v2.onnx", "campplus.onnx"}) {
    fs::copy_file(cosy::testing::golden_dir() / "model" / f, d / f,
                  fs::copy_options::overwrite_existing);
  }
  return d;
}

fs::path cases() { return cosy::testing::golden_dir() / "cases"; }

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

TEST(CliVoice, AddListSynthRemove) {
  COSY_NEED_GOLDEN();
  const fs::path m = voice_model("add");
  const fs::path wav = cases() / "fe_mono_prompt.wav";
  Result r = run("voice add --model " + q(m) + " --wav " + q(wav) +
                 " --text 'Please call Stella, ask her to come.' --id stella");
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("voice add --model " + q(m) + " --wav " + q(wav) + " --text 'again' --id stella");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("already"), std::string::npos) << r.out;
  r = run("voice list --model " + q(m));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("stella\tzero-shot"), std::string::npos) << r.out;

  // What was written reads back as the official frontend's arrays for this recording.
  const ModelFolder folder = load_model_folder(m);
  ASSERT_TRUE(folder.voices.has_value());
  const Voice* v = folder.voices->find("stella");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->find("llm_prompt_speech_token")->to_int_vector(),
            load_npy(cases() / "fe_mono_prompt_speech_token.npy").to_int_vector());
  const std::vector<float> feat = v->find("prompt_speech_feat")->to_float_vector();
  const std::vector<float> want_feat =
      load_npy(cases() / "fe_mono_prompt_speech_feat.npy").to_float_vector();
  ASSERT_EQ(feat.size(), want_feat.size());
  for (size_t i = 0; i < feat.size(); ++i) ASSERT_NEAR(feat[i], want_feat[i], 5e-4) << i;
  const std::vector<float> emb = v->find("flow_embedding")->to_float_vector();
  const std::vector<float> want_emb = load_npy(cases() / "fe_mono_embedding.npy").to_float_vector();
  ASSERT_EQ(emb.size(), want_emb.size());
  float scale = 1;
  for (float x : want_emb) scale = std::max(scale, std::fabs(x));
  for (size_t i = 0; i < emb.size(); ++i) ASSERT_NEAR(emb[i], want_emb[i], 1.1e-4 * scale) << i;
  EXPECT_EQ(v->find("prompt_speech_feat_len")->to_int_vector()[0],
            static_cast<int64_t>(feat.size()) / folder.config.flow.output_size);

  // The stored voice and the same recording given as a one-off prompt speak identically.
  const fs::path a = m / "a.wav";
  const fs::path b = m / "b.wav";
  r = run("synth --model " + q(m) +
          " --voice stella --text 'Hello there.' --seed 5 --fixed-tokens 30 --out " + q(a));
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("synth --model " + q(m) + " --prompt-wav " + q(wav) +
          " --prompt-text 'Please call Stella, ask her to come.' --text 'Hello there.' --seed 5 "
          "--fixed-tokens 30 --out " +
          q(b));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_whole_file(a), read_whole_file(b));

  // The modes and speed change what is spoken: other tokens, or other lengths.
  const fs::path cl = m / "cl.wav";
  const fs::path inst = m / "inst.wav";
  const fs::path fast = m / "fast.wav";
  r = run("synth --model " + q(m) +
          " --voice stella --cross-lingual --text 'Hello there.' --seed 5 --out " + q(cl));
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("synth --model " + q(m) + " --prompt-wav " + q(wav) +
          " --instruct 'Speak slowly.' --text 'Hello there.' --seed 5 --out " + q(inst));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(read_whole_file(cl), read_whole_file(a));
  EXPECT_NE(read_whole_file(inst), read_whole_file(a));
  r = run("synth --model " + q(m) +
          " --voice stella --text 'Hello there.' --seed 5 --fixed-tokens 30 --speed 2 --out " +
          q(fast));
  ASSERT_EQ(r.code, 0) << r.out;
  // 30 tokens of token_mel_ratio frames each, int(frames / 2) at speed 2, of
  // samples_per_frame 16-bit samples after the 44-byte WAV header.
  const auto frames = static_cast<uint64_t>(30 * folder.config.token_mel_ratio);
  const auto frame_bytes = static_cast<uint64_t>(folder.config.hift.samples_per_frame()) * 2;
  EXPECT_EQ(fs::file_size(a) - 44, frames * frame_bytes);
  EXPECT_EQ(fs::file_size(fast) - 44, frames / 2 * frame_bytes);

  r = run("voice remove --model " + q(m) + " --id stella");
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("voice list --model " + q(m));
  EXPECT_EQ(r.out.find("stella"), std::string::npos) << r.out;
  r = run("voice remove --model " + q(m) + " --id stella");
  EXPECT_EQ(r.code, 1) << r.out;
}

std::vector<float> tone(int rate, double seconds, float amplitude) {
  std::vector<float> v(static_cast<size_t>(rate * seconds));
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = amplitude * static_cast<float>(
                           std::sin(2 * std::numbers::pi * 220.0 * static_cast<double>(i) / rate));
  }
  return v;
}

TEST(CliVoice, BadPromptsGetOneClearError) {
  COSY_NEED_GOLDEN();
  const fs::path m = voice_model("bad");
  const fs::path d = cosy::testing::scratch_dir("cli-voice-bad-inputs");
  write_whole_file(d / "text.wav", "this is not audio at all, just words in a file named .wav\n");
  write_whole_file(d / "empty.wav", "");
  write_audio(d / "8k.wav", tone(8000, 2.0, 0.5f), 8000, AudioFormat::Wav);
  write_audio(d / "long.wav", tone(16000, 31.0, 0.5f), 16000, AudioFormat::Wav);
  write_audio(d / "silent.wav", std::vector<float>(32000, 0.0f), 16000, AudioFormat::Wav);
  std::vector<float> nan = tone(16000, 2.0, 0.5f);
  nan[100] = std::numeric_limits<float>::quiet_NaN();
  write_audio(d / "nan.wav", nan, 16000, AudioFormat::WavFloat);
  write_audio(d / "good.wav", tone(16000, 2.0, 0.5f), 16000, AudioFormat::Wav);
  struct Case {
    std::string args;
    std::string message;
  };
  const std::vector<Case> cases_ = {
      {"--wav " + q(d / "text.wav") + " --text hi", "not a readable audio file"},
      {"--wav " + q(d / "empty.wav") + " --text hi", "empty"},
      {"--wav " + q(d / "missing.wav") + " --text hi", "missing.wav"},
      {"--wav " + q(d / "8k.wav") + " --text hi", "at least 16000 Hz"},
      {"--wav " + q(d / "long.wav") + " --text hi", "at most 30 s"},
      {"--wav " + q(d / "silent.wav") + " --text hi", "silent"},
      {"--wav " + q(d / "nan.wav") + " --text hi", "NaN"},
      {"--wav " + q(d / "good.wav") + " --text ''", "transcript is empty"},
      {"--wav " + q(d / "good.wav") + " --text '   '", "transcript is empty"},
  };
  for (const Case& c : cases_) {
    const Result r = run("voice add --model " + q(m) + " --id x " + c.args);
    EXPECT_EQ(r.code, 1) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << "\n" << r.out;
  }
  Result r =
      run("voice add --model " + q(m) + " --id 'bad/id' --wav " + q(d / "good.wav") + " --text hi");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_FALSE(fs::exists(m / "spk2info.pt"));

  // ONNX files that are not the expected ones.
  const std::string tokenizer =
      read_whole_file(cosy::testing::golden_dir() / "model" / "speech_tokenizer_v2.onnx");
  const std::string campplus =
      read_whole_file(cosy::testing::golden_dir() / "model" / "campplus.onnx");
  auto with_tokenizer = [&](const std::string& bytes, const std::string& message) {
    write_whole_file(m / "speech_tokenizer_v2.onnx", bytes);
    const Result res =
        run("voice add --model " + q(m) + " --id x --wav " + q(d / "good.wav") + " --text hi");
    EXPECT_EQ(res.code, 1) << message << "\n" << res.out;
    EXPECT_NE(res.out.find(message), std::string::npos) << res.out;
  };
  with_tokenizer(tokenizer.substr(0, tokenizer.size() / 2), "truncated or corrupt");
  with_tokenizer(campplus, "expected the speech tokenizer");
  std::string renamed = tokenizer;
  // NodeProto.op_type is field 4, a length-delimited string: tag 0x22, length 4.
  const size_t at = renamed.find(std::string("\x22\x04Tanh"));
  ASSERT_NE(at, std::string::npos);
  renamed.replace(at + 2, 4, "Tanx");  // same length: the protobuf stays valid
  with_tokenizer(renamed, "operator Tanx is not supported");
  fs::remove(m / "speech_tokenizer_v2.onnx");
  r = run("voice add --model " + q(m) + " --id x --wav " + q(d / "good.wav") + " --text hi");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("has no speech_tokenizer_v2.onnx"), std::string::npos) << r.out;
}

TEST(CliVoice, SynthPromptOptionsGoTogether) {
  const Result r = run("synth --model /nonexistent --prompt-wav x.wav --text hi --out /dev/null");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--prompt-text"), std::string::npos) << r.out;
}

// A CosyVoice3 folder reads speech_tokenizer_v3.onnx through the same ONNX path: without it
// the voice is refused naming the file; with it (here the fixture's v2 network under v3's
// name: the same inputs and outputs), the voice is made, its prompt text is the official
// examples' instruction then the transcript, and it speaks.
TEST(CliVoice, CosyVoice3ReadsSpeechTokenizerV3) {
  COSY_NEED_GOLDEN();
  const fs::path m = cosy::testing::scratch_dir("cli-voice-cv3");
  Result r = run("make-model --preset cosyvoice3-tiny --seed 4 --no-voices --out " + m.string());
  ASSERT_EQ(r.code, 0) << r.out;
  fs::copy_file(cosy::testing::golden_dir() / "model" / "campplus.onnx", m / "campplus.onnx",
                fs::copy_options::overwrite_existing);
  const fs::path wav = cases() / "fe_mono_prompt.wav";
  const std::string add =
      "voice add --model " + q(m) + " --wav " + q(wav) + " --text 'Please call Stella.' --id s";
  r = run(add);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("speech_tokenizer_v3.onnx"), std::string::npos) << r.out;
  fs::copy_file(cosy::testing::golden_dir() / "model" / "speech_tokenizer_v2.onnx",
                m / "speech_tokenizer_v3.onnx", fs::copy_options::overwrite_existing);
  r = run(add);
  ASSERT_EQ(r.code, 0) << r.out;
  const ModelFolder folder = load_model_folder(m);
  ASSERT_TRUE(folder.voices.has_value());
  const Voice* v = folder.voices->find("s");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->find("llm_prompt_speech_token")->to_int_vector(),
            load_npy(cases() / "fe_mono_prompt_speech_token.npy").to_int_vector());
  const auto text = load_text_frontend(m, ModelFamily::CosyVoice3);
  EXPECT_EQ(v->find("prompt_text")->to_int_vector(), [&] {
    std::vector<int64_t> ids;
    for (const int32_t id :
         text.encode("You are a helpful assistant.<|endofprompt|>Please call Stella."))
      ids.push_back(id);
    return ids;
  }());
  r = run("synth --model " + q(m) + " --voice s --text 'Hello there.' --fixed-tokens 20 --out " +
          q(m / "a.wav"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_audio(m / "a.wav").samples.size(), 20u * 960);
}

}  // namespace
}  // namespace cosy::tools
