// Output shapes from Grappler's static shape inference, for the pattern
// checks (is this a bias vector as long as the product's last dim?). The
// whole-graph inference runs on the first question, so graphs where no
// pattern matches never pay for it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tensorflow/c/experimental/grappler/grappler.h"

namespace int8flow::graph {

class GraphShapes {
 public:
  explicit GraphShapes(const TF_GrapplerItem* item);
  ~GraphShapes();
  GraphShapes(const GraphShapes&) = delete;
  GraphShapes& operator=(const GraphShapes&) = delete;

  // The shape of `node`'s output `port`, -1 for an unknown dim; nullopt when
  // even the rank is unknown.
  std::optional<std::vector<int64_t>> Output(const std::string& node, int port) const;

 private:
  bool Infer() const;  // true when inference succeeded

  const TF_GrapplerItem* item_;
  mutable TF_GraphProperties* properties_ = nullptr;
  mutable bool inferred_ = false;
};

}  // namespace int8flow::graph
