#include "kernels/register_kernels.h"

#include <atomic>

#include "common/tf_status.h"
#include "kernels/activation_loops.h"
#include "kernels/arg_max.h"
#include "kernels/batch_matmul.h"
#include "kernels/batch_norm.h"
#include "kernels/branch_ops.h"
#include "kernels/conv.h"
#include "kernels/conv_backprop.h"
#include "kernels/einsum.h"
#include "kernels/elementwise.h"
#include "kernels/indexing.h"
#include "kernels/layer_norm.h"
#include "kernels/loop_ops.h"
#include "kernels/losses.h"
#include "kernels/matmul.h"
#include "kernels/one_hot.h"
#include "kernels/op_definitions.h"
#include "kernels/pad.h"
#include "kernels/pooling.h"
#include "kernels/quantize.h"
#include "kernels/recurrent_cells.h"
#include "kernels/reduction.h"
#include "kernels/registered_kernels.h"
#include "kernels/resize.h"
#include "kernels/resource_scatter.h"
#include "kernels/reverse.h"
#include "kernels/scale_shift.h"
#include "kernels/scan.h"
#include "kernels/space_batch.h"
#include "kernels/tensor_list.h"
#include "kernels/transpose.h"
#include "runtime/runtime.h"

namespace int8flow::kernels {
namespace {
std::atomic<bool> registered{false};
}  // namespace

void InitKernels(const char* device_type, TF_Status* status) {
  if (runtime::FaultInjected("kernel_init"))
    return SetError(status, TF_INTERNAL, "injected failure (INT8FLOW_TEST_FAULT=kernel_init)");
  RegisterOpDefinitions(status);
  if (TF_GetCode(status) != TF_OK) return;
  for (auto step : {&RegisterMatMulKernels,
                    &RegisterConvKernels,
                    &RegisterConvBackpropKernels,
                    &RegisterElementwiseKernels,
                    &RegisterPadKernels,
                    &RegisterPoolingKernels,
                    &RegisterTransposeKernels,
                    &RegisterResizeKernels,
                    &RegisterReverseKernels,
                    &RegisterArgMaxKernels,
                    &RegisterOneHotKernels,
                    &RegisterReductionKernels,
                    &RegisterScanKernels,
                    &RegisterBatchMatMulKernels,
                    &RegisterEinsumKernels,
                    &RegisterIndexingKernels,
                    &RegisterLoopKernels,
                    &RegisterLayerNormKernels,
                    &RegisterScaleShiftKernels,
                    &RegisterRecurrentCellKernels,
                    &RegisterBatchNormKernels,
                    &RegisterSpaceBatchKernels,
                    &RegisterQuantizeKernels,
                    &RegisterTensorListKernels,
                    &RegisterResourceScatterKernels,
                    &RegisterBranchKernels,
                    &RegisterActivationLoopKernels,
                    &RegisterLossKernels}) {
    step(device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
  registered = true;
}

bool KernelsRegistered() { return registered; }

}  // namespace int8flow::kernels
