#include <dnnl.hpp>

#include "library_conv.h"

namespace cosy::bench {

using dnnl::memory;
using tag = memory::format_tag;

struct OnednnConv1d::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  dnnl::primitive conv;
  memory::desc src_md, dst_md;
  memory weights;
  int64_t out_length = 0;
  int64_t cout = 0;
};

OnednnConv1d::OnednnConv1d(bool transposed, int64_t cin, int64_t cout, int64_t kernel,
                           int64_t stride, int64_t dilation, int64_t pad, int64_t length,
                           const float* w)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.cout = cout;
  m.out_length = transposed ? (length - 1) * stride - 2 * pad + dilation * (kernel - 1) + 1
                            : (length + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
  const auto f32 = memory::data_type::f32;
  m.src_md = memory::desc({1, cin, length}, f32, tag::nwc);
  m.dst_md = memory::desc({1, cout, m.out_length}, f32, tag::nwc);
  const memory::desc any_weights({cout, cin, kernel}, f32, tag::any);
  // torch's layouts: [cout][cin][k] (oiw) for a convolution, [cin][cout][k] transposed (bac:
  // the first two dimensions swapped).
  const memory::desc user_md({cout, cin, kernel}, f32, transposed ? tag::bac : tag::oiw);
  const memory::dims strides{stride}, dilates{dilation - 1}, pads{pad};
  memory::desc weights_md;
  if (transposed) {
    const dnnl::deconvolution_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct, m.src_md,
         any_weights, m.dst_md, strides, dilates, pads, pads},
        m.engine);
    weights_md = pd.weights_desc();
    m.conv = dnnl::deconvolution_forward(pd);
  } else {
    const dnnl::convolution_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, m.src_md,
         any_weights, m.dst_md, strides, dilates, pads, pads},
        m.engine);
    weights_md = pd.weights_desc();
    m.conv = dnnl::convolution_forward(pd);
  }
  memory user(user_md, m.engine, const_cast<float*>(w));
  m.weights = memory(weights_md, m.engine);
  dnnl::reorder(user, m.weights).execute(m.stream, user, m.weights);
  m.stream.wait();
}

OnednnConv1d::~OnednnConv1d() = default;

int64_t OnednnConv1d::out_length() const { return impl_->out_length; }

int64_t OnednnConv1d::out_values() const { return impl_->out_length * impl_->cout; }

void OnednnConv1d::run(const float* x, float* y) {
  Impl& m = *impl_;
  memory src(m.src_md, m.engine, const_cast<float*>(x));
  memory dst(m.dst_md, m.engine, y);
  m.conv.execute(m.stream,
                 {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, m.weights}, {DNNL_ARG_DST, dst}});
  m.stream.wait();
}

}  // namespace cosy::bench
