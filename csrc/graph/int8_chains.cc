// The INT8 rewrite's last steps: a static Quantize moved before the MaxPool
// it reads, and int8 chained from one quantized layer into the next.
#include <string>
#include <utility>
#include <vector>

#include "graph/int8_internal.h"
#include "ops/op_names.h"

namespace int8flow::graph::int8_rewrite {
namespace {

// A quantized op's inputs before its fused ops' args: the two operands, the
// activations' scale and zero point, the weights' scales.
constexpr int kQuantizedOperands = 5;

bool IsQuantizedOp(const NodeDef& node) {
  return node.op() == ops::kQuantizedMatMul || node.op() == ops::kQuantizedConv2D ||
         node.op() == ops::kQuantizedDepthwiseConv2D || node.op() == ops::kQuantizedConv3D;
}

// The input of a quantized op that its fused Add adds in, or -1.
int AddendInput(const NodeDef& node) {
  int input = kQuantizedOperands;
  for (const std::string& op : AttrOf(node, "fused_ops").list().s()) {
    if (op == "Add") return input;
    input += ops::FusedOpArgs(op);
  }
  return -1;
}

// A quantized op whose float output every reader quantizes again with the
// same fixed range (static _QcpuQuantize nodes) or adds in through its fused
// Add: it outputs `range`. No chain when `range.qdq` is null.
struct Int8Chain {
  explicit Int8Chain(std::string producer_name) : producer(std::move(producer_name)) {}
  std::string producer;
  FixedRange range;
  std::set<std::string> quantizes;  // the Quantize readers it replaces
  std::set<std::string> adders;     // quantized ops adding it in
};

// `producer`'s chain, or one with no range when some reader needs floats.
Int8Chain FindChain(const NodeDef& producer, const Readers& readers) {
  Int8Chain chain(producer.name());
  const auto found = readers.find(producer.name());
  if (found == readers.end()) return chain;
  for (const NodeDef* reader : found->second) {
    for (int i = 0; i < reader->input_size(); ++i) {
      const TensorRef ref = ParseTensorRef(reader->input(i));
      if (ref.node != producer.name() || ref.port < 0) continue;  // control edges take any dtype
      if (reader->op() == ops::kQuantize && i == 0 && AttrOf(*reader, "mode").s() == "static" &&
          (chain.range.qdq == nullptr || SameRange(chain.range, StaticRangeOf(*reader)))) {
        if (chain.range.qdq == nullptr) chain.range = StaticRangeOf(*reader);
        chain.quantizes.insert(reader->name());
      } else if (IsQuantizedOp(*reader) && i == AddendInput(*reader)) {
        chain.adders.insert(reader->name());
      } else {
        return Int8Chain(producer.name());
      }
    }
  }
  return chain;
}

}  // namespace

int QuantizeBeforeMaxPool(tensorflow::GraphDef& graph, const std::set<std::string>& preserve) {
  std::map<std::string, std::vector<std::string>>
      quantizes_of;  // MaxPool -> its readers, Quantizes
  {
    const Readers readers = ReadersOf(graph);
    for (const NodeDef& pool : graph.node()) {
      const auto found = readers.find(pool.name());
      if (pool.op() != "MaxPool" || AttrOf(pool, "T").type() != tensorflow::DT_FLOAT ||
          preserve.count(pool.name()) || found == readers.end())
        continue;
      std::vector<std::string> quantizes;
      for (const NodeDef* reader : found->second) {
        const TensorRef read = ParseTensorRef(reader->input(0));
        const bool same = reader->op() == ops::kQuantize &&
                          AttrOf(*reader, "mode").s() == "static" && reader->input_size() == 1 &&
                          read.node == pool.name() && read.port == 0 &&
                          reader->device() == pool.device() &&
                          SameRange(StaticRangeOf(*reader), StaticRangeOf(*found->second.front()));
        if (!same) break;
        quantizes.push_back(reader->name());
      }
      if (quantizes.size() == found->second.size()) quantizes_of[pool.name()] = quantizes;
    }
  }
  const NodeIndex nodes(graph);
  Rewiring rewiring;  // the Quantizes' outputs -> what replaces them
  std::set<std::string> pools, removed;
  for (const auto& [pool_name, quantizes] : quantizes_of) {
    NodeDef& pool = *graph.mutable_node(nodes.At(pool_name));
    NodeDef& moved = *graph.mutable_node(nodes.At(quantizes.front()));
    *moved.mutable_input(0) = pool.input(0);
    *pool.mutable_input(0) = moved.name();
    (*pool.mutable_attr())["T"].set_type(AttrOf(moved, "T").type());
    for (const std::string& quantize : quantizes) {
      rewiring.Replace(quantize, {pool_name, moved.name() + ":1", moved.name() + ":2"});
      if (quantize != moved.name()) removed.insert(quantize);
    }
    pools.insert(pool_name);
  }
  rewiring.Apply(graph, /*skip=*/pools);  // a moved pool reads its Quantize
  RemoveNodes(graph, removed);
  return static_cast<int>(quantizes_of.size());
}

int ChainInt8(tensorflow::GraphDef& graph, const std::set<std::string>& preserve) {
  std::vector<Int8Chain> chains;
  {
    const Readers readers = ReadersOf(graph);
    for (const NodeDef& node : graph.node())
      if (IsQuantizedOp(node) && AttrOf(node, "Tout").type() == tensorflow::DT_FLOAT &&
          !preserve.count(node.name()))
        if (Int8Chain chain = FindChain(node, readers); chain.range.qdq)
          chains.push_back(std::move(chain));
  }
  const NodeIndex nodes(graph);              // of the nodes now; adding more keeps them
  Rewiring rewiring;                         // a Quantize's outputs -> what replaces them
  std::map<std::string, FixedRange> adders;  // -> the range of what they add in
  std::set<std::string> removed;
  for (const Int8Chain& chain : chains) {
    const FixedRange& range = chain.range;
    auto& attrs = *graph.mutable_node(nodes.At(chain.producer))->mutable_attr();
    attrs["Tout"].set_type(range.type);
    attrs["out_scale"].set_f(range.scale);
    attrs["out_zero_point"].set_i(range.zero_point);
    const NodeDef producer = graph.node(nodes.At(chain.producer));
    NodeDef& scale = AddScalarConst(graph, producer, "out_scale", tensorflow::DT_FLOAT);
    scale.mutable_attr()->at("value").mutable_tensor()->add_float_val(range.scale);
    NodeDef& zero_point = AddScalarConst(graph, producer, "out_zero_point", tensorflow::DT_INT32);
    zero_point.mutable_attr()->at("value").mutable_tensor()->add_int_val(range.zero_point);
    for (const std::string& quantize : chain.quantizes) {
      rewiring.Replace(quantize, {chain.producer, scale.name(), zero_point.name()});
      removed.insert(quantize);
    }
    for (const std::string& adder : chain.adders) adders[adder] = range;
  }
  rewiring.Apply(graph);
  for (const auto& [adder, range] : adders) {
    NodeDef& node = *graph.mutable_node(nodes.At(adder));
    auto& attrs = *node.mutable_attr();
    attrs["Targs"].mutable_list()->set_type(AddendInput(node) - kQuantizedOperands, range.type);
    attrs["addend_scale"].set_f(range.scale);
    attrs["addend_zero_point"].set_i(range.zero_point);
  }
  RemoveNodes(graph, removed);
  return static_cast<int>(chains.size());
}

}  // namespace int8flow::graph::int8_rewrite
