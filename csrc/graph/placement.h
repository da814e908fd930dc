// The QCPU pass's placement rules: which device a node runs on, once fusion
// and INT8 have rewritten the graph. The pass (optimizer.cc) runs them in
// this order, and placement.cc says why each exists.
#pragma once

#include "graph/graph_shapes.h"
#include "tensorflow/core/framework/graph.pb.h"

namespace int8flow::graph {

// A variable read by name (a VarHandleOp with a shared_name: TF1 graphs,
// v1 SavedModels) moves to TF's CPU with the nodes that take its handle.
void MoveNamedVariablesToCpu(tensorflow::GraphDef& graph);

// A node whose QCPU kernel serves loop and cond bodies only moves to TF's
// CPU, unless the move costs copies its faster kernel does not win back
// (`shapes` tells a small tensor). Runs before the rules below, which follow
// where values are, and the twin renaming (the twins have no CPU kernel).
void MoveLoopOnlyNodesToCpu(tensorflow::GraphDef& graph, const GraphShapes& shapes);

// An element-wise node on QCPU whose inputs all come from TF's CPU
// (parameters aside) moves there, and so on down the chain; a Const on QCPU left read
// only by CPU nodes follows them.
void MoveCpuFedElementwiseToCpu(tensorflow::GraphDef& graph);

// A float Const on CPU that only QCPU nodes read moves to QCPU.
void MoveConstantsToQcpu(tensorflow::GraphDef& graph);

// A Shape, Size or Rank on CPU that reads a QCPU tensor moves to QCPU.
void MoveShapeReadersToQcpu(tensorflow::GraphDef& graph);

// A float function result on CPU that a QCPU node makes is routed through an
// Identity on QCPU that hands it over in host memory. Returns how many such
// Identities it added.
int HandResultsToHost(tensorflow::GraphDef& graph);

// A QCPU node that QCPU has no kernel for moves to TF's CPU. Runs after the
// twin renaming, whose names have kernels.
void MoveKernellessNodesToCpu(tensorflow::GraphDef& graph);

}  // namespace int8flow::graph
