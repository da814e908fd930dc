#include "kernels/op_definitions.h"

#include <initializer_list>
#include <memory>
#include <string>

#include <mutex>
#include <map>

#include "common/tf_status.h"
#include "kernels/activations.h"
#include "tensorflow/c/ops.h"
#include "tensorflow/core/framework/op.h"

namespace int8flow::kernels {
namespace {

struct ShapeHandleDeleter {
  void operator()(TF_ShapeHandle* h) const { TF_DeleteShapeHandle(h); }
};

// Output 0 has the shape of input 0.
void SameShapeAsInput(TF_ShapeInferenceContext* ctx, TF_Status* status) {
  std::unique_ptr<TF_ShapeHandle, ShapeHandleDeleter> shape(TF_NewShapeHandle());
  TF_ShapeInferenceContextGetInput(ctx, 0, shape.get(), status);
  if (TF_GetCode(status) == TF_OK) TF_ShapeInferenceContextSetOutput(ctx, 0, shape.get(), status);
}

// The C API's shape functions cannot read bool attrs (the transposes), and
// these nodes only appear after Grappler's shape inference: say "unknown".
void UnknownShape(TF_ShapeInferenceContext* ctx, TF_Status* status) {
  TF_ShapeInferenceContextSetUnknownShape(ctx, status);
}

void Register(const char* name, std::initializer_list<const char*> inputs,
              const std::vector<const char*>& attrs,
              void (*shape_fn)(TF_ShapeInferenceContext*, TF_Status*), TF_Status* status) {
  TF_OpDefinitionBuilder* op = TF_NewOpDefinitionBuilder(name);
  for (const char* input : inputs) TF_OpDefinitionBuilderAddInput(op, input);
  TF_OpDefinitionBuilderAddOutput(op, "y: T");
  TF_OpDefinitionBuilderAddAttr(op, "T: {float}");
  for (const char* attr : attrs) TF_OpDefinitionBuilderAddAttr(op, attr);
  TF_OpDefinitionBuilderSetShapeInferenceFunction(op, shape_fn);
  TF_RegisterOpDefinition(op, status);  // takes ownership of `op`
}

using TypeConstraints = std::vector<std::pair<std::string, TF_DataType>>;
std::mutex twins_mutex;
// Standard op -> the type constraints of each QCPU kernel its twin has.
std::map<std::string, std::vector<TypeConstraints>>& Twins() {
  static std::map<std::string, std::vector<TypeConstraints>> twins;
  return twins;
}

}  // namespace

std::string PrivateTwinName(const std::string& op) { return "_Qcpu" + op; }

void RegisterPrivateTwin(const std::string& op,
                         const std::vector<std::pair<const char*, TF_DataType>>& types,
                         TF_Status* status) {
  std::lock_guard<std::mutex> lock(twins_mutex);
  const auto known = Twins().find(op);
  if (known != Twins().end()) {
    known->second.emplace_back(types.begin(), types.end());
    return;
  }
  const tensorflow::OpRegistrationData* standard = nullptr;
  if (!tensorflow::OpRegistry::Global()->LookUp(op, &standard).ok())
    return SetError(status, TF_NOT_FOUND, "TensorFlow has no op '" + op + "' to twin");
  tensorflow::OpRegistrationData twin = *standard;
  twin.op_def.set_name(PrivateTwinName(op));
  tensorflow::OpRegistry::Global()->Register(
      [twin](tensorflow::OpRegistrationData* data) -> absl::Status {
        *data = twin;
        return absl::OkStatus();
      });
  Twins()[op].emplace_back(types.begin(), types.end());
}

std::vector<std::string> OneDnnRenamesOf(const std::string& op) {
  const tensorflow::OpRegistrationData* standard = nullptr;
  if (!tensorflow::OpRegistry::Global()->LookUp(op, &standard).ok()) return {};
  // `extra`: names `a` may have after all of `b`'s.
  const auto args_match = [](const auto& a, const auto& b, const char* extra = "") {
    if (a.size() < b.size()) return false;
    for (int i = b.size(); i < a.size(); ++i)
      if (a[i].name() != extra) return false;
    for (int i = 0; i < b.size(); ++i)
      if (a[i].name() != b[i].name() || a[i].type_attr() != b[i].type_attr()) return false;
    return true;
  };
  std::vector<std::string> renames;
  for (const char* prefix : {"_MklNative", "_Mkl"}) {
    const tensorflow::OpRegistrationData* alias = nullptr;
    if (!tensorflow::OpRegistry::Global()->LookUp(prefix + op, &alias).ok()) continue;
    if (args_match(alias->op_def.input_arg(), standard->op_def.input_arg()) &&
        args_match(alias->op_def.output_arg(), standard->op_def.output_arg(), "workspace"))
      renames.push_back(prefix + op);
  }
  return renames;
}

bool HasPrivateTwin(const std::string& op) {
  std::lock_guard<std::mutex> lock(twins_mutex);
  return Twins().count(op) > 0;
}

bool TwinKernelServes(const tensorflow::NodeDef& node) {
  std::lock_guard<std::mutex> lock(twins_mutex);
  const auto twin = Twins().find(node.op());
  if (twin == Twins().end()) return false;
  for (const TypeConstraints& kernel : twin->second) {
    bool serves = true;
    for (const auto& [attr, dtype] : kernel) {
      const auto value = node.attr().find(attr);
      serves = serves && value != node.attr().end() && static_cast<int>(value->second.type()) == dtype;
    }
    if (serves) return true;
  }
  return false;
}

void RegisterOpDefinitions(TF_Status* status) {
  Register(kFusedMatMul, {"a: T", "b: T", "args: num_args * T"},
           {"num_args: int >= 0", "fused_ops: list(string) = []", "transpose_a: bool = false",
            "transpose_b: bool = false", "leakyrelu_alpha: float = 0.2"},
           UnknownShape, status);
  const std::vector<const char*> conv_attrs = {
      "num_args: int >= 0", "strides: list(int)", "padding: {'SAME', 'VALID', 'EXPLICIT'}",
      "explicit_paddings: list(int) = []", "data_format: {'NHWC'} = 'NHWC'",
      "dilations: list(int) = [1, 1, 1, 1]", "fused_ops: list(string) = []",
      "epsilon: float = 0.0001", "leakyrelu_alpha: float = 0.2"};
  for (const char* conv : {kFusedConv2D, kFusedDepthwiseConv2D}) {
    if (TF_GetCode(status) != TF_OK) return;
    Register(conv, {"input: T", "filter: T", "args: num_args * T"}, conv_attrs, UnknownShape, status);
  }
  if (TF_GetCode(status) != TF_OK) return;
  Register(kLayerNorm, {"x: T", "gamma: T", "beta: T", "epsilon: T"}, {}, SameShapeAsInput, status);
  // The activations with no TF op of their own (activations.h).
  for (const Activation& activation : Activations()) {
    if (TF_GetCode(status) != TF_OK) return;
    if (activation.op[0] == '_') Register(activation.op, {"x: T"}, {}, SameShapeAsInput, status);
  }
}

}  // namespace int8flow::kernels
