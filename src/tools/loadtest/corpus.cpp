#include "tools/loadtest/corpus.h"

#include "core/error.h"
#include "core/file_io.h"
#include "text/utf8.h"

namespace cosy::loadtest {

extern const char* const kBuiltinCorpusEn;
extern const char* const kBuiltinCorpusZh;

Corpus parse_corpus(std::string_view content, const std::string& source) {
  Corpus c;
  c.source = source;
  size_t line_no = 0;
  while (!content.empty()) {
    const size_t eol = content.find('\n');
    std::string_view line = content.substr(0, eol);
    content = eol == std::string_view::npos ? std::string_view{} : content.substr(eol + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    try {
      text::check_utf8(line);
    } catch (const Error& e) {
      fail(source, ": line ", line_no, " is not UTF-8 (", e.what(), ")");
    }
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    c.texts.emplace_back(line.substr(first));
  }
  if (c.texts.empty()) fail(source, ": no sentences (one per line; '#' lines are comments)");
  return c;
}

Corpus load_corpus(const std::filesystem::path& file) {
  return parse_corpus(read_whole_file(file), file.string());
}

Corpus builtin_corpus() {
  Corpus c = parse_corpus(kBuiltinCorpusEn, "built-in");
  Corpus zh = parse_corpus(kBuiltinCorpusZh, "built-in");
  c.texts.insert(c.texts.end(), zh.texts.begin(), zh.texts.end());
  return c;
}

}  // namespace cosy::loadtest
