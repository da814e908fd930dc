// Our private ops' definitions (their names: ops/op_names.h), and the private
// twins of the standard ops QCPU has kernels for.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tensorflow/c/tf_datatype.h"
#include "tensorflow/c/tf_status.h"
#include "tensorflow/core/framework/node_def.pb.h"

namespace int8flow::kernels {

// Defines our private ops (ops/op_names.h, and the activations of
// ops/activations.h with no TF op of their own).
void RegisterOpDefinitions(TF_Status* status);
// For a node of one of our ops: an attr it holds that the op does not
// declare (names starting with "_" are TF's annotations), or "". TF's eager
// runtime rejects such attrs but its graph runtime ignores them, and a
// graph written for a newer int8flow must not run with an attr dropped.
std::string UndeclaredAttr(const tensorflow::NodeDef& node);
// The op's declared attr names, ", "-joined.
std::string DeclaredAttrList(const std::string& op);

// Registers the private twin (ops/op_names.h) of standard op `op` once, and
// notes that a QCPU kernel serves it for `types` (type attr -> dtype), only
// in loop and cond bodies when `loop_only` (KernelSpec::loop_only).
void RegisterPrivateTwin(const std::string& op,
                         const std::vector<std::pair<const char*, TF_DataType>>& types,
                         bool loop_only, TF_Status* status);
// TF's oneDNN ops that are plain renames of standard op `op` (same inputs
// and outputs, but for a trailing "workspace" output that the kernel leaves
// empty: _MklNativeMaxPool), such as _MklNativeConv2D or _MklSoftmax. Eager ops run as
// one-op functions that skip Grappler but not TF's oneDNN layout pass, so a
// QCPU kernel must answer to these names too (with TF's label for them).
std::vector<std::string> OneDnnRenamesOf(const std::string& op);
inline constexpr char kOneDnnRenameLabel[] = "MklNameChangeOp";
// Whether `op` has a twin with QCPU kernels.
bool HasPrivateTwin(const std::string& op);

}  // namespace int8flow::kernels
