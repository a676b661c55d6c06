// Random-weight ONNX files with the architectures of the released frontend models, at any
// size, written by our own graph builder: make-model puts them in the folders it writes, so
// voices can be made from recordings without the released files, and the voice benchmark
// runs the real sizes. Inputs and outputs are the released ones (FRONTEND.md §2).
//  - speech_tokenizer_v2.onnx: S3TokenizerV2 (two stride-2 convs with GELU, pre-LN blocks
//    of rotary attention with an FSMN memory and a GELU MLP, FSQ to 3^8 codes), opset 17;
//  - campplus.onnx: CAM++ (2-D FCM head, TDNN, CAM dense blocks with segment pooling,
//    transit layers, statistics pooling, a 192-d embedding), opset 14.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace cosy::voice {

struct SpeechTokenizerShape {
  int64_t mels = 128;
  int64_t width = 1280;
  int64_t heads = 20;  // of 64
  int64_t layers = 6;
  int64_t fsmn_kernel = 31;
};

struct CamPlusShape {
  int64_t feat_dim = 80;
  int64_t embedding = 192;
  int64_t fcm_channels = 32;
  int64_t init_channels = 128;
  int64_t growth = 32;
  int64_t bn_size = 4;
  std::vector<std::array<int64_t, 3>> blocks = {
      {12, 3, 1}, {24, 3, 2}, {16, 3, 2}};  // layers, kernel, dilation
};

// The released sizes, and small ones for tests.
SpeechTokenizerShape released_speech_tokenizer();
SpeechTokenizerShape tiny_speech_tokenizer();
CamPlusShape released_campplus();
CamPlusShape tiny_campplus();

void write_speech_tokenizer(const std::filesystem::path& path, const SpeechTokenizerShape& s,
                            uint64_t seed);
void write_campplus(const std::filesystem::path& path, const CamPlusShape& s, uint64_t seed);

}  // namespace cosy::voice
