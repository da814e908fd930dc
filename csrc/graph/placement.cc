#include "graph/placement.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <unordered_map>

#include "graph/graph_shapes.h"
#include "graph/graph_util.h"
#include "kernels/registered_kernels.h"
#include "ops/activations.h"
#include "ops/op_names.h"
#include "runtime/runtime.h"
#include "tensorflow/core/framework/op_kernel.h"  // KernelDefAvailable

namespace int8flow::graph {
namespace {

// `node`, on QCPU, as the same node on TF's CPU.
void MoveToCpu(tensorflow::NodeDef& node) {
  const std::string qcpu_part = std::string("/device:") + device::kDeviceType + ":";
  std::string where = node.device();
  where.replace(where.find(qcpu_part), qcpu_part.size(), "/device:CPU:");
  node.set_device(where);
}

// Whether `node` passes a resource on: its T is DT_RESOURCE (Identity, and
// TF1 control flow's Switch, Merge, Enter, Exit, NextIteration) or lists one
// (IdentityN).
bool PassesResource(const tensorflow::NodeDef& node) {
  const auto type = node.attr().find("T");
  if (type == node.attr().end()) return false;
  if (type->second.type() == tensorflow::DT_RESOURCE) return true;
  for (const int t : type->second.list().type())
    if (t == tensorflow::DT_RESOURCE) return true;
  return false;
}

}  // namespace

// A variable is a resource in one device's resource manager, and a
// VarHandleOp with a shared_name finds it there by name. TF places each
// function on its own: a v1 SavedModel's restore function assigns the
// variables on CPU (RestoreV2 has only a CPU kernel, and its group follows),
// while its signature's reads would land on QCPU, whose manager has no such
// variable ("Container localhost does not exist"). On CPU, as on stock TF,
// every function finds them; a QCPU reader gets the value copied over. The
// handle moves with every node that passes it on (control flow included:
// TF checks a resource is used on its own device) and every node reading
// it; function calls keep their place (TF places a call's body by its
// arguments' devices). Only in functions (graphs with _Arg or _Retval): a
// TF1 Session's placer places the whole graph at once, so there the restore
// and the reads agree, and the variables stay where it put them.
void MoveNamedVariablesToCpu(tensorflow::GraphDef& graph) {
  bool function = false;
  std::set<std::string> handles;  // nodes whose output is (or passes on) a named variable's handle
  for (const tensorflow::NodeDef& node : graph.node()) {
    function = function || node.op() == "_Arg" || node.op() == "_Retval";
    const auto name = node.attr().find("shared_name");
    if (node.op() == "VarHandleOp" && name != node.attr().end() && !name->second.s().empty())
      handles.insert(node.name());
  }
  if (!function || handles.empty()) return;
  const auto reads_handle = [&](const tensorflow::NodeDef& node) {
    for (const std::string& input : node.input()) {
      const TensorRef ref = ParseTensorRef(input);
      if (ref.port >= 0 && handles.count(ref.node)) return true;
    }
    return false;
  };
  for (bool grew = true; grew;) {  // to a fixed point: a loop's Merge reads its NextIteration
    grew = false;
    for (const tensorflow::NodeDef& node : graph.node())
      if (!handles.count(node.name()) && PassesResource(node) && reads_handle(node)) {
        handles.insert(node.name());
        grew = true;
      }
  }
  for (tensorflow::NodeDef& node : *graph.mutable_node()) {
    if (!OnQcpu(node) || node.op() == "PartitionedCall" || node.op() == "StatefulPartitionedCall")
      continue;
    if (handles.count(node.name()) || reads_handle(node)) MoveToCpu(node);
  }
}

// A Const on CPU read only by QCPU nodes is copied to QCPU on every call.
// Constant folding leaves such Consts behind: it gives a folded node's Const
// that node's device, and a QDQ graph's Dequantize of int8 weights sits on
// CPU (no QCPU kernel). Moved to QCPU, they are read in place. Integer
// Consts stay: TF keeps those in host memory for shape inputs.
void MoveConstantsToQcpu(tensorflow::GraphDef& graph) {
  const Readers readers = ReadersOf(graph);
  std::map<std::string, std::string> moves;  // Const -> a QCPU reader's device
  for (const tensorflow::NodeDef& node : graph.node()) {
    if (node.op() != "Const" || !OnCpu(node)) continue;
    const auto dtype = node.attr().find("dtype");
    if (dtype == node.attr().end() || dtype->second.type() != tensorflow::DT_FLOAT) continue;
    const auto users = readers.find(node.name());
    if (users == readers.end()) continue;
    bool all_qcpu = true;
    for (const tensorflow::NodeDef* user : users->second) all_qcpu = all_qcpu && OnQcpu(*user);
    if (all_qcpu) moves[node.name()] = users->second.front()->device();
  }
  for (tensorflow::NodeDef& node : *graph.mutable_node()) {
    const auto move = moves.find(node.name());
    if (move != moves.end()) node.set_device(move->second);
  }
}

// A Shape, Size or Rank on CPU reading a QCPU tensor copies the whole tensor
// to the host every call, to read its shape. TF's placer puts one there when
// its input's producer was on CPU at placement and a rewrite moved it later
// (int8flow.quantize's embeddings: Dequantize). On QCPU its kernel reads only
// the shape, and its output is in host memory already.
void MoveShapeReadersToQcpu(tensorflow::GraphDef& graph) {
  std::unordered_map<std::string, std::string> qcpu_device_of;
  for (const tensorflow::NodeDef& node : graph.node())
    if (OnQcpu(node)) qcpu_device_of[node.name()] = node.device();
  for (tensorflow::NodeDef& node : *graph.mutable_node()) {
    if ((node.op() != "Shape" && node.op() != "Size" && node.op() != "Rank") || !OnCpu(node) ||
        node.input_size() < 1)
      continue;
    const auto producer = qcpu_device_of.find(ParseTensorRef(node.input(0)).node);
    if (producer != qcpu_device_of.end()) node.set_device(producer->second);
  }
}

// A function result that TF wants on its CPU (QuantizedModel asks so, with
// an Identity under tf.device("/CPU:0") that Grappler folds into the
// _Retval) but a QCPU node makes costs a device-to-host copy and a wait on
// TF's event manager: 0.12 ms a call at MobileNetV2's batch 1. QCPU's memory
// is host memory, so an Identity on QCPU whose kernel hands its output over
// in host memory (indexing.cc) now sits between them, and TF's CPU reads the
// result in place. For every dtype that kernel takes: a top-1 ArgMax's int64
// and a mask's bool results too.
int HandResultsToHost(tensorflow::GraphDef& graph) {
  static const tensorflow::DeviceType qcpu(device::kDeviceType);
  std::unordered_map<std::string, std::string> qcpu_device_of;  // QCPU node -> its device
  for (const tensorflow::NodeDef& node : graph.node())
    if (OnQcpu(node) && node.op() != "_Arg") qcpu_device_of[node.name()] = node.device();
  std::map<std::string, std::string> handed;  // QCPU tensor -> its host Identity
  const int original_size = graph.node_size();
  for (int i = 0; i < original_size; ++i) {
    const tensorflow::NodeDef& result = graph.node(i);
    if (result.op() != "_Retval" || !OnCpu(result) || result.input_size() != 1) continue;
    const auto dtype = result.attr().find("T");
    if (dtype == result.attr().end()) continue;
    const std::string input = result.input(0);
    const TensorRef ref = ParseTensorRef(input);
    const auto producer = qcpu_device_of.find(ref.node);
    if (ref.port < 0 || producer == qcpu_device_of.end()) continue;
    tensorflow::NodeDef identity;
    identity.set_name(ref.node + "/host_output_" + std::to_string(ref.port));
    identity.set_op("Identity");
    identity.set_device(producer->second);
    identity.add_input(input);
    (*identity.mutable_attr())["T"].set_type(dtype->second.type());
    (*identity.mutable_attr())["_kernel"].set_s(ops::kHostOutputLabel);
    if (!tensorflow::KernelDefAvailable(qcpu, identity)) continue;
    auto [it, added] = handed.emplace(input, identity.name());
    if (added) *graph.add_node() = std::move(identity);
    graph.mutable_node(i)->set_input(0, it->second);
  }
  return static_cast<int>(handed.size());
}

// Some QCPU kernels exist for loop and cond bodies only, which TF
// instantiates on QCPU alone and this pass never sees: RNN cells'
// activations and gradients, optimizers' int64 counters, bf16/float16 nodes
// on float32 kernels. TF's placer puts any node QCPU has a kernel for on
// QCPU; a node the pass sees is one TF's CPU can run, with its vectorized
// (or, in bf16, native) kernel: there it runs, as before those kernels.
// But not where the move costs more than the kernel gains:
// - in a lowered loop, where a node on TF's CPU splits the loop between two
//   devices, and each step pays copies there and back (an LSTM's fit ran 262
//   ms an epoch with its SigmoidGrad and TanhGrad on TF's CPU, 150-190 without);
// - when a QCPU While, not lowered yet, reads it: the lowering places each
//   loop variable's Enter, and so the whole variable, on its input's device.
//   A gradient loop's weight-gradient sums start as Fill zeros, and on TF's
//   CPU each step copied every sum to QCPU for its AddN and back (an LSTM's
//   fit: 143 ms an epoch, 93-110 without);
// - when a QCPU node feeds it, but for a product and a bf16/float16 node (a
//   bf16 MatMul: TF's native kernel is worth the copies; a model under a
//   mixed-precision policy runs as before). Each copy is a wait on TF's event manager
//   (30-100 us), more than a plain loop takes on a layer's gradient: a Keras
//   MLP's fit copied a ReluGrad's inputs out and its result back, and
//   Adam's step count went from QCPU to TF's CPU and back for each weight.
//   A transcendental op (Erf, Sin, ...: our loop calls libm per element,
//   5-20 times TF's vectorized kernel) stays only on a tensor known to be
//   small, where the copies cost more. Not Pow, which Grappler leaves only for
//   exponents other than 0, +-0.5, 1, 2, 3 and -1, and Keras' Adam raises its
//   scalar betas with, where the step count's shape is often unknown. A node
//   fed by a moved one moves in turn.
void MoveLoopOnlyNodesToCpu(tensorflow::GraphDef& graph, const GraphShapes& shapes) {
  static const std::set<std::string> products = {
      "MatMul", "BatchMatMul",           "BatchMatMulV2",       "BatchMatMulV3",       "Einsum",
      "Conv2D", "DepthwiseConv2dNative", "Conv2DBackpropInput", "Conv2DBackpropFilter"};
  static const std::set<std::string> transcendental = {
      "Expm1", "Erf", "Erfc", "Softplus", "Selu", "Cos", "Sin", "Tan", "Atan", "LogSoftmax"};
  constexpr int64_t kSmallElements = 4096;
  const auto small = [&](const tensorflow::NodeDef& node) {
    const auto dims = shapes.Output(node.name(), 0);
    if (!dims) return false;
    int64_t n = 1;
    for (int64_t d : *dims) n = d < 0 ? kSmallElements + 1 : n * d;
    return n <= kSmallElements;
  };
  std::set<std::string> stay = NodesInLoops(graph);
  for (const tensorflow::NodeDef& node : graph.node()) {
    if (!OnQcpu(node) || (node.op() != "While" && node.op() != "StatelessWhile")) continue;
    for (const std::string& input : node.input()) stay.insert(ParseTensorRef(input).node);
  }
  const DataProducers producers(graph);
  // Consts and function arguments are read where they are needed.
  const auto fed_by_qcpu = [&](const tensorflow::NodeDef& node) {
    const auto inputs = producers.Of(node);
    return std::any_of(inputs.begin(), inputs.end(), [](const tensorflow::NodeDef* producer) {
      return producer != nullptr && OnQcpu(*producer) && producer->op() != "Const" &&
             producer->op() != "_Arg";
    });
  };
  const auto half_typed = [](const tensorflow::NodeDef& node) {
    return std::any_of(node.attr().begin(), node.attr().end(), [](const auto& attr) {
      const tensorflow::DataType type = attr.second.type();
      return type == tensorflow::DT_BFLOAT16 || type == tensorflow::DT_HALF;
    });
  };
  for (bool moved = true; moved;) {
    moved = false;
    for (tensorflow::NodeDef& node : *graph.mutable_node()) {
      const bool worth_its_copies = products.count(node.op()) || half_typed(node) ||
                                    (transcendental.count(node.op()) && !small(node));
      if (!OnQcpu(node) || !kernels::LoopOnlyKernelServes(node) || stay.count(node.name()) ||
          (!worth_its_copies && fed_by_qcpu(node)))
        continue;
      MoveToCpu(node);
      moved = true;
    }
  }
}

// An element-wise node on QCPU fed only by TF's CPU (the bias and relu after
// an op with no QCPU kernel: a Cumprod, a TopK) pays a copy of its
// input to QCPU and gains nothing: TF's CPU kernel is as fast at
// memory-bound work. It runs on TF's CPU instead, and so does the next one
// fed by it, so the copy moves to where a QCPU kernel needs the data, or
// goes away: a Conv3D layer (conv, bias, relu), before Conv3D had a QCPU
// kernel, ran 6.8 ms, stock TF 3.8.
// Parameters (Consts, variable reads: a bias; function arguments) count as
// from anywhere: they cost a copy of their own at most. A Const on QCPU read
// only by moved nodes moves too.
void MoveCpuFedElementwiseToCpu(tensorflow::GraphDef& graph) {
  static const std::set<std::string> elementwise = [] {
    std::set<std::string> ops = {"BiasAdd", "AddV2",   "Add",     "Sub",
                                 "Mul",     "RealDiv", "Maximum", "Minimum"};
    for (const char* activation : ops::kActivationOps)
      if (activation[0] != '_') ops.insert(activation);  // ours have no CPU kernel
    return ops;
  }();
  const DataProducers producers(graph);
  // Parameters: Consts, variable reads, function arguments (a captured
  // tensor, or the input, which TF copies once wherever it is read), and
  // their reshapes (Keras 3 reshapes a Conv3D's bias), wherever they are.
  std::set<const tensorflow::NodeDef*> parameters;
  for (const tensorflow::NodeDef& node : graph.node())
    if (node.op() == "Const" || node.op() == "ReadVariableOp" || node.op() == "_Arg")
      parameters.insert(&node);
  static const std::set<std::string> reshapes = {"Reshape", "Squeeze", "ExpandDims", "Identity"};
  for (bool grew = true; grew;) {
    grew = false;
    for (const tensorflow::NodeDef& node : graph.node()) {
      if (!reshapes.count(node.op()) || parameters.count(&node)) continue;
      const auto inputs = producers.Of(node);
      if (!inputs.empty() && std::all_of(inputs.begin(), inputs.end(),
                                         [&](const auto* p) { return parameters.count(p) > 0; }))
        grew = parameters.insert(&node).second;
    }
  }
  const auto fed_by_cpu = [&](const tensorflow::NodeDef& node) {
    bool any = false;
    for (const tensorflow::NodeDef* producer : producers.Of(node)) {
      if (producer == nullptr) return false;
      if (parameters.count(producer)) continue;
      if (!OnCpu(*producer)) return false;
      any = true;
    }
    return any;
  };
  for (bool moved = true; moved;) {  // until no node moves: each pass moves the next ones
    moved = false;
    for (tensorflow::NodeDef& node : *graph.mutable_node()) {
      if (!OnQcpu(node) || !elementwise.count(node.op()) || !fed_by_cpu(node)) continue;
      MoveToCpu(node);
      moved = true;
    }
  }
  const Readers readers = ReadersOf(graph);
  for (tensorflow::NodeDef& node : *graph.mutable_node()) {
    const auto users = readers.find(node.name());
    if (node.op() != "Const" || !OnQcpu(node) || users == readers.end()) continue;
    bool all_cpu = true;
    for (const tensorflow::NodeDef* user : users->second) all_cpu = all_cpu && OnCpu(*user);
    if (all_cpu) MoveToCpu(node);
  }
}

// Grappler's arithmetic optimizer rewrites nodes after TF placed them, and may
// leave one on QCPU as an op QCPU has no kernel for: log(1 + x) becomes Log1p,
// x * ones becomes Tile (exp(x) - 1 becomes Expm1, which MoveLoopOnlyNodesToCpu
// sends to CPU, its kernel being loop-only). TF would fail the call with
// NotFound. Such a node goes to TF's CPU instead, like any op without a QCPU
// kernel, and is counted as one (stats()["cpu_ops"]). Runs after the twin
// renaming, whose names have kernels.
void MoveKernellessNodesToCpu(tensorflow::GraphDef& graph) {
  static const tensorflow::DeviceType qcpu(device::kDeviceType);
  for (tensorflow::NodeDef& node : *graph.mutable_node()) {
    if (!OnQcpu(node) || tensorflow::KernelDefAvailable(qcpu, node)) continue;
    MoveToCpu(node);
    runtime::WarnOnce("'" + node.op() + "', made by a graph rewrite after placement, " +
                      "has no QCPU kernel: it runs on TF's CPU");
  }
}

}  // namespace int8flow::graph
