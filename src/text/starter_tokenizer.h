// A small tokenizer of our own making, for model folders written with random weights
// (`cosyserve make-model`): the 256 byte symbols of byte-level BPE, a few hundred merges
// learned from a built-in English and Chinese sample, and Qwen2's three special tokens, in
// the files a released CosyVoice-BlankEN/ holds (vocab.json, merges.txt,
// tokenizer_config.json). A real folder brings its own tokenizer; this one only makes a
// random-weight folder work for every command without borrowing one.
#pragma once

#include <filesystem>

namespace cosy::text {

// Writes the three files into `dir` (created if needed). The ids are all below 1024, so
// any CosyVoice2 LM's text vocabulary holds them. Deterministic.
void write_starter_tokenizer(const std::filesystem::path& dir);

}  // namespace cosy::text
