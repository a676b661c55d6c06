#include "model/voice/frontend_models.h"

#include <cmath>
#include <random>
#include <string>

#include "core/error.h"
#include "onnx/graph_builder.h"

namespace cosy::voice {

using onnx::Attr;
using onnx::GraphBuilder;

SpeechTokenizerShape released_speech_tokenizer() { return {}; }
SpeechTokenizerShape tiny_speech_tokenizer() { return {128, 128, 2, 2, 31}; }
CamPlusShape released_campplus() { return {}; }
CamPlusShape tiny_campplus() {
  CamPlusShape s;
  s.fcm_channels = 16;
  s.init_channels = 64;
  s.growth = 16;
  s.bn_size = 2;
  s.blocks = {{2, 3, 1}, {3, 3, 2}, {2, 3, 2}};
  return s;
}

namespace {

// Weights drawn N(0, gain² / fan_in), so activations stay O(1) through the layers.
class Init {
 public:
  explicit Init(uint64_t seed) : rng_(seed) {}
  Tensor normal(const Shape& shape, int64_t fan_in, float gain = 1.0f) {
    Tensor t = Tensor::zeros(DType::F32, shape);
    std::normal_distribution<float> d(
        0.0f, gain / std::sqrt(static_cast<float>(std::max<int64_t>(fan_in, 1))));
    for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = d(rng_);
    return t;
  }
  Tensor uniform(const Shape& shape, float lo, float hi) {
    Tensor t = Tensor::zeros(DType::F32, shape);
    std::uniform_real_distribution<float> d(lo, hi);
    for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = d(rng_);
    return t;
  }
  Tensor constant(const Shape& shape, float v) {
    Tensor t = Tensor::zeros(DType::F32, shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = v;
    return t;
  }

 private:
  std::mt19937_64 rng_;
};

// Shared layer helpers over the builder.
struct Layers {
  GraphBuilder& g;
  Init& init;
  int n = 0;
  std::string name(const std::string& base) { return base + "." + std::to_string(n++); }

