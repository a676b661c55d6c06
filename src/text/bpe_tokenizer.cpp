#include "text/bpe_tokenizer.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "core/error.h"
#include "core/file_io.h"
#include "text/byte_level.h"
#include "text/pretokenizer.h"
#include "text/utf8.h"

namespace cosy::text {
namespace {

// The split pattern this tokenizer implements (pretokenizer.cpp); any other is refused.
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

nlohmann::json read_json(const std::filesystem::path& p) {
  auto j = nlohmann::json::parse(read_whole_file(p), nullptr, false);
  if (j.is_discarded()) fail(p.string(), ": not valid JSON");
  return j;
}

// ICU builds its NFC data lazily behind its own once-flag; a C++ static around it makes
// the first use a synchronisation point every thread (and ThreadSanitizer) can see.
const icu::Normalizer2& nfc() {
  static const icu::Normalizer2* const instance = [] {
    UErrorCode err = U_ZERO_ERROR;
    const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(err);
    if (U_FAILURE(err) || n == nullptr) fail("ICU NFC normaliser unavailable: ", u_errorName(err));
    return n;
  }();
  return *instance;
}

// Replaces invalid UTF-8 with U+FFFD, as HuggingFace's decode does.
std::string lossy_utf8(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
  const int32_t n = static_cast<int32_t>(bytes.size());
  int32_t i = 0;
  while (i < n) {
    const int32_t begin = i;
    UChar32 c;
    U8_NEXT(s, i, n, c);
    if (c < 0) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(bytes, static_cast<size_t>(begin), static_cast<size_t>(i - begin));
    }
  }
  return out;
}

}  // namespace

void BpeTokenizer::add_token(const std::string& token, int32_t id, bool added) {
  if (id < 0 || id > (1 << 24)) fail("token id ", id, " out of range");
  if (static_cast<size_t>(id) >= id_to_token_.size()) {
    id_to_token_.resize(static_cast<size_t>(id) + 1);
    is_added_.resize(static_cast<size_t>(id) + 1, false);
  }
  id_to_token_[static_cast<size_t>(id)] = token;
  is_added_[static_cast<size_t>(id)] = added;
  token_to_id_[token] = id;
  if (added && std::find(added_.begin(), added_.end(), token) == added_.end())
    added_.push_back(token);
}

BpeTokenizer BpeTokenizer::load(const std::filesystem::path& dir) {
  try {
    return load_files(dir);
  } catch (const nlohmann::json::exception& e) {
    fail(dir.string(), ": malformed tokenizer files: ", e.what());
  }
}

bool BpeTokenizer::present(const std::filesystem::path& dir) {
  return std::filesystem::exists(dir / "tokenizer.json") ||
         (std::filesystem::exists(dir / "vocab.json") &&
          std::filesystem::exists(dir / "merges.txt"));
}

BpeTokenizer BpeTokenizer::load_files(const std::filesystem::path& dir) {
  BpeTokenizer t;
  std::vector<std::pair<std::string, std::string>> merges;
  const auto json_path = dir / "tokenizer.json";
  if (std::filesystem::exists(json_path)) {
    with_context(json_path.string(), [&] {
      const auto j = read_json(json_path);
      const auto& model = j.at("model");
      if (model.value("type", "") != "BPE") fail("model.type must be BPE");
      if (!j["normalizer"].is_null() && j["normalizer"].value("type", "") != "NFC")
        fail("only the NFC normalizer is supported");
      if (!j.contains("pre_tokenizer") ||
          j["pre_tokenizer"].dump().find(nlohmann::json(std::string(kQwen2Pattern)).dump()) ==
              std::string::npos) {
        fail("the pre-tokenizer is not Qwen2's split pattern, which is the only one supported");
      }
      for (const auto& [token, id] : model.at("vocab").items())
        t.add_token(token, id.get<int32_t>(), false);
      for (const auto& m : model.at("merges")) {
        if (m.is_array() && m.size() == 2) {
          merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
        } else if (m.is_string()) {
          const std::string s = m.get<std::string>();
          const size_t sp = s.find(' ');
          if (sp == std::string::npos) fail("malformed merge '", s, "'");
          merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
        } else {
          fail("malformed merge entry");
        }
      }
      const auto added = j.value("added_tokens", nlohmann::json::array());
      for (const auto& a : added) {
        t.add_token(a.at("content").get<std::string>(), a.at("id").get<int32_t>(), true);
      }
    });
  } else {
    const auto vocab_path = dir / "vocab.json";
    const auto merges_path = dir / "merges.txt";
    if (!std::filesystem::exists(vocab_path) || !std::filesystem::exists(merges_path)) {
      fail(dir.string(), ": no tokenizer.json, nor vocab.json + merges.txt");
    }
    with_context(vocab_path.string(), [&] {
      const auto vocab = read_json(vocab_path);
      for (const auto& [token, id] : vocab.items()) t.add_token(token, id.get<int32_t>(), false);
    });
    with_context(merges_path.string(), [&] {
      std::istringstream in(read_whole_file(merges_path));
      std::string line;
      while (std::getline(in, line)) {
        if (line.empty() || line.rfind("#version", 0) == 0) continue;
        const size_t sp = line.find(' ');
        if (sp == std::string::npos) fail("malformed merge line '", line, "'");
        merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
      }
    });
    const auto config_path = dir / "tokenizer_config.json";
    if (std::filesystem::exists(config_path)) {
      with_context(config_path.string(), [&] {
        const auto j = read_json(config_path);
        std::vector<std::pair<int32_t, std::string>> added;
        const auto decoder = j.value("added_tokens_decoder", nlohmann::json::object());
        for (const auto& [id, info] : decoder.items()) {
          added.emplace_back(std::stoi(id), info.at("content").get<std::string>());
        }
        std::sort(added.begin(), added.end());
        for (const auto& [id, content] : added) t.add_token(content, id, true);
      });
    }
  }
  with_context(dir.string(), [&] {
    int32_t rank = 0;
    for (const auto& [a, b] : merges) {
      const int32_t l = t.token_id(a), r = t.token_id(b), m = t.token_id(a + b);
      if (l < 0 || r < 0 || m < 0)
        fail("merge '", a, " ", b, "' uses a token missing from the vocabulary");
      t.merges_.emplace((static_cast<uint64_t>(l) << 32) | static_cast<uint32_t>(r),
                        Merge{rank++, m});
    }
    for (int b = 0; b < 256; ++b) {
      t.byte_token_[b] = t.token_id(byte_to_unicode()[b]);
      if (t.byte_token_[b] < 0) fail("the vocabulary lacks the byte-level token for byte ", b);
    }
  });
  t.build_matcher();
  return t;
}

void BpeTokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
  for (const std::string& tok : tokens) {
    if (tok.empty()) fail("empty special token");
    const int32_t existing = token_id(tok);
    if (existing >= 0) {
      if (!is_added_[static_cast<size_t>(existing)]) add_token(tok, existing, true);
      continue;
    }
    add_token(tok, vocab_size(), true);
  }
  build_matcher();
}

void BpeTokenizer::build_matcher() {
  std::stable_sort(added_.begin(), added_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  added_first_byte_.fill(false);
  for (const std::string& a : added_) added_first_byte_[static_cast<uint8_t>(a[0])] = true;
}

int32_t BpeTokenizer::token_id(const std::string& token) const {
  auto it = token_to_id_.find(token);
  return it == token_to_id_.end() ? -1 : it->second;
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  check_utf8(text);
  std::vector<int32_t> out;
  size_t segment = 0;
  for (size_t i = 0; i < text.size();) {
    const std::string* hit = nullptr;
    if (added_first_byte_[static_cast<uint8_t>(text[i])]) {
      for (const std::string& a : added_) {  // longest first
        if (text.compare(i, a.size(), a) == 0) {
          hit = &a;
          break;
        }
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    encode_segment(text.substr(segment, i - segment), out);
    out.push_back(token_to_id_.at(*hit));
    i += hit->size();
    segment = i;
  }
  encode_segment(text.substr(segment), out);
  return out;
}

void BpeTokenizer::encode_segment(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  const icu::Normalizer2& n = nfc();
  UErrorCode err = U_ZERO_ERROR;
  const icu::StringPiece sp(text.data(), static_cast<int32_t>(text.size()));
  std::string normalized;
  std::string_view input = text;
  if (!n.isNormalizedUTF8(sp, err)) {
    err = U_ZERO_ERROR;
    icu::StringByteSink<std::string> sink(&normalized);
    n.normalizeUTF8(0, sp, sink, nullptr, err);
    if (U_FAILURE(err)) fail("NFC normalisation failed: ", u_errorName(err));
    input = normalized;
  }
  for (std::string_view piece : pretokenize(input)) bpe(piece, out);
}

void BpeTokenizer::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  const size_t n = piece.size();
  if (n == 1) {
    out.push_back(byte_token_[static_cast<uint8_t>(piece[0])]);
    return;
  }
  // Symbols in a linked list; a heap of candidate merges, lowest rank (then leftmost) first.
  std::vector<int32_t> id(n);
  std::vector<int32_t> prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    id[i] = byte_token_[static_cast<uint8_t>(piece[i])];
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  struct Candidate {
    int32_t rank, pos, left, right, merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    auto it =
        merges_.find((static_cast<uint64_t>(id[pos]) << 32) | static_cast<uint32_t>(id[next[pos]]));
    if (it != merges_.end())
      heap.push({it->second.rank, pos, id[pos], id[next[pos]], it->second.merged});
  };
  for (size_t i = 0; i + 1 < n; ++i) consider(static_cast<int32_t>(i));
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int32_t r = next[c.pos];
    if (id[c.pos] != c.left || r < 0 || id[r] != c.right) continue;  // stale
    id[c.pos] =
        merges_.at((static_cast<uint64_t>(c.left) << 32) | static_cast<uint32_t>(c.right)).merged;
    id[r] = -1;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    consider(prev[c.pos]);
    consider(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || id_to_token_[static_cast<size_t>(id)].empty())
      fail("unknown token id ", id);
    const std::string& tok = id_to_token_[static_cast<size_t>(id)];
    if (is_added_[static_cast<size_t>(id)]) {
      bytes += tok;
      continue;
    }
    const auto* s = reinterpret_cast<const uint8_t*>(tok.data());
    const int32_t len = static_cast<int32_t>(tok.size());
    for (int32_t i = 0; i < len;) {
      UChar32 c;
      U8_NEXT(s, i, len, c);
      const int b = c < 0 ? -1 : byte_of_code_point(static_cast<uint32_t>(c));
      if (b < 0) fail("token ", id, " is not in the byte-level alphabet");
      bytes += static_cast<char>(b);
    }
  }
  return lossy_utf8(bytes);
}

}  // namespace cosy::text
