// End-to-end checks of what a new user meets first: a model folder that works alone, a
// corrupt checkpoint refused, every failed write reported, a valid file or none after
// Ctrl-C, limits and progress on long input, clear usage errors, help that matches what is
// accepted, and the output format taken from the file name.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>

#include "core/backend.h"
#include "io/audio_file.h"
#include "io/mapped_file.h"
#include "io/npy.h"
#include "io/zip_reader.h"
#include "model/model_folder.h"
#include "tools/cli_test_util.h"

namespace {

namespace fs = std::filesystem;
using cosy::tools::testing::Result;
using cosy::tools::testing::run;
using cosy::tools::testing::tiny_model;

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(CliFirstHour, MakeModelWritesAFolderThatWorksAloneForEveryCommand) {
  const auto dir = cosy::testing::scratch_dir("cli-alone");
  const std::string env = "env -u COSY_GOLDEN_DIR ";
  // No fixtures and no environment: make-model brings its own tokenizer.
  const std::string cli = env + COSY_CLI;
  const Result made =
      Result{std::system((cli + " make-model --preset tiny --out " + (dir / "m").string() + " > " +
                          (dir / "log").string() + " 2>&1")
                             .c_str()),
             read_file(dir / "log")};
  ASSERT_EQ(made.code, 0) << made.out;
  EXPECT_TRUE(contains(made.out, "starter tokenizer")) << made.out;
  const std::string m = " --model " + (dir / "m").string();
  for (const std::string& args :
       {"synth" + m + " --text 'Hello there.' --out " + (dir / "a.wav").string(),
        "synth" + m + " --text 'Hello there.' --stream --incremental --out " +
            (dir / "b.wav").string(),
        "tokenize" + m + " 'Hello there. 你好。'", "inspect" + m}) {
    const int code =
        std::system((cli + " " + args + " > " + (dir / "log").string() + " 2>&1").c_str());
    EXPECT_EQ(code, 0) << args << "\n" << read_file(dir / "log");
  }
  EXPECT_GT(cosy::read_audio(dir / "a.wav").samples.size(), 0u);
  EXPECT_GT(cosy::read_audio(dir / "b.wav").samples.size(), 0u);
}

// Flips 64 bytes in the middle of the largest tensor record of `file`.
void corrupt_a_record(const fs::path& file) {
  uint64_t offset = 0, size = 0;
  {
    const cosy::ZipArchive zip(cosy::map_file(file), file.string());
    for (const auto& e : zip.entries()) {
      if (contains(e.name, "/data/") && e.compressed_size > size) {
        size = e.compressed_size;
        offset = e.data_offset;
      }
    }
  }
  ASSERT_GT(size, 128u);
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset + size / 2));
  std::string bytes(64, '\0');
  f.read(bytes.data(), 64);
  for (char& c : bytes) c = static_cast<char>(~c);
  f.seekp(static_cast<std::streamoff>(offset + size / 2));
  f.write(bytes.data(), 64);
}

TEST(CliFirstHour, ACorruptCheckpointRecordIsRefusedByEveryCommand) {
  const auto dir = cosy::testing::scratch_dir("cli-corrupt");
  for (const char* file : {"llm.pt", "flow.pt", "hift.pt"}) {
    const fs::path m = dir / file;
    fs::copy(tiny_model(), m, fs::copy_options::recursive);
    corrupt_a_record(m / file);
    for (const std::string& args :
         {"synth --model " + m.string() + " --text hi --out " + (dir / "x.wav").string(),
          "inspect --model " + m.string()}) {
      const Result r = run(args);
      EXPECT_EQ(r.code, 1) << args << "\n" << r.out;
      EXPECT_TRUE(contains(r.out, std::string(file) + ": record '")) << r.out;
      EXPECT_TRUE(contains(r.out, "fails its CRC-32 check")) << r.out;
    }
    EXPECT_FALSE(fs::exists(dir / "x.wav"));
  }
}

