#include "graph/graph_shapes.h"

#include "common/tf_status.h"
#include "graph/graph_util.h"
#include "tensorflow/core/grappler/costs/op_performance_data.pb.h"

namespace int8flow::graph {

GraphShapes::GraphShapes(const TF_GrapplerItem* item) : item_(item) {}

bool GraphShapes::Infer() const {
  if (properties_ == nullptr && item_ != nullptr) {
    properties_ = TF_NewGraphProperties(item_);
    OwnedStatus status;
    TF_InferStatically(properties_, /*assume_valid_feeds=*/true, /*aggressive=*/false,
                       /*include_input_tensor_values=*/false,
                       /*include_output_tensor_values=*/false, status.get());
    inferred_ = status.ok();
  }
  return inferred_;
}

GraphShapes::~GraphShapes() {
  if (properties_ != nullptr) TF_DeleteGraphProperties(properties_);
}

std::optional<std::vector<int64_t>> GraphShapes::Output(const std::string& node, int port) const {
  if (port < 0 || !Infer()) return std::nullopt;
  OwnedStatus status;
  int count = 0;
  TF_GetOutputPropertiesListSize(properties_, node.c_str(), &count, status.get());
  if (!status.ok() || port >= count) return std::nullopt;
  std::vector<TF_Buffer*> buffers(count);
  for (auto& b : buffers) b = TF_NewBuffer();
  TF_GetOutputPropertiesList(properties_, node.c_str(), buffers.data(), count, status.get());
  tensorflow::OpInfo::TensorProperties properties;
  const bool parsed =
      status.ok() &&
      properties.ParseFromArray(buffers[port]->data, static_cast<int>(buffers[port]->length));
  for (auto* b : buffers) TF_DeleteBuffer(b);
  if (!parsed || properties.shape().unknown_rank()) return std::nullopt;
  return DimsOf(properties.shape());
}

}  // namespace int8flow::graph
