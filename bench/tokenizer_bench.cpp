// Tokenizer and normaliser throughput on mixed Chinese/English text, one core.
// Usage: tokenizer_bench TOKENIZER_DIR [MiB]
// The text repeats a fixed mixed-language paragraph (about half the bytes CJK) to MiB.
#include <chrono>
#include <cstdio>
#include <string>

#include "text/text_frontend.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TOKENIZER_DIR [MiB]\n", argv[0]);
    return 2;
  }
  try {
    const size_t mib = argc > 2 ? std::stoul(argv[2]) : 8;
    const auto frontend = cosy::text::TextFrontend::load(argv[1]);
    const cosy::text::BpeTokenizer& t = frontend.tokenizer();
    const std::string paragraph =
        "今天天气很好，我们一起去公园散步吧。The quick brown fox jumps over the lazy dog, "
        "and it costs $12.50 at 3:30 PM. 人工智能正在改变我们的生活方式，语音合成技术也越来越自然。"
        "CosyVoice2 streams speech with low latency; 它支持中英混合的文本输入！Numbers like 2024 "
        "and 98.6% are common.\n";
    std::string text;
    while (text.size() < mib << 20) text += paragraph;
    size_t tokens = 0;
    const auto start = std::chrono::steady_clock::now();
    tokens += t.encode(text).size();
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("encoded %.1f MiB into %zu tokens in %.3f s: %.2f MB/s (one thread)\n",
                text.size() / 1048576.0, tokens, s, text.size() / 1e6 / s);
    // The normaliser: cleaning, written forms read as words, the punctuation rules.
    const auto norm_start = std::chrono::steady_clock::now();
    const size_t normalized = frontend.normalize(text).size();
    const double ns =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - norm_start).count();
    std::printf("normalised %.1f MiB (to %.1f MiB) in %.3f s: %.2f MB/s (one thread)\n",
                text.size() / 1048576.0, normalized / 1048576.0, ns, text.size() / 1e6 / ns);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
