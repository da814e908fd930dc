#include "kernels/op_definitions.h"

#include <initializer_list>
#include <memory>
#include <string>

#include "kernels/activations.h"
#include "tensorflow/c/ops.h"

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
              std::initializer_list<const char*> attrs,
              void (*shape_fn)(TF_ShapeInferenceContext*, TF_Status*), TF_Status* status) {
  TF_OpDefinitionBuilder* op = TF_NewOpDefinitionBuilder(name);
  for (const char* input : inputs) TF_OpDefinitionBuilderAddInput(op, input);
  TF_OpDefinitionBuilderAddOutput(op, "y: T");
  TF_OpDefinitionBuilderAddAttr(op, "T: {float}");
  for (const char* attr : attrs) TF_OpDefinitionBuilderAddAttr(op, attr);
  TF_OpDefinitionBuilderSetShapeInferenceFunction(op, shape_fn);
  TF_RegisterOpDefinition(op, status);  // takes ownership of `op`
}

}  // namespace

void RegisterOpDefinitions(TF_Status* status) {
  Register(kFusedMatMul, {"a: T", "b: T", "args: num_args * T"},
           {"num_args: int >= 0", "fused_ops: list(string) = []", "transpose_a: bool = false",
            "transpose_b: bool = false", "leakyrelu_alpha: float = 0.2"},
           UnknownShape, status);
  // The activations with no TF op of their own (activations.h).
  for (const Activation& activation : Activations()) {
    if (TF_GetCode(status) != TF_OK) return;
    if (activation.op[0] == '_') Register(activation.op, {"x: T"}, {}, SameShapeAsInput, status);
  }
}

}  // namespace int8flow::kernels
