// The INT8 rewrite's embeddings: a stored int8 table gathered on QCPU as it
// is, its rows scaled there. The table is a qint8 Const gathered, or any int8
// tensor gathered then bitcast to qint8 (a captured value: not in the graph).
#include <string>
#include <vector>

#include "graph/int8_internal.h"
#include "ops/op_names.h"

namespace int8flow::graph::int8_rewrite {

int RewriteInt8Embeddings(tensorflow::GraphDef& graph, std::set<std::string>& bypassed) {
  struct Embedding {
    std::string dequantize, gather, device;
    std::vector<std::string> replaced;  // the qint8 table or the Bitcast, and the range Consts
    float scale;
    bool table_const;  // else the gather reads an int8 table already
  };
  std::vector<Embedding> embeddings;
  const NodeIndex nodes(graph);  // of the nodes now; adding more keeps them
  {
    const Readers readers = ReadersOf(graph);
    const auto only_reader = [&](const std::string& name) -> const NodeDef* {
      const auto it = readers.find(name);
      return it != readers.end() && it->second.size() == 1 ? it->second.front() : nullptr;
    };
    for (const NodeDef& node : graph.node()) {
      if (!IsScaledInt8Dequantize(node, true)) continue;
      // Dequantize(GatherV2(qint8 Const)) or Dequantize(Bitcast(GatherV2(int8 tensor))).
      const NodeDef* bitcast = Int8Bitcast(nodes, node.input(0));
      const NodeDef* gather =
          nodes.Producer(bitcast ? bitcast->input(0) : node.input(0), "GatherV2");
      const NodeDef* gather_reader = bitcast ? bitcast : &node;
      if (!gather || gather->input_size() < 3 || AttrOf(*gather, "batch_dims").i() != 0 ||
          only_reader(gather->name()) != gather_reader ||
          (bitcast && only_reader(bitcast->name()) != &node))
        continue;
      const NodeDef* table = bitcast ? nullptr : nodes.Producer(gather->input(0), "Const");
      const NodeDef* min = nodes.Producer(node.input(1), "Const");
      const NodeDef* max = nodes.Producer(node.input(2), "Const");
      const bool table_ok = bitcast
                                ? AttrOf(*gather, "Tparams").type() == tensorflow::DT_INT8
                                : table && AttrOf(*table, "dtype").type() == tensorflow::DT_QINT8;
      if (!table_ok || !min || !max) continue;
      const std::vector<float> scale = ScaledScales(node, *min, *max, 1);
      const auto users = readers.find(node.name());
      if (scale.empty() || users == readers.end()) continue;
      for (const NodeDef* user : users->second) {
        if (!OnQcpu(*user)) continue;  // placed already: the rows go where a reader is
        embeddings.push_back({node.name(),
                              gather->name(),
                              user->device(),
                              {bitcast ? bitcast->name() : table->name(), min->name(), max->name()},
                              scale[0],
                              bitcast == nullptr});
        break;
      }
    }
  }
  for (const Embedding& e : embeddings) {
    const NodeDef dequantize = graph.node(nodes.At(e.dequantize));
    NodeDef& scale = AddScalarConst(graph, dequantize, "scale", tensorflow::DT_FLOAT);
    scale.mutable_attr()->at("value").mutable_tensor()->add_float_val(e.scale);
    NodeDef& zero_point = AddScalarConst(graph, dequantize, "zero_point", tensorflow::DT_INT32);
    zero_point.mutable_attr()->at("value").mutable_tensor()->add_int_val(0);
    for (NodeDef* added : {&scale, &zero_point}) added->set_device(e.device);
    std::string table_s8;  // a qint8 Const's bytes as an int8 Const for the gather
    if (e.table_const) {
      tensorflow::TensorProto values =
          graph.node(nodes.At(e.replaced[0])).attr().at("value").tensor();
      values.set_dtype(tensorflow::DT_INT8);  // the same bytes
      NodeDef& table = AddNode(graph, dequantize, "table_s8", "Const", "");
      (*table.mutable_attr())["dtype"].set_type(tensorflow::DT_INT8);
      *(*table.mutable_attr())["value"].mutable_tensor() = std::move(values);
      table.set_device(e.device);
      table_s8 = table.name();
    }
    NodeDef& gather = *graph.mutable_node(nodes.At(e.gather));  // add_node may have moved it
    if (!table_s8.empty()) {
      gather.set_input(0, table_s8);
      (*gather.mutable_attr())["Tparams"].set_type(tensorflow::DT_INT8);
    }
    gather.set_device(e.device);
    NodeDef& rows = *graph.mutable_node(nodes.At(e.dequantize));
    rows.set_op(ops::kDequantize);
    rows.clear_input();
    for (const std::string& input : {e.gather, scale.name(), zero_point.name()})
      rows.add_input(input);
    for (const std::string& input : dequantize.input())
      if (input[0] == '^') rows.add_input(input);
    rows.clear_attr();
    (*rows.mutable_attr())["T"].set_type(tensorflow::DT_INT8);
    rows.set_device(e.device);
    bypassed.insert(e.replaced.begin(), e.replaced.end());
  }
  return static_cast<int>(embeddings.size());
}

}  // namespace int8flow::graph::int8_rewrite
