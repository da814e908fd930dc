// What the INT8 rewrite's files share (int8_rewrite.h says what the rewrite
// does): the driver (int8_rewrite.cc) runs the QDQ ranges (int8_ranges.cc),
// the weight sources (int8_weights.cc), the embeddings (int8_embeddings.cc)
// and the MaxPool move and int8 chains (int8_chains.cc), which share the node
// index, the rewiring of readers and the small NodeDef helpers below.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "graph/graph_shapes.h"
#include "graph/graph_util.h"
#include "ops/quantizable_ops.h"
#include "tensorflow/core/framework/graph.pb.h"

namespace int8flow::graph::int8_rewrite {

using tensorflow::AttrValue;
using tensorflow::NodeDef;

// ---- helpers ----------------------------------------------------------------

NodeDef& AddNode(tensorflow::GraphDef& graph, const NodeDef& user, const std::string& suffix,
                 const char* op, const std::string& input);

NodeDef& AddScalarConst(tensorflow::GraphDef& graph, const NodeDef& user, const std::string& suffix,
                        tensorflow::DataType type);

// The graph's nodes by name, and the node making a tensor ("name:port").
// It holds while the graph gains nodes, not once it loses any (the indexes
// shift): rebuild it after RemoveNodes.
class NodeIndex {
 public:
  explicit NodeIndex(const tensorflow::GraphDef& graph) : graph_(graph) {
    for (int i = 0; i < graph.node_size(); ++i) index_[graph.node(i).name()] = i;
  }
  // The producer of `tensor` when it is output 0 of a node with op `op`.
  const NodeDef* Producer(const std::string& tensor, const char* op) const {
    const TensorRef ref = ParseTensorRef(tensor);
    const auto it = index_.find(ref.node);
    if (ref.port != 0 || it == index_.end() || graph_.node(it->second).op() != op) return nullptr;
    return &graph_.node(it->second);
  }
  // The index of node `name` in the graph (std::out_of_range when absent).
  int At(const std::string& name) const { return index_.at(name); }

 private:
  const tensorflow::GraphDef& graph_;
  std::unordered_map<std::string, int> index_;
};

// The readers of nodes being replaced, rewired to what replaces them, all in
// one pass over the graph: a read of output i of a replaced node becomes one
// of its replacement's output i, and a control edge on it ("^name") one on
// the node whose output 0 replaces its own.
class Rewiring {
 public:
  // `outputs[i]` replaces output i of node `node`; `outputs[0]` is a node's
  // output 0, written as that node's name.
  void Replace(const std::string& node, const std::vector<std::string>& outputs) {
    renamed_[node] = renamed_[node + ":0"] = outputs[0];
    for (size_t i = 1; i < outputs.size(); ++i)
      renamed_[node + ":" + std::to_string(i)] = outputs[i];
    renamed_["^" + node] = "^" + outputs[0];
  }
  // Rewires the inputs of every node of `graph` but those named in `skip`.
  void Apply(tensorflow::GraphDef& graph, const std::set<std::string>& skip = {}) const {
    for (NodeDef& node : *graph.mutable_node()) {
      if (skip.count(node.name())) continue;
      for (std::string& input : *node.mutable_input())
        if (const auto it = renamed_.find(input); it != renamed_.end()) input = it->second;
    }
  }

