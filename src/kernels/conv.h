// Conv1d and ConvTranspose1d on the CPU, as GEMMs over packed weights.
//  - conv1d: the input (with its pre-activation applied) is copied once into a zero-padded
//    buffer; the GEMM then reads the im2col rows in place (RowGeometry), so dilation and
//    stride cost nothing extra. Groups are separate GEMMs over channel slices.
//  - conv_transpose1d: one GEMM gives every (input step, tap) contribution; each output
//    step then gathers the taps that land on it (no scatter, no races).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/backend.h"
#include "core/thread_pool.h"
#include "kernels/packed_weight.h"

namespace cosy::cpu {

class ConvWeight final : public PreparedWeight {
 public:
  ConvWeight(std::vector<std::shared_ptr<PackedWeight>> groups, int64_t out_channels)
      : groups_(std::move(groups)), out_channels_(out_channels) {}
  int64_t out_features() const override { return out_channels_; }
  int64_t in_features() const override { return groups_.front()->in_features(); }
  WeightFormat format() const override { return groups_.front()->format(); }
  size_t bytes() const override;
  const PackedWeight& group(size_t g) const { return *groups_.at(g); }
  size_t num_groups() const { return groups_.size(); }

 private:
  std::vector<std::shared_ptr<PackedWeight>> groups_;
  int64_t out_channels_;
};

std::shared_ptr<ConvWeight> pack_conv1d(const float* w, int64_t out_channels, int64_t in_per_group,
                                        int64_t kernel, int64_t groups, WeightFormat f);
std::shared_ptr<PackedWeight> pack_conv_transpose1d(const float* w, int64_t in_channels,
                                                    int64_t out_channels, int64_t kernel,
                                                    WeightFormat f);

void conv1d(ThreadPool& pool, std::span<const Segment> segs, const Conv1dArgs& a);
void conv_transpose1d(ThreadPool& pool, std::span<const Segment> segs,
                      const ConvTranspose1dArgs& a);

}  // namespace cosy::cpu
