// The one generic matcher behind every fusion in fusion_patterns.cc.
#pragma once

#include <map>
#include <set>
#include <string>

#include "graph/graph_shapes.h"
#include "tensorflow/core/framework/graph.pb.h"

namespace int8flow::graph {

// Applies FusionPatterns(), in order, to `graph`'s top level: a match's
// root must be on QCPU, its other nodes on QCPU or CPU. A match is rewritten only when its
// intermediate nodes feed nothing outside it, carry no control edges, and are not in `preserve`;
// the root keeps its name. Returns how many rewrites each pattern made.
std::map<std::string, int> ApplyFusions(tensorflow::GraphDef& graph, const GraphShapes& shapes,
                                        const std::set<std::string>& preserve);

}  // namespace int8flow::graph
