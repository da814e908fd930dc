// SpaceToBatchND and BatchToSpaceND: tf.nn.depthwise_conv2d and atrous
// convolutions build a dilated convolution from them. Both are one copy of
// each element (no arithmetic), so they are plain loops over rows of the
// trailing dims, the same moves TF's CPU kernels make.
#include "kernels/space_batch.h"

#include <cstring>

#include "kernels/onednn_util.h"

namespace int8flow::kernels {
namespace {

// The batch/space geometry both ops share, in SpaceToBatchND's terms:
// `space` is the batch-of-one-block side [B, S1..SM, rest], `blocks` the
// batch side [prod(block) * B, S1'..SM', rest] with Si' = (Si + pads) / block_i.
struct Geometry {
  std::vector<int64_t> space, batch, block, pad_before;
  int64_t row = 1;  // elements in the trailing (rest) dims
};

// Calls copy(batch_row, space_row) for every row of the batch side; a
// space_row of -1 is padding (zero in SpaceToBatch, skipped in BatchToSpace).
template <class Copy>
void ForEachRow(const Geometry& g, Copy copy) {
  const size_t m = g.block.size();
  const int64_t batch = g.space[0];
  int64_t batch_rows = g.batch[0];
  for (size_t i = 1; i <= m; ++i) batch_rows *= g.batch[i];
  std::vector<int64_t> index(m + 1, 0);  // over batch: [ob, o1..oM]
  for (int64_t r = 0; r < batch_rows; ++r) {
    int64_t offset = index[0] / batch, space_row = index[0] % batch;
    bool inside = true;
    // The block offset of `ob` is row-major over the block shape.
    std::vector<int64_t> k(m);
    for (size_t i = m; i-- > 0;) {
      k[i] = offset % g.block[i];
      offset /= g.block[i];
    }
    for (size_t i = 0; i < m; ++i) {
      const int64_t s = index[i + 1] * g.block[i] + k[i] - g.pad_before[i];
      inside = inside && s >= 0 && s < g.space[i + 1];
      space_row = space_row * g.space[i + 1] + s;
    }
    copy(r, inside ? space_row : -1);
    for (size_t i = m + 1; i-- > 0;) {  // next index, last dim fastest
      if (++index[i] < g.batch[i]) break;
      index[i] = 0;
    }
  }
}

class SpaceBatchKernel {
 public:
  explicit SpaceBatchKernel(TF_OpKernelConstruction* ctx)
      : to_batch_(OpType(ctx) == "SpaceToBatchND") {}

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0), block_tensor = ctx.input(1), pads_tensor = ctx.input(2);
    const auto in = Shape(input.get());
    const auto block_shape = Shape(block_tensor.get());
    const std::vector<int64_t> block = IntValues(block_tensor.get());
    const std::vector<int64_t> pads = IntValues(pads_tensor.get());
    const char* pads_name = to_batch_ ? "paddings" : "crops";
    const size_t m = block.size();
    Require(block_shape.size() == 1,
            [&] { return "block_shape must be 1-D, got " + ShapeString(block_shape); });
    Require(in.size() >= m + 1, [&] {
      return "input rank should be >= " + std::to_string(m + 1) + " instead of " +
             std::to_string(in.size());
    });
    Require(Shape(pads_tensor.get()) == std::vector<int64_t>{static_cast<int64_t>(m), 2}, [&] {
      return std::string(pads_name) + " should have shape [" + std::to_string(m) +
             ", 2] instead of " + ShapeString(Shape(pads_tensor.get()));
    });
    int64_t block_size = 1;
    for (size_t i = 0; i < m; ++i) {
      Require(block[i] >= 1, [&] {
        return "all values in block_shape must be positive, got " + std::to_string(block[i]);
      });
      Require(pads[2 * i] >= 0 && pads[2 * i + 1] >= 0,
              [&] { return std::string("Negative ") + pads_name; });
      block_size *= block[i];
    }
    Geometry g;
    g.block = block;
    for (size_t i = m + 1; i < in.size(); ++i) g.row *= in[i];
    if (to_batch_) {
      g.space = in;
      g.batch = in;
      g.batch[0] = in[0] * block_size;
      for (size_t i = 0; i < m; ++i) {
        const int64_t padded = in[i + 1] + pads[2 * i] + pads[2 * i + 1];
        Require(padded % block[i] == 0, [&] {
          return "padded_shape[" + std::to_string(i) + "]=" + std::to_string(padded) +
                 " is not divisible by block_shape[" + std::to_string(i) +
                 "]=" + std::to_string(block[i]);
        });
        g.batch[i + 1] = padded / block[i];
        g.pad_before.push_back(pads[2 * i]);
      }
    } else {
      Require(in[0] % block_size == 0, [&] {
        return "Input batch dimension (" + std::to_string(in[0]) +
               ") is not divisible by product of block sizes (" + std::to_string(block_size) + ")";
      });
      g.batch = in;
      g.space = in;
      g.space[0] = in[0] / block_size;
      for (size_t i = 0; i < m; ++i) {
        const int64_t cropped = in[i + 1] * block[i] - pads[2 * i] - pads[2 * i + 1];
        Require(cropped >= 0, [&] {
          return "cropped_shape[" + std::to_string(i) + "]=" + std::to_string(cropped) +
                 " must be non-negative";
        });
        g.space[i + 1] = cropped;
        g.pad_before.push_back(pads[2 * i]);
      }
    }
    OwnedTensor output = ctx.allocate_output(0, to_batch_ ? g.batch : g.space, TF_FLOAT);
    if (NumElements(to_batch_ ? g.batch : g.space) == 0) return;
    const float* src = Data<float>(input.get());
    float* dst = Data<float>(output.get());
    const size_t row_bytes = g.row * sizeof(float);
    if (to_batch_) {
      ForEachRow(g, [&](int64_t batch_row, int64_t space_row) {
        if (space_row < 0)
          std::memset(dst + batch_row * g.row, 0, row_bytes);
        else
          std::memcpy(dst + batch_row * g.row, src + space_row * g.row, row_bytes);
      });
    } else {
      ForEachRow(g, [&](int64_t batch_row, int64_t space_row) {
        if (space_row >= 0)
          std::memcpy(dst + space_row * g.row, src + batch_row * g.row, row_bytes);
      });
    }
  }

 private:
  const bool to_batch_;
};

}  // namespace

void RegisterSpaceBatchKernels(const char* device_type, TF_Status* status) {
  for (const auto& [op, pads] :
       {std::pair{"SpaceToBatchND", "paddings"}, {"BatchToSpaceND", "crops"}}) {
    const std::string pads_type = std::string("T") + pads;
    for (TF_DataType block : {TF_INT32, TF_INT64}) {
      for (TF_DataType index : {TF_INT32, TF_INT64}) {
        RegisterKernel<SpaceBatchKernel>(
            {op,
             {{"T", TF_FLOAT}, {"Tblock_shape", block}, {pads_type.c_str(), index}},
             {"block_shape", pads}},
            device_type, status);
        if (TF_GetCode(status) != TF_OK) return;
      }
    }
  }
}

}  // namespace int8flow::kernels
