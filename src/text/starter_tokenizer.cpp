#include "text/starter_tokenizer.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "text/byte_level.h"
#include "text/pretokenizer.h"

namespace cosy::text {
namespace {

// What the merges are learned from: plain sentences of the kind a demo speaks.
constexpr const char* kSample =
    "Hello there! This is a text to speech engine. The weather is nice today, and the "
    "sun is shining. How are you? I am fine, thank you. We want to hear the words spoken "
    "as they are written, one sentence after another. Numbers such as one, two, three and "
    "four are read as words. Streaming speech starts before the sentence ends. "
    "你好，欢迎使用语音合成。今天天气很好，我们一起去公园散步吧。这是一个文本转语音的引擎。";
constexpr int kMerges = 400;

using Symbols = std::vector<std::string>;

// One BPE training step over the sample's words: the most frequent adjacent pair (ties:
// the first met), merged everywhere. Returns false when no pair occurs twice.
bool merge_most_frequent(std::vector<Symbols>& words, std::vector<std::string>& merges) {
  std::map<std::pair<std::string, std::string>, int> counts;
  std::vector<std::pair<std::string, std::string>> order;
  for (const Symbols& w : words) {
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      const auto [it, added] = counts.try_emplace({w[i], w[i + 1]}, 0);
      if (added) order.push_back(it->first);
      ++it->second;
    }
  }
  const std::pair<std::string, std::string>* best = nullptr;
  for (const auto& pair : order) {
    if (best == nullptr || counts[pair] > counts[*best]) best = &pair;
  }
  if (best == nullptr || counts[*best] < 2) return false;
  const auto [left, right] = *best;
  merges.push_back(left + " " + right);
  for (Symbols& w : words) {
    Symbols merged;
    for (size_t i = 0; i < w.size(); ++i) {
      if (i + 1 < w.size() && w[i] == left && w[i + 1] == right) {
        merged.push_back(left + right);
        ++i;
      } else {
        merged.push_back(w[i]);
      }
    }
    w = std::move(merged);
  }
  return true;
}

}  // namespace

void write_starter_tokenizer(const std::filesystem::path& dir) {
  const auto& symbol = byte_to_unicode();
  std::vector<Symbols> words;
  for (const std::string_view piece : pretokenize(kSample)) {
    Symbols w;
    for (const char c : piece) w.push_back(symbol[static_cast<unsigned char>(c)]);
    words.push_back(std::move(w));
  }
  std::vector<std::string> merges;
  while (static_cast<int>(merges.size()) < kMerges && merge_most_frequent(words, merges)) {
  }

  // The byte symbols in GPT-2's order, which is their code points' order (and UTF-8 sorts
  // as its code points do), then one token per merge, then the specials.
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  std::vector<std::string> byte_order(symbol.begin(), symbol.end());
  std::sort(byte_order.begin(), byte_order.end());
  int id = 0;
  for (const std::string& s : byte_order) vocab[s] = id++;
  std::string merges_txt = "#version: 0.2\n";
  for (const std::string& m : merges) {
    merges_txt += m + "\n";
    const auto space = m.find(' ');
    const std::string token = m.substr(0, space) + m.substr(space + 1);
    if (!vocab.contains(token)) vocab[token] = id++;
  }
  nlohmann::ordered_json added = nlohmann::ordered_json::object();
  for (const char* special : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    added[std::to_string(id++)] = {{"content", special},   {"lstrip", false},
                                   {"normalized", false},  {"rstrip", false},
                                   {"single_word", false}, {"special", true}};
  }
  nlohmann::ordered_json config = {{"added_tokens_decoder", added},
                                   {"eos_token", "<|endoftext|>"},
                                   {"model_max_length", 32768},
                                   {"tokenizer_class", "Qwen2Tokenizer"}};
  std::filesystem::create_directories(dir);
  write_whole_file(dir / "vocab.json", vocab.dump() + "\n");
  write_whole_file(dir / "merges.txt", merges_txt);
  write_whole_file(dir / "tokenizer_config.json", config.dump(1) + "\n");
}

}  // namespace cosy::text
