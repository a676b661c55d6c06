// End-to-end: runs the cosyserve binary as a user would and checks output and exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/test_support.h"
#include "io/audio_file.h"
#include "io/npy.h"
#include "model/model_folder.h"
#include "text/text_frontend.h"
#include "tools/cli_test_util.h"

namespace {

using cosy::tools::testing::Result;
using cosy::tools::testing::run;
using cosy::tools::testing::tiny_model;

TEST(Cli, InspectPrintsEveryStageOfTheFixtureModel) {
  COSY_NEED_GOLDEN();
  const Result r = run("inspect --model " + (cosy::testing::golden_dir() / "model").string());
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* s :
       {"llm (llm.pt)", "flow (flow.pt)", "hift (hift.pt)", "parameters", "dtype", "bytes",
        "qwen.hidden_size", "static_chunk_size", "upsample_rates", "voices"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  }
}

TEST(Cli, MakeModelThenInspectJson) {
  const auto dir = cosy::testing::scratch_dir("cli-make-model");
  Result made = run("make-model --preset tiny --seed 5 --out " + (dir / "m").string());
  ASSERT_EQ(made.code, 0) << made.out;
  const Result r = run("inspect --json --model " + (dir / "m").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["llm"]["parameters"].get<int64_t>(), 0);
  EXPECT_EQ(j["voices"].size(), 1u);
  EXPECT_TRUE(j["voices"][0]["zero_shot"].get<bool>());
}

TEST(Cli, VocodeWritesAWavOfTheMelsLength) {
  COSY_NEED_GOLDEN();
  const auto dir = cosy::testing::scratch_dir("cli-vocode");
  const auto golden = cosy::testing::golden_dir();
  const Result r = run("vocode --model " + (golden / "model").string() + " --mel " +
                       (golden / "cases" / "e2e_mel.npy").string() + " --seed 300 --out " +
                       (dir / "e2e.wav").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("RTF"), std::string::npos) << r.out;
  // One audio frame per mel frame's worth of samples, at the model's rate.
  const cosy::ModelConfig config = cosy::load_model_config(golden / "model");
  const int64_t frames = cosy::load_npy(golden / "cases" / "e2e_mel.npy").dim(2);
  const cosy::Audio audio = cosy::read_audio(dir / "e2e.wav");
  EXPECT_EQ(audio.sample_rate, config.sample_rate);
  EXPECT_EQ(int64_t(audio.samples.size()), frames * config.hift.samples_per_frame());
  // A mel with one channel too few is refused.
  const int64_t channels = config.hift.in_channels;
  cosy::save_npy(dir / "bad_mel.npy", cosy::Tensor::zeros(cosy::DType::F32, {1, channels - 1, 10}));
  const Result bad = run("vocode --model " + (golden / "model").string() + " --mel " +
                         (dir / "bad_mel.npy").string() + " --out " + (dir / "x.wav").string());
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("expected a (1, " + std::to_string(channels) + ", T) mel"),
            std::string::npos)
      << bad.out;
  const Result unwritable =
      run("vocode --model " + (golden / "model").string() + " --mel " +
          (golden / "cases" / "e2e_mel.npy").string() + " --out /nonexistent-dir/x.wav");
  EXPECT_EQ(unwritable.code, 1);
  EXPECT_NE(unwritable.out.find("cannot write audio"), std::string::npos) << unwritable.out;
}

TEST(Cli, SynthOfflineStreamingAndIncrementalWriteTheForcedLength) {
  const auto dir = cosy::testing::scratch_dir("cli-synth");
  const std::string model = "synth --model " + tiny_model().string() +
                            " --fixed-tokens 40 --text 'Hello world. How are you today?' ";
  // 40 tokens per segment, 2 mel frames each, 480 samples per frame.
  const Result offline = run(model + "--out " + (dir / "a.wav").string());
  ASSERT_EQ(offline.code, 0) << offline.out;
  const cosy::Audio a = cosy::read_audio(dir / "a.wav");
  EXPECT_EQ(a.sample_rate, 24000);
  ASSERT_FALSE(a.samples.empty());
  EXPECT_EQ(a.samples.size() % (size_t{40} * 960), 0u);
  const Result streamed =
      run(model + "--stream --first-hop 15 --format pcm --out " + (dir / "b.pcm").string());
  ASSERT_EQ(streamed.code, 0) << streamed.out;
  EXPECT_NE(streamed.out.find("first chunk after"), std::string::npos) << streamed.out;
  EXPECT_EQ(std::filesystem::file_size(dir / "b.pcm"), 2 * a.samples.size());
  const Result half =
      run(model + "--stream --half-state --format pcm --out " + (dir / "h.pcm").string());
  ASSERT_EQ(half.code, 0) << half.out;
  EXPECT_EQ(std::filesystem::file_size(dir / "h.pcm"), 2 * a.samples.size());
  EXPECT_EQ(run(model + "--half-state --out " + (dir / "x.wav").string()).code, 2);
  // A bounded flow left context: the same length of audio streamed; refused offline and
  // below -1.
  const Result bounded =
      run(model + "--stream --flow-left-chunks 1 --format pcm --out " + (dir / "l.pcm").string());
  ASSERT_EQ(bounded.code, 0) << bounded.out;
  EXPECT_EQ(std::filesystem::file_size(dir / "l.pcm"), 2 * a.samples.size());
  EXPECT_EQ(run(model + "--flow-left-chunks 1 --out " + (dir / "x.wav").string()).code, 2);
  const Result below =
      run(model + "--stream --flow-left-chunks -3 --out " + (dir / "x.wav").string());
  EXPECT_EQ(below.code, 2);
  EXPECT_NE(below.out.find("error: --flow-left-chunks"), std::string::npos) << below.out;
  const Result incremental = run(model + "--stream --incremental --seed 4 --format flac --out " +
                                 (dir / "c.flac").string());
  ASSERT_EQ(incremental.code, 0) << incremental.out;
  EXPECT_FALSE(cosy::read_audio(dir / "c.flac").samples.empty());
}