  std::string conv(const std::string& x, int64_t cin, int64_t cout,
                   const std::vector<int64_t>& kernel, const std::vector<int64_t>& strides,
                   const std::vector<int64_t>& pads, const std::vector<int64_t>& dilations,
                   int64_t groups, bool bias) {
    Shape ws{cout, cin / groups};
    int64_t taps = 1;
    for (int64_t k : kernel) {
      ws.push_back(k);
      taps *= k;
    }
    const std::string w = g.weight(name("conv.weight"), init.normal(ws, cin / groups * taps, 1.4f));
    std::vector<std::string> in{x, w};
    if (bias) in.push_back(g.weight(name("conv.bias"), init.uniform({cout}, -0.1f, 0.1f)));
    return g.node("Conv", in,
                  {{"kernel_shape", kernel},
                   {"strides", strides},
                   {"pads", pads},
                   {"dilations", dilations},
                   {"group", groups}});
  }
  std::string batch_norm(const std::string& x, int64_t c, bool affine = true) {
    return g.node("BatchNormalization",
                  {x,
                   g.weight(name("bn.weight"),
                            affine ? init.uniform({c}, 0.8f, 1.2f) : init.constant({c}, 1.0f)),
                   g.weight(name("bn.bias"),
                            affine ? init.uniform({c}, -0.1f, 0.1f) : init.constant({c}, 0.0f)),
                   g.weight(name("bn.running_mean"), init.uniform({c}, -0.1f, 0.1f)),
                   g.weight(name("bn.running_var"), init.uniform({c}, 0.8f, 1.2f))},
                  {{"epsilon", 1e-5f}});
  }
  std::string relu(const std::string& x) { return g.node("Relu", {x}); }
  // GELU as torch exports it: x · 0.5 · (1 + erf(x / √2)).
  std::string gelu(const std::string& x) {
    const std::string e = g.node("Erf", {g.node("Div", {x, g.scalar(1.4142135381698608f)})});
    return g.node("Mul", {g.node("Mul", {x, g.node("Add", {e, g.scalar(1.0f)})}), g.scalar(0.5f)});
  }
  std::string linear(const std::string& x, int64_t in, int64_t out, bool bias) {
    std::string y =
        g.node("MatMul", {x, g.weight(name("linear.weight"), init.normal({in, out}, in))});
    if (bias)
      y = g.node("Add", {y, g.weight(name("linear.bias"), init.uniform({out}, -0.05f, 0.05f))});
    return y;
  }
  std::string layer_norm(const std::string& x, int64_t c, float eps) {
    return g.node("LayerNormalization",
                  {x, g.weight(name("ln.weight"), init.uniform({c}, 0.9f, 1.1f)),
                   g.weight(name("ln.bias"), init.uniform({c}, -0.05f, 0.05f))},
                  {{"axis", int64_t{-1}}, {"epsilon", eps}});
  }
};

// Rotary tables [max_len, 1, head_dim] (NeoX rotate-half layout, theta 1e4).
std::pair<Tensor, Tensor> rotary_tables(int64_t max_len, int64_t head_dim) {
  Tensor cos_t = Tensor::zeros(DType::F32, {max_len, 1, head_dim});
  Tensor sin_t = Tensor::zeros(DType::F32, {max_len, 1, head_dim});
  const int64_t half = head_dim / 2;
  for (int64_t p = 0; p < max_len; ++p) {
    for (int64_t i = 0; i < head_dim; ++i) {
      const double freq =
          std::pow(10000.0, -static_cast<double>(2 * (i % half)) / static_cast<double>(head_dim));
      cos_t.mutable_data<float>()[p * head_dim + i] = static_cast<float>(std::cos(p * freq));
      sin_t.mutable_data<float>()[p * head_dim + i] = static_cast<float>(std::sin(p * freq));
    }
  }
  return {cos_t, sin_t};
}

}  // namespace

void write_speech_tokenizer(const std::filesystem::path& path, const SpeechTokenizerShape& s,
                            uint64_t seed) {
  if (s.width % s.heads != 0 || s.width / s.heads != 64)
    fail("speech tokenizer: heads must be of 64");
  GraphBuilder g("speech_tokenizer_v2", 17);
  Init init(seed);
  Layers L{g, init};
  const int64_t D = s.width;
  const int64_t H = s.heads;
  const std::string feats =
      g.input("feats", DType::F32, {std::string("B"), s.mels, std::string("F")});
  g.input("feats_length", DType::I32, {std::string("B")});
  std::string x = L.gelu(L.conv(feats, s.mels, D, {3}, {2}, {1, 1}, {1}, 1, true));
  x = L.gelu(L.conv(x, D, D, {3}, {2}, {1, 1}, {1}, 1, true));
  x = g.node("Transpose", {x}, {{"perm", std::vector<int64_t>{0, 2, 1}}});  // [B, T, D]

  auto [cos_t, sin_t] = rotary_tables(2048, 64);
  const std::string cos_w = g.weight("rotary.cos", cos_t);
  const std::string sin_w = g.weight("rotary.sin", sin_t);
  // The tables cut to this utterance's length T.
  const std::string t_len =
      g.node("Gather", {g.node("Shape", {x}), g.ints({1})}, {{"axis", int64_t{0}}});
  const std::string cos_cut = g.node("Slice", {cos_w, g.ints({0}), t_len, g.ints({0})});
  const std::string sin_cut = g.node("Slice", {sin_w, g.ints({0}), t_len, g.ints({0})});
  const std::string heads_shape = g.ints({0, 0, H, 64});
  auto rotate = [&](const std::string& v) {  // v [B, T, H, 64]
    std::vector<std::string> halves =
        g.nodes("Split", {v, g.ints({32, 32})}, {{"axis", int64_t{-1}}}, 2);
    const std::string rotated =
        g.node("Concat", {g.node("Neg", {halves[1]}), halves[0]}, {{"axis", int64_t{-1}}});
    return g.node("Add", {g.node("Mul", {v, cos_cut}), g.node("Mul", {rotated, sin_cut})});
  };
  const std::string qk_scale = g.scalar(static_cast<float>(std::pow(64.0, -0.25)));
  for (int64_t b = 0; b < s.layers; ++b) {
    const std::string h = L.layer_norm(x, D, 1e-6f);
    std::string q = g.node("Reshape", {L.linear(h, D, D, true), heads_shape});
    std::string k = g.node("Reshape", {L.linear(h, D, D, false), heads_shape});
    const std::string v_flat = L.linear(h, D, D, true);
    const std::string v = g.node("Reshape", {v_flat, heads_shape});
    q = g.node("Mul", {rotate(q), qk_scale});
    k = g.node("Mul", {rotate(k), qk_scale});
    const std::string qt = g.node("Transpose", {q}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
    const std::string kt = g.node("Transpose", {k}, {{"perm", std::vector<int64_t>{0, 2, 3, 1}}});
    const std::string vt = g.node("Transpose", {v}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
    const std::string p = g.node("Softmax", {g.node("MatMul", {qt, kt})}, {{"axis", int64_t{-1}}});
    std::string a = g.node("Transpose", {g.node("MatMul", {p, vt})},
                           {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
    a = L.linear(g.node("Reshape", {a, g.ints({0, 0, D})}), D, D, true);
    // FSMN memory: a depthwise conv over v, plus v.
    const std::string vc = g.node("Transpose", {v_flat}, {{"perm", std::vector<int64_t>{0, 2, 1}}});
    const int64_t pad = (s.fsmn_kernel - 1) / 2;
    std::string mem = L.conv(vc, D, D, {s.fsmn_kernel}, {1}, {pad, pad}, {1}, D, false);
    mem = g.node("Add",
                 {g.node("Transpose", {mem}, {{"perm", std::vector<int64_t>{0, 2, 1}}}), v_flat});
    x = g.node("Add", {x, g.node("Add", {a, mem})});
    const std::string m =
        L.linear(L.gelu(L.linear(L.layer_norm(x, D, 1e-5f), D, 4 * D, true)), 4 * D, D, true);
    x = g.node("Add", {x, m});
  }
  // FSQ: 8 values in (-1, 1), each rounded to -1, 0 or 1, read as base-3 digits.
  std::string f = g.node("Tanh", {L.linear(x, D, 8, true)});
  f = g.node("Add", {g.node("Round", {g.node("Mul", {f, g.scalar(0.9990000128746033f)})}),
                     g.scalar(1.0f)});
  Tensor powers = Tensor::zeros(DType::F32, {8, 1});
  for (int i = 0; i < 8; ++i)
    powers.mutable_data<float>()[i] = std::pow(3.0f, static_cast<float>(i));
  f = g.node("MatMul", {f, g.weight("quantizer.powers", powers)});
  f = g.node("Squeeze", {f, g.ints({-1})});
  const std::string indices = g.node("Cast", {f}, {{"to", int64_t{6}}});  // INT32
  g.output(indices, DType::I32, {std::string("B"), std::string("T")});
  g.save(path);
}

void write_campplus(const std::filesystem::path& path, const CamPlusShape& s, uint64_t seed) {
  GraphBuilder g("campplus", 14);
  Init init(seed);
  Layers L{g, init};
  const std::string input =
      g.input("input", DType::F32, {std::string("B"), std::string("T"), s.feat_dim});
  const int64_t m = s.fcm_channels;
  // FCM head on [B, 1, F, T].
  std::string x = g.node(
      "Unsqueeze",
      {g.node("Transpose", {input}, {{"perm", std::vector<int64_t>{0, 2, 1}}}), g.ints({1})});
  x = L.relu(L.batch_norm(L.conv(x, 1, m, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, false), m));
  auto res_block = [&](const std::string& in, int64_t stride) {
    std::string y = L.relu(
        L.batch_norm(L.conv(in, m, m, {3, 3}, {stride, 1}, {1, 1, 1, 1}, {1, 1}, 1, false), m));
    y = L.batch_norm(L.conv(y, m, m, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, false), m);
    std::string shortcut = in;
    if (stride != 1)
      shortcut =
          L.batch_norm(L.conv(in, m, m, {1, 1}, {stride, 1}, {0, 0, 0, 0}, {1, 1}, 1, false), m);
    return L.relu(g.node("Add", {y, shortcut}));
  };
  int64_t freq = s.feat_dim;
  for (int layer = 0; layer < 2; ++layer) {
    x = res_block(x, 2);
    x = res_block(x, 1);
    freq = (freq + 1) / 2;
  }
  x = L.relu(L.batch_norm(L.conv(x, m, m, {3, 3}, {2, 1}, {1, 1, 1, 1}, {1, 1}, 1, false), m));
  freq = (freq + 1) / 2;
  int64_t channels = m * freq;
  x = g.node("Reshape", {x, g.ints({0, channels, -1})});
  // TDNN.
  x = L.relu(L.batch_norm(L.conv(x, channels, s.init_channels, {5}, {2}, {2, 2}, {1}, 1, false),
                          s.init_channels));
  channels = s.init_channels;
  const int64_t bottleneck = s.bn_size * s.growth;
  for (size_t bi = 0; bi < s.blocks.size(); ++bi) {
    const auto [layers, kernel, dilation] = s.blocks[bi];
    for (int64_t li = 0; li < layers; ++li) {
      std::string h = L.relu(L.batch_norm(x, channels));
      h = L.relu(L.batch_norm(L.conv(h, channels, bottleneck, {1}, {1}, {0, 0}, {1}, 1, false),
                              bottleneck));
      // CAM: a local conv scaled by a context gate from the utterance mean and 100-frame segment
      // means.
      const int64_t pad = (kernel - 1) / 2 * dilation;
      const std::string local =
          L.conv(h, bottleneck, s.growth, {kernel}, {1}, {pad, pad}, {dilation}, 1, false);
      const std::string mean =
          g.node("ReduceMean", {h}, {{"axes", std::vector<int64_t>{-1}}, {"keepdims", int64_t{1}}});
      std::string seg = g.node("AveragePool", {h},
                               {{"kernel_shape", std::vector<int64_t>{100}},
                                {"strides", std::vector<int64_t>{100}},
                                {"ceil_mode", int64_t{1}}});
      const std::string seg_shape = g.node("Shape", {seg});
      seg =
          g.node("Expand", {g.node("Unsqueeze", {seg, g.ints({-1})}),
                            g.node("Concat", {seg_shape, g.ints({100})}, {{"axis", int64_t{0}}})});
      seg = g.node("Reshape", {seg, g.ints({0, 0, -1})});
      const std::string t_len =
          g.node("Gather", {g.node("Shape", {h}), g.ints({2})}, {{"axis", int64_t{0}}});
      seg = g.node("Slice", {seg, g.ints({0}), t_len, g.ints({2})});
      std::string ctx = g.node("Add", {mean, seg});
      ctx = L.relu(L.conv(ctx, bottleneck, bottleneck / 2, {1}, {1}, {0, 0}, {1}, 1, true));
      ctx = g.node("Sigmoid",
                   {L.conv(ctx, bottleneck / 2, s.growth, {1}, {1}, {0, 0}, {1}, 1, true)});
      x = g.node("Concat", {x, g.node("Mul", {local, ctx})}, {{"axis", int64_t{1}}});
      channels += s.growth;
    }
    // Transit: halve the channels.
    x = L.conv(L.relu(L.batch_norm(x, channels)), channels, channels / 2, {1}, {1}, {0, 0}, {1}, 1,
               false);
    channels /= 2;
  }
  x = L.relu(L.batch_norm(x, channels));
  // Statistics pooling: mean and unbiased standard deviation over time.
  const std::string mean =
      g.node("ReduceMean", {x}, {{"axes", std::vector<int64_t>{-1}}, {"keepdims", int64_t{1}}});
  const std::string dev = g.node("Sub", {x, mean});
  const std::string sq =
      g.node("ReduceSum", {g.node("Mul", {dev, dev}), g.ints({-1})}, {{"keepdims", int64_t{1}}});
  const std::string t_minus_1 = g.node(
      "Sub",
      {g.node("Cast",
              {g.node("Gather", {g.node("Shape", {x}), g.ints({2})}, {{"axis", int64_t{0}}})},
              {{"to", int64_t{1}}}),
       g.scalar(1.0f)});
  const std::string std_dev = g.node("Sqrt", {g.node("Div", {sq, t_minus_1})});
  std::string stats = g.node("Concat", {mean, std_dev}, {{"axis", int64_t{1}}});  // [B, 2C, 1]
  stats = L.batch_norm(L.conv(stats, 2 * channels, s.embedding, {1}, {1}, {0, 0}, {1}, 1, false),
                       s.embedding, false);
  const std::string out = g.node("Squeeze", {stats, g.ints({-1})});
  g.output(out, DType::F32, {std::string("B"), s.embedding});
  g.save(path);
}

}  // namespace cosy::voice
