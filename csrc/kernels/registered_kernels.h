// What the graph pass asks the kernels room at run time: whether
// TF_InitKernel registered our kernels, and which nodes a twin kernel serves.
// Both answers come from the registrations themselves (register_kernels.cc,
// op_definitions.cc), made when TF loads the plugin, so they stay in this
// room; this header, unlike the room's others, includes no oneDNN and no
// kernel internals, so that the graph pass may include it.
#pragma once

#include "tensorflow/core/framework/node_def.pb.h"

namespace int8flow::kernels {

// True once InitKernels succeeded: the graph pass rewrites into our private
// ops only then, since without their kernels the rewritten graph cannot run.
bool KernelsRegistered();

// Whether one of our twin kernels serves `node` (its op and type attrs); TF's
// own DEVICE_DEFAULT kernels (int32 AddV2, ...) keep the standard name.
bool TwinKernelServes(const tensorflow::NodeDef& node);

// Whether the QCPU kernel for `node` serves loop and cond bodies only
// (KernelSpec::loop_only: RNN cells' activations and gradients, optimizers'
// counters, bf16/float16 nodes on float32 kernels), where no other device can
// stand in; elsewhere TF's CPU kernel runs it, as before those kernels.
bool LoopOnlyKernelServes(const tensorflow::NodeDef& node);

}  // namespace int8flow::kernels