// --segment-per-line: the user's split wins; the forced length shows one LM run per line.
TEST(Cli, SynthSegmentPerLineUsesTheUsersSplit) {
  const auto dir = cosy::testing::scratch_dir("cli-synth-lines");
  const std::string base = "synth --model " + tiny_model().string() + " --fixed-tokens 20 ";
  {
    std::ofstream f(dir / "t.txt");
    f << "Hello there\n\nHow are you today\n...\nFine, 3 cats.\n";
  }
  const Result r = run(base + "--segment-per-line --text-file " + (dir / "t.txt").string() +
                       " --out " + (dir / "a.wav").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("3 segment(s)"), std::string::npos) << r.out;
  EXPECT_EQ(cosy::read_audio(dir / "a.wav").samples.size(), 3u * 20 * 960);
  const Result bad =
      run(base + "--segment-per-line --incremental --text hi --out " + (dir / "b.wav").string());
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("exclude each other"), std::string::npos) << bad.out;
}

TEST(Cli, SynthBadInputIsAClearError) {
  const auto dir = cosy::testing::scratch_dir("cli-synth-bad");
  const std::string model = "synth --model " + tiny_model().string() + " ";
  const std::string out = " --out " + (dir / "x.wav").string();
  auto expect_error = [](const Result& r, const std::string& what, int code = 1) {
    EXPECT_EQ(r.code, code) << r.out;
    EXPECT_NE(r.out.find(what), std::string::npos) << r.out;
  };
  expect_error(run(model + "--voice nobody --text hi" + out), "no voice 'nobody'");
  expect_error(run(model + "--text '   '" + out), "--text: holds only white space");
  expect_error(run(model + "--text hi --out /nonexistent-dir/x.wav"), "cannot write audio");
  expect_error(run(model + "--text hi --prompt-wav p.wav --prompt-text hello" + out), "p.wav");
  expect_error(run(model + "--text hi --weights int4" + out), "error: --weights: int4", 2);
  // Text with nothing to speak is refused the same way whole or word by word.
  for (const char* mode : {"", "--incremental ", "--stream --incremental "}) {
    // (sh's printf: zero-width spaces, control characters)
    for (const char* text :
         {"'!!!'", "'😀 🎉'", "'?? ... !'", "\"$(printf '\\342\\200\\213\\342\\200\\213')\"",
          "\"$(printf '\\001\\002')\""}) {
      expect_error(run(model + mode + "--text " + text + out), "nothing to speak");
    }
  }
  expect_error(run(model + "--text-file " + dir.string() + out), "is a directory");
  expect_error(run(model + "--text-file /dev/null" + out), "the file is empty");
  expect_error(run(model + "--text-file " + (dir / "none.txt").string() + out),
               "No such file or directory");
  expect_error(run(model + out), "give the text with --text or --text-file", 2);
  EXPECT_FALSE(std::filesystem::exists(dir / "x.wav"));  // nothing half-written left
  // A folder missing a checkpoint names it.
  const auto broken = dir / "broken";
  std::filesystem::copy(tiny_model(), broken, std::filesystem::copy_options::recursive);
  std::filesystem::remove(broken / "flow.pt");
  expect_error(run("synth --model " + broken.string() + " --text hi" + out), "flow.pt");
}