 private:
  std::map<std::string, std::string> renamed_;  // a replaced tensor -> what replaces it
};

// A float Const's values, `count` of them (a single stored value repeats);
// empty when it holds another number of them.
std::vector<float> FloatValues(const NodeDef& constant, size_t count);

// A reference, so that AttrOf(...).list().s() may head a range-for; an
// empty value for a missing attr.
const AttrValue& AttrOf(const NodeDef& node, const char* name);

// ---- the rewrites' table (int8_rewrite.cc) ----------------------------------

struct Rewrite {
  const char* float_op;  // the row's op or its fused op, as the fusion pass leaves it
  const ops::QuantizableOp* quantizable;  // the row (ops/quantizable_ops.h)
  // The float op's attrs the quantized op keeps, as {float name, quantized
  // name} (the rest, such as T and num_args, it spells its own way).
  std::vector<std::pair<const char*, const char*>> kept_attrs;
};

// ---- QDQ ranges (int8_ranges.cc) --------------------------------------------

// Activations quantized with a range the graph fixes: the QDQ node (its
// input 0 is the float tensor), and the int8 type and parameters of that range.
struct FixedRange {
  const NodeDef* qdq = nullptr;
  tensorflow::DataType type = tensorflow::DT_UINT8;
  float scale = 1.f;
  int zero_point = 0;
};

// An 8-bit QDQ node making `tensor`, read as our Quantize's parameters:
// - FakeQuantWithMinMaxArgs (int8flow.quantize, TF's QAT): u8 over
//   [min, max], its zero point nudged as TF nudges it so that 0.0 is exact
//   (on AMX, s8 symmetric when that zero point is not 0);
// - QuantizeAndDequantizeV4 with a given constant range, per tensor
//   (tf.quantization.quantize_and_dequantize_v2): s8 (signed_input) or u8,
//   zero point 0, with the scale TF derives from whichever end binds.
// Not found: `range.qdq` stays null.
FixedRange FixedRangeOf(const NodeIndex& nodes, const std::string& tensor);

// A static _QcpuQuantize node's range (`qdq` is that node).
FixedRange StaticRangeOf(const NodeDef& quantize);

bool SameRange(const FixedRange& a, const FixedRange& b);

// ---- weight sources (int8_weights.cc) ---------------------------------------

// The scales of a qint8 SCALED Dequantize, `channels` of them, from its min
// and max Consts by TF's rule: the scale that fits both ends. Empty when the
// Consts hold another number of values.
std::vector<float> ScaledScales(const NodeDef& dequantize, const NodeDef& min, const NodeDef& max,
                                size_t channels);

// A float Dequantize of qint8 in TF's SCALED mode (the form int8flow.quantize
// saves); `per_tensor` asks for axis -1 too.
bool IsScaledInt8Dequantize(const NodeDef& node, bool per_tensor);

// Weights as a QDQ graph stores them, int8 values -> Dequantize (SCALED, per
// tensor or along `channel_axis`), handed to the quantized op as they are,
// with a Const of scales added on `user`'s device. The values are a qint8
// Const (copied into an s8 Const), or a Bitcast to qint8 of an int8 tensor
// whose shape `shapes` knows (a captured value or a variable read, as
// int8flow.quantize runs them: not copied with the graph), read as it is. TF
// may not fold that Dequantize (it skips large constants), and then it would
// run on CPU and copy float weights over every call. False when `dequantize`
// is not that form; the caller then quantizes the float weights itself.
bool AddStoredInt8Weights(tensorflow::GraphDef& graph, const NodeIndex& nodes,
                          const GraphShapes& shapes, const NodeDef& dequantize,
                          int64_t channel_axis, const ops::QuantizableOp& quantizable,
                          const NodeDef& user, std::string& weights, std::string& scales);

// A Bitcast of int8 to qint8: how a QDQ graph dequantizes int8 values that
// are a tensor rather than a Const (AddStoredInt8Weights, embeddings).
const NodeDef* Int8Bitcast(const NodeIndex& nodes, const std::string& tensor);

// Float weights held in a Const (Grappler folds a QDQ graph's small
// Dequantizes, and BatchNorm scales, into them) are quantized here, once, as
// _QcpuQuantizeWeights would on first use: the s8 Const and Const of scales
// then need no node to run per call. False when `constant` is not a float
// Const of the expected layout, or holds NaN or Inf (the kernel then says so).
// `depthwise`: 8-bit on every CPU (ops::WeightLevels).
bool AddQuantizedConstWeights(tensorflow::GraphDef& graph, const NodeDef* constant,
                              int64_t channel_axis, bool depthwise, const NodeDef& user,
                              std::string& weights, std::string& scales);

// A depthwise filter TF folded (Grappler folds a QDQ graph's Dequantize of
// a small one, and a BatchNorm's scale into it): a float Const [kh, kw, ic, 1].
bool IsFilterOfMultiplierOne(const NodeDef* constant);

// ---- embeddings (int8_embeddings.cc) ----------------------------------------

// An embedding as int8flow.quantize saves it: GatherV2 of a qint8 Const, then
// a per-tensor SCALED Dequantize of the rows gathered. Neither has a QCPU
// kernel for qint8, so both sat on CPU and each call copied the float rows
// over. Here the gather reads the same bytes as an int8 Const on QCPU and our
// Dequantize scales the rows there: the table stays int8 in memory. Returns
// the count rewritten.
int RewriteInt8Embeddings(tensorflow::GraphDef& graph, std::set<std::string>& bypassed);

// ---- the MaxPool move and int8 chains (int8_chains.cc) ----------------------

// MaxPool commutes with quantizing (a rounding, non-decreasing map), so the
// static Quantize of a MaxPool's output may run on its input instead, the
// pool then on int8: a quarter of the bytes, and the pool's producer may
// chain int8 into it (ResNet's stem). Only for a MaxPool read by Quantizes
// alone, all with one range (one per quantized reader): the first moves,
// the rest read through it. Returns how many moved.
int QuantizeBeforeMaxPool(tensorflow::GraphDef& graph, const std::set<std::string>& preserve);

// Int8 between quantized layers: a producer with a chain outputs the int8
// its readers would have made (requantizing is its primitive's last step),
// and they read that. This saves a float write and a quantize pass over the
// tensor, and 3/4 of its bytes. Returns the count of chains made.
int ChainInt8(tensorflow::GraphDef& graph, const std::set<std::string>& preserve);

}  // namespace int8flow::graph::int8_rewrite