// Every way of writing audio checks every write: a full device, and a file size limit.
TEST(CliFirstHour, FailedWritesAreErrorsNeverSuccess) {
  const auto dir = cosy::testing::scratch_dir("cli-write-fail");
  const int64_t channels = cosy::load_model_config(tiny_model()).hift.in_channels;
  cosy::save_npy(dir / "mel.npy", cosy::Tensor::zeros(cosy::DType::F32, {1, channels, 40}));
  const std::string synth =
      "synth --model " + tiny_model().string() + " --text 'Hello there.' --fixed-tokens 60 ";
  std::vector<std::string> commands;
  for (const char* format : {"wav", "wav-float", "flac", "pcm"}) {
    commands.push_back(synth + "--format " + format);
    commands.push_back(synth + "--stream --format " + format);
  }
  struct stat st {};
  const bool have_full = ::stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode);
  for (const auto& c : commands) {
    if (have_full) {
      const Result full = run(c + " --out /dev/full");
      EXPECT_EQ(full.code, 1) << c << "\n" << full.out;
      EXPECT_TRUE(contains(full.out, "No space left on device")) << c << "\n" << full.out;
      EXPECT_FALSE(contains(full.out, "wrote")) << full.out;
    }
    // A 4 KiB file size limit: the write that crosses it fails (EFBIG).
    const std::string limited = "bash -c \"trap '' XFSZ; ulimit -f 8; exec " +
                                std::string(COSY_CLI) + " " + c + " --out " +
                                (dir / "limited.out").string() + "\"";
    const int status = std::system((limited + " > " + (dir / "log").string() + " 2>&1").c_str());
    const std::string log = read_file(dir / "log");
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << c << "\n" << log;
    EXPECT_TRUE(contains(log, "File too large")) << c << "\n" << log;
  }
  if (have_full) {
    // vocode too; and a device is never removed as a half-written file would be.
    const Result v = run("vocode --model " + tiny_model().string() + " --mel " +
                         (dir / "mel.npy").string() + " --format pcm --out /dev/full");
    EXPECT_EQ(v.code, 1) << v.out;
    ASSERT_EQ(::stat("/dev/full", &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
  }
}

// The RIFF header's sizes against the file's size.
void expect_valid_wav(const fs::path& p) {
  const std::string d = read_file(p);
  ASSERT_GT(d.size(), 44u);
  auto u32 = [&](size_t at) {
    return uint32_t(uint8_t(d[at])) | uint32_t(uint8_t(d[at + 1])) << 8 |
           uint32_t(uint8_t(d[at + 2])) << 16 | uint32_t(uint8_t(d[at + 3])) << 24;
  };
  EXPECT_EQ(d.substr(0, 4), "RIFF");
  EXPECT_EQ(u32(4) + 8, d.size());
  EXPECT_EQ(u32(40) + 44, d.size());
  EXPECT_GT(cosy::read_audio(p).samples.size(), 0u);
}

// Starts `args`, waits until `ready` holds (or 20 s), sends `sig`, returns the exit status.
int interrupt(const std::string& args, int sig, const std::function<bool()>& ready) {
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c",
          (std::string("exec ") + COSY_CLI + " " + args + " 2>/dev/null").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto start = std::chrono::steady_clock::now();
  while (!ready() && std::chrono::steady_clock::now() - start < std::chrono::seconds(20)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, sig);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(CliFirstHour, AnInterruptLeavesAValidFileOrNone) {
  const auto dir = cosy::testing::scratch_dir("cli-interrupt");
  // Long enough to be interrupted at any of the moments below (about 4 s on a tiny model).
  const std::string synth = "synth --model " + tiny_model().string() +
                            " --text 'Hello there. How are you today?' --fixed-tokens 1500 ";
  for (const int sig : {SIGINT, SIGTERM}) {
    // Streaming: what was written stays, as a valid WAV whose header counts it.
    const fs::path streamed = dir / ("s" + std::to_string(sig) + ".wav");
    const int code = interrupt(synth + "--stream --out " + streamed.string(), sig, [&] {
      std::error_code ec;
      const auto size = fs::file_size(streamed, ec);
      return !ec && size > 100000;
    });
    EXPECT_EQ(code, 128 + sig);
    expect_valid_wav(streamed);
    // Offline: no file at all, whether the signal comes while the model loads (the output
    // is opened first) or while it synthesises.
    for (const int delay_ms : {0, 700}) {
      const fs::path offline = dir / ("o" + std::to_string(sig) + ".wav");
      std::optional<std::chrono::steady_clock::time_point> opened;
      const int c = interrupt(synth + "--out " + offline.string(), sig, [&] {
        if (!opened && fs::exists(offline)) opened = std::chrono::steady_clock::now();
        return opened &&
               std::chrono::steady_clock::now() - *opened >= std::chrono::milliseconds(delay_ms);
      });
      EXPECT_EQ(c, 128 + sig) << delay_ms;
      EXPECT_TRUE(opened.has_value()) << delay_ms;
      EXPECT_FALSE(fs::exists(offline)) << delay_ms;
    }
  }
}

TEST(CliFirstHour, LongInputHasALimitAndProgressOnATerminalOnly) {
  const auto dir = cosy::testing::scratch_dir("cli-long");
  {
    std::ofstream f(dir / "big.txt");
    for (int i = 0; i < 20000; ++i) f << "Hello there, this is a long text. ";
  }
  const std::string synth = "synth --model " + tiny_model().string() + " ";
  const auto t0 = std::chrono::steady_clock::now();
  const Result big = run(synth + "--text-file " + (dir / "big.txt").string() + " --out " +
                         (dir / "big.wav").string());
  EXPECT_EQ(big.code, 1) << big.out;
  EXPECT_TRUE(contains(big.out, "680000 characters, over the limit of 20000 (--max-input-chars"))
      << big.out;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));  // refused, not run
  const Result small =
      run(synth + "--max-input-chars 5 --text 'Hello there' --out " + (dir / "x.wav").string());
  EXPECT_EQ(small.code, 1);
  EXPECT_TRUE(contains(small.out, "11 characters, over the limit of 5")) << small.out;
  EXPECT_EQ(run(synth + "--max-input-chars 0 --text hi --out x.wav").code, 2);

  // A job of a few seconds: progress on a terminal (script gives it one), none in a pipe.
  std::string sentences;
  for (int i = 0; i < 20; ++i)
    sentences += "This sentence number " + std::to_string(i) + " is here. ";
  const std::string job =
      synth + "--text '" + sentences + "' --fixed-tokens 300 --out " + (dir / "p.wav").string();
  const std::string tty_log = (dir / "tty.log").string();
  ASSERT_EQ(std::system(("script -qec \"" + std::string(COSY_CLI) + " " + job + "\" " + tty_log +
                         " > /dev/null")
                            .c_str()),
            0);
  const std::string on_tty = read_file(tty_log);
  EXPECT_TRUE(contains(on_tty, "synth: ")) << on_tty;
  EXPECT_TRUE(contains(on_tty, " s of audio, segment 1 of ")) << on_tty;
  EXPECT_TRUE(contains(on_tty, "\r\033[K")) << on_tty;  // redrawn in place, then erased
  const Result piped = run(job);
  ASSERT_EQ(piped.code, 0) << piped.out;
  EXPECT_FALSE(contains(piped.out, "synth: ")) << piped.out;
  EXPECT_FALSE(contains(piped.out, "\r")) << piped.out;
}