TEST(Cli, BenchPrintsStagesAndWritesJson) {
  const auto dir = cosy::testing::scratch_dir("cli-bench");
  const Result r =
      run("bench --model " + tiny_model().string() + " --tokens 20 --first-hop 15 " +
          "--first-chunk-repeats 2 --memory-cache-mb 16 --json " + (dir / "b.json").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("first chunk"), std::string::npos) << r.out;
  std::ifstream in(dir / "b.json");
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["stages"].size(), 3u);
  for (const auto& s : j["stages"]) {
    for (const char* k : {"stage", "seconds", "rtf", "gflops", "peak_frac"})
      EXPECT_TRUE(s.contains(k)) << k;
    EXPECT_GT(s["seconds"].get<double>(), 0);
  }
  EXPECT_EQ(j["stages"][0]["stage"], "llm");
  EXPECT_DOUBLE_EQ(j["audio_s"].get<double>(), 20 * 0.04);
  EXPECT_GT(j["rtf_total"].get<double>(), 0);
  EXPECT_GT(j["first_chunk_s"].get<double>(), 0);
  // Each run's quality report (the guard off here: its counts, no repairs).
  EXPECT_EQ(j["quality"]["guard"], false);
  EXPECT_EQ(j["quality"]["speech_tokens"], 20);
  EXPECT_EQ(j["quality"]["actions"]["masked"], 0);
  EXPECT_NE(r.out.find("first chunk over 3 streams"), std::string::npos) << r.out;
  // The streaming run's latency and its two repeats (streams cancelled at their first chunk).
  const auto& streaming = j["runs"][1];
  ASSERT_EQ(streaming["first_chunk_runs_s"].size(), 3u);
  for (const auto& t : streaming["first_chunk_runs_s"]) EXPECT_GT(t.get<double>(), 0);
  EXPECT_GT(j["first_chunk_median_s"].get<double>(), 0);
  // The voice warm-up's first chunk has the run's shape: it keeps the CFG first pass that
  // the run and both repeats then take.
  EXPECT_EQ(streaming["uncond_first_pass_hits"], 3);
  // The offline run left the voice's LM prefix for the streaming run.
  EXPECT_GT(streaming["lm_prefix_rows"].get<int64_t>(), 0);
  EXPECT_EQ(j["first_hop"], 15);
  EXPECT_EQ(j["weights"], "fp32");
  EXPECT_GT(j["peak_rss_mb"].get<double>(), 0);
  EXPECT_NE(run("bench --model " + tiny_model().string() + " --tokens 0").code, 0);
  EXPECT_NE(run("bench --model " + tiny_model().string() + " --first-chunk-repeats -1").code, 0);
  EXPECT_NE(run("bench --model " + tiny_model().string() + " --memory-cache-mb -1").code, 0);
  EXPECT_NE(run("bench --model " + tiny_model().string() + " --uncond-first-passes -1").code, 0);
  EXPECT_NE(run("bench --model " + tiny_model().string() + " --lm-voice-prefixes -1").code, 0);
}

TEST(Cli, TokenizeShowsSegmentsAndIds) {
  const Result r = run("tokenize --json --model " + tiny_model().string() +
                       " 'Hello world. [breath] How are you?'");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["normalized"], "Hello world. [breath] How are you?");
  ASSERT_GE(j["segments"].size(), 1u);
  const int breath_id = cosy::text::TextFrontend::load(tiny_model() / "CosyVoice-BlankEN")
                            .tokenizer()
                            .token_id("[breath]");
  ASSERT_GE(breath_id, 0);
  bool breath = false;
  for (const auto& s : j["segments"]) {
    for (const auto& id : s["ids"]) breath = breath || id.get<int>() == breath_id;
  }
  EXPECT_TRUE(breath);
  const Result plain = run("tokenize --model " + tiny_model().string() + " '你好 world.'");
  ASSERT_EQ(plain.code, 0) << plain.out;
  EXPECT_NE(plain.out.find("normalized: 你好world。"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("ids:"), std::string::npos);
  // Invalid UTF-8 (a lone 0xff byte) is a clear error.
  const Result bad = run("tokenize --model " + tiny_model().string() + " \"$(printf '\\377')\"");
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_NE(bad.out.find("invalid UTF-8"), std::string::npos) << bad.out;
}

