// The texts a load test speaks: one sentence per line of a UTF-8 file ('#' lines and blank
// lines skipped), or the built-in corpus of English and Chinese sentences of mixed lengths
// (corpus_en.txt, corpus_zh.txt, compiled in).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace cosy::loadtest {

struct Corpus {
  std::string source;  // the file, or "built-in"
  std::vector<std::string> texts;
};

// Fails with the line number of a line that is not UTF-8, and on a file with no sentence.
Corpus parse_corpus(std::string_view content, const std::string& source);
Corpus load_corpus(const std::filesystem::path& file);
Corpus builtin_corpus();

}  // namespace cosy::loadtest