TEST(CliFirstHour, UsageErrorsNameTheProblemAndShareOneExitStatus) {
  const Result typo = run("synt --model x");
  EXPECT_EQ(typo.code, 2);
  EXPECT_TRUE(contains(typo.out, "error: unknown command 'synt' (did you mean 'synth'?)"))
      << typo.out;
  EXPECT_TRUE(contains(typo.out, "make-model")) << typo.out;
  const Result none = run("");
  EXPECT_EQ(none.code, 2);
  EXPECT_TRUE(contains(none.out, "synth")) << none.out;
  for (const std::string args :
       {"synth --model m --out x.wav --text hi --no-such-flag", "synth --text hi",
        "synth --model m --out x.wav --text hi --first-hop nine",
        "synth --model m --out x.wav --text hi --format mp4", "make-model --out"}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << args << "\n" << r.out;
  }
  // No internal names in what a user reads.
  const Result empty = run("synth --model " + tiny_model().string() + " --text '...' --out x.wav");
  for (const char* internal : {"finish_input", "max_hop", "fixed_tokens", "push_text"}) {
    EXPECT_FALSE(contains(empty.out, internal)) << empty.out;
  }
}

TEST(CliFirstHour, HelpListsWhatIsAccepted) {
  const Result synth = run("synth --help");
  ASSERT_EQ(synth.code, 0);
  std::string formats;
  for (const auto f : cosy::all_weight_formats())
    formats += (formats.empty() ? "" : " | ") + std::string(cosy::weight_format_name(f));
  for (const char* flag : {"--weights", "--flow-weights", "--hift-weights"}) {
    const auto at = synth.out.find(flag);
    ASSERT_NE(at, std::string::npos) << flag;
    EXPECT_NE(synth.out.find(formats, at), std::string::npos) << flag << "\n" << synth.out;
  }
  for (const char* text : {"mod 2^32", "ras and top-k", "ras: at least 1",
                           "raw signed 16-bit little-endian", "1 to 100", "--max-input-chars"}) {
    EXPECT_TRUE(contains(synth.out, text)) << text << "\n" << synth.out;
  }
  const Result vocode = run("vocode --help");
  EXPECT_TRUE(contains(vocode.out, formats)) << vocode.out;
  const Result make = run("make-model --help");
  EXPECT_TRUE(contains(make.out, "=tiny")) << make.out;  // defaults shown
  EXPECT_TRUE(contains(make.out, "=0")) << make.out;
  // What the help lists is accepted; what it does not is refused.
  const std::string m = "synth --model " + tiny_model().string() + " --text hi --fixed-tokens 5 ";
  EXPECT_EQ(run(m + "--first-hop 20 --stream --format pcm --out /dev/null").code, 0);
  EXPECT_EQ(run(m + "--sampling top-k --top-k 0 --format pcm --out /dev/null").code, 0);
  EXPECT_EQ(run(m + "--sampling ras --top-k 0 --format pcm --out /dev/null").code, 2);
}