// A model made to loop (make-model --hazard loop) holds and repeats tokens; synth --guard
// masks what goes over the bounds and says so in its quality line. Without --guard the same
// line reports the guard off and nothing masked.
TEST(Cli, SynthGuardRepairsALoopingModelAndReportsIt) {
  const auto dir = cosy::testing::scratch_dir("cli-guard");
  const Result made =
      run("make-model --preset tiny --seed 2 --hazard loop --out " + (dir / "m").string());
  ASSERT_EQ(made.code, 0) << made.out;
  EXPECT_NE(made.out.find("biased to loop"), std::string::npos) << made.out;
  const std::string synth = "synth --model " + (dir / "m").string() +
                            " --text 'Hello there, how are you today?' --out " +
                            (dir / "a.wav").string();
  const Result plain = run(synth);
  ASSERT_EQ(plain.code, 0) << plain.out;
  EXPECT_NE(plain.out.find("quality: guard off; "), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("masked 0,"), std::string::npos) << plain.out;
  const Result guarded = run(synth + " --stream --guard --guard-max-run 6");
  ASSERT_EQ(guarded.code, 0) << guarded.out;
  EXPECT_NE(guarded.out.find("quality: guard on; "), std::string::npos) << guarded.out;
  EXPECT_EQ(guarded.out.find("masked 0,"), std::string::npos) << guarded.out;
  const Result beams = run(synth + " --stream --guard --guard-max-run 6 --num-beams 3");
  ASSERT_EQ(beams.code, 0) << beams.out;
  EXPECT_NE(beams.out.find("quality: guard on; "), std::string::npos) << beams.out;
  EXPECT_EQ(run(synth + " --num-beams 17").code, 2);
  const Result bad = run(synth + " --guard --guard-loop-repeats 1");
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_NE(bad.out.find("loop_repeats (K) must be >= 2"), std::string::npos) << bad.out;
  const Result silent = run(synth + " --guard --guard-silent-tokens 3,99999");
  EXPECT_EQ(silent.code, 1) << silent.out;
  EXPECT_NE(silent.out.find("silent token 99999"), std::string::npos) << silent.out;
  EXPECT_NE(run("make-model --hazard chaos --out " + (dir / "x").string()).code, 0);
}

// audit: every reduced format against fp32 on a clean model (close, nothing flagged), and a
// model whose weights carry fp16 hazards (make-model --hazard fp16): both are flagged.
TEST(Cli, AuditComparesFormatsAndFlagsFp16Hazards) {
  const auto dir = cosy::testing::scratch_dir("cli-audit");
  const std::string fast = " --texts 1 --max-token-text-ratio 3 --formats fp16,int8 --json ";
  const Result clean =
      run("audit --model " + tiny_model().string() + fast + (dir / "a.json").string());
  ASSERT_EQ(clean.code, 0) << clean.out;
  EXPECT_NE(clean.out.find("llm int8: teacher-forced top-1 agreement"), std::string::npos)
      << clean.out;
  std::ifstream in(dir / "a.json");
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["formats"].size(), 2u);
  for (const auto& f : j["formats"]) {
    const double agreement = f["llm"]["top1_agreement"];
    EXPECT_GT(agreement, 0.9) << f;  // random weights: near-ties are the only disagreements
    EXPECT_LE(agreement, 1.0) << f;
    EXPECT_EQ(f["llm"]["nonfinite_logits"], 0);
    EXPECT_GT(f["audio"]["mel_snr_db"].get<double>(), 20) << f;
    EXPECT_GT(f["audio"]["audio_snr_db"].get<double>(), 20) << f;
    EXPECT_EQ(f["audio"]["nonfinite"], 0);
  }
  EXPECT_EQ(j["formats"][0]["format"], "fp16");
  EXPECT_EQ(j["hazards_flagged"], 0) << j["hazards"];

  const Result made =
      run("make-model --preset tiny --seed 3 --hazard fp16 --out " + (dir / "h").string());
  ASSERT_EQ(made.code, 0) << made.out;
  const Result risky =
      run("audit --model " + (dir / "h").string() + fast + (dir / "h.json").string());
  ASSERT_EQ(risky.code, 0) << risky.out;
  std::ifstream hin(dir / "h.json");
  const auto h = nlohmann::json::parse(hin);
  std::set<std::string> flagged;
  for (const auto& x : h["hazards"]) {
    if (x["flagged"].get<bool>()) flagged.insert(x["kind"].get<std::string>());
  }
  EXPECT_EQ(flagged, (std::set<std::string>{"attention_logit_bound", "snake_alpha"}))
      << h["hazards"];
  EXPECT_NE(risky.out.find("HAZARD hift snake_alpha"), std::string::npos) << risky.out;
  EXPECT_EQ(run("audit --model " + tiny_model().string() + " --formats fp32").code, 2);
  EXPECT_EQ(run("audit --model " + tiny_model().string() + " --formats fp8").code, 1);
}

TEST(Cli, BadInputExitsNonZeroWithOneClearLine) {
  const auto dir = cosy::testing::scratch_dir("cli-bad");
  const Result missing = run("inspect --model " + dir.string());
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("error: " + dir.string() + ": no cosyvoice2.yaml or cosyvoice3.yaml"),
            std::string::npos)
      << missing.out;
  EXPECT_NE(run("inspect").code, 0);
  EXPECT_NE(run("make-model --preset enormous --out " + dir.string()).code, 0);
  EXPECT_NE(run("no-such-command").code, 0);
}

}  // namespace
