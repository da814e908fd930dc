// The INT8 rewrite's embeddings: a stored int8 table gathered on QCPU as it
// is, its rows scaled there.
#include <string>
#include <vector>

#include "graph/int8_internal.h"
#include "ops/op_names.h"

namespace int8flow::graph::int8_rewrite {

int RewriteInt8Embeddings(tensorflow::GraphDef& graph, std::set<std::string>& bypassed) {
  struct Embedding {
    std::string dequantize, gather, device;
    std::vector<std::string> replaced;  // the qint8 table and the range Consts
    float scale;
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
      const NodeDef* gather = nodes.Producer(node.input(0), "GatherV2");
      if (!gather || gather->input_size() < 3 || AttrOf(*gather, "batch_dims").i() != 0 ||
          only_reader(gather->name()) != &node)
        continue;
      const NodeDef* table = nodes.Producer(gather->input(0), "Const");
      const NodeDef* min = nodes.Producer(node.input(1), "Const");
      const NodeDef* max = nodes.Producer(node.input(2), "Const");
      if (!table || !min || !max || AttrOf(*table, "dtype").type() != tensorflow::DT_QINT8)
        continue;
      const std::vector<float> scale = ScaledScales(node, *min, *max, 1);
      const auto users = readers.find(node.name());
      if (scale.empty() || users == readers.end()) continue;
      for (const NodeDef* user : users->second) {
        if (!OnQcpu(*user)) continue;  // placed already: the rows go where a reader is
        embeddings.push_back({node.name(),
                              gather->name(),
                              user->device(),
                              {table->name(), min->name(), max->name()},
                              scale[0]});
        break;
      }
    }
  }
  for (const Embedding& e : embeddings) {
    const NodeDef dequantize = graph.node(nodes.At(e.dequantize));
    tensorflow::TensorProto values =
        graph.node(nodes.At(e.replaced[0])).attr().at("value").tensor();
    values.set_dtype(tensorflow::DT_INT8);  // the same bytes
    NodeDef& table = AddNode(graph, dequantize, "table_s8", "Const", "");
    (*table.mutable_attr())["dtype"].set_type(tensorflow::DT_INT8);
    *(*table.mutable_attr())["value"].mutable_tensor() = std::move(values);
    NodeDef& scale = AddScalarConst(graph, dequantize, "scale", tensorflow::DT_FLOAT);
    scale.mutable_attr()->at("value").mutable_tensor()->add_float_val(e.scale);
    NodeDef& zero_point = AddScalarConst(graph, dequantize, "zero_point", tensorflow::DT_INT32);
    zero_point.mutable_attr()->at("value").mutable_tensor()->add_int_val(0);
    for (NodeDef* added : {&table, &scale, &zero_point}) added->set_device(e.device);

    NodeDef& gather = *graph.mutable_node(nodes.At(e.gather));
    gather.set_input(0, table.name());
    (*gather.mutable_attr())["Tparams"].set_type(tensorflow::DT_INT8);
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