TEST(CliFirstHour, TheOutputFormatFollowsTheFileNameAndStdoutCarriesOnlyAudio) {
  const auto dir = cosy::testing::scratch_dir("cli-format");
  const std::string m = "synth --model " + tiny_model().string() + " --text hi --fixed-tokens 10 ";
  ASSERT_EQ(run(m + "--out " + (dir / "a.flac").string()).code, 0);
  EXPECT_EQ(read_file(dir / "a.flac").substr(0, 4), "fLaC");
  ASSERT_EQ(run(m + "--out " + (dir / "a.wav").string()).code, 0);
  EXPECT_EQ(read_file(dir / "a.wav").substr(0, 4), "RIFF");
  ASSERT_EQ(run(m + "--out " + (dir / "a.pcm").string()).code, 0);
  EXPECT_EQ(read_file(dir / "a.pcm").size(), 10u * 960 * 2);
  ASSERT_EQ(run(m + "--format wav-float --out " + (dir / "f.wav").string()).code, 0);
  const Result clash = run(m + "--format wav --out " + (dir / "b.flac").string());
  EXPECT_EQ(clash.code, 2);
  EXPECT_TRUE(contains(clash.out, "--format wav clashes with --out")) << clash.out;
  EXPECT_FALSE(fs::exists(dir / "b.flac"));
  // `--out -`: the audio alone on stdout, every status line on stderr.
  for (const char* format : {"pcm", "flac"}) {
    const fs::path captured = dir / (std::string("stdout.") + format);
    const fs::path log = dir / "stderr.log";
    const int code = std::system((std::string(COSY_CLI) + " " + m + "--format " + format +
                                  " --out - > " + captured.string() + " 2> " + log.string())
                                     .c_str());
    ASSERT_EQ(code, 0) << read_file(log);
    EXPECT_TRUE(contains(read_file(log), "wrote -")) << read_file(log);
    const std::string audio = read_file(captured);
    EXPECT_FALSE(contains(audio, "wrote")) << format;
    EXPECT_TRUE(audio == read_file(dir / (std::string("a.") + format))) << format;
  }
  // A WAV header cannot go down a pipe: refused, with what to do instead.
  const fs::path log = dir / "pipe.log";
  std::system(
      (std::string(COSY_CLI) + " " + m + "--out - 2> " + log.string() + " | cat > /dev/null")
          .c_str());
  EXPECT_TRUE(contains(read_file(log), "give --format pcm or --format flac")) << read_file(log);
}

}  // namespace
