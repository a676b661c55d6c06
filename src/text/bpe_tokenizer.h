// The Qwen2 byte-level BPE tokenizer as CosyVoice2 uses it, loaded from the model folder's
// CosyVoice-BlankEN/ (tokenizer.json, or vocab.json + merges.txt + tokenizer_config.json).
// Immutable after loading, so one instance serves every stream.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cosy::text {

class BpeTokenizer {
 public:
  // Loads tokenizer.json when present, else vocab.json + merges.txt (+ the added tokens of
  // tokenizer_config.json). Errors name the file.
  static BpeTokenizer load(const std::filesystem::path& dir);
  // Whether `dir` holds the files load() reads (tokenizer.json, or vocab.json + merges.txt).
  static bool present(const std::filesystem::path& dir);

  // Adds whole-string special tokens in order; a token already known keeps its id, a new one
  // gets the next free id (as HuggingFace's add_special_tokens does).
  void add_special_tokens(const std::vector<std::string>& tokens);

  // Encodes UTF-8 text: added tokens matched whole (leftmost, longest), the rest NFC
  // normalised, pre-tokenised and BPE-merged. Fails on invalid UTF-8.
  std::vector<int32_t> encode(std::string_view text) const;
  // Decodes ids back to text (added tokens kept). Unknown ids are an error.
  std::string decode(const std::vector<int32_t>& ids) const;

  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }
  // The id of a whole token string (vocabulary or added), or -1.
  int32_t token_id(const std::string& token) const;

 private:
  static BpeTokenizer load_files(const std::filesystem::path& dir);
  void encode_segment(std::string_view text, std::vector<int32_t>& out) const;
  void bpe(std::string_view piece, std::vector<int32_t>& out) const;
  void add_token(const std::string& token, int32_t id, bool added);
  void build_matcher();

  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  std::unordered_map<std::string, int32_t> token_to_id_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> is_added_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) → merge
  std::array<int32_t, 256> byte_token_{};       // id of each byte's single-character token
  std::vector<std::string> added_;              // added token strings, longest first
  std::array<bool, 256> added_first_byte_{};    // quick reject for the added-token scan
};

}  // namespace cosy::text
