#include "kernels/op_definitions.h"

#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/tf_status.h"
#include "kernels/registered_kernels.h"
#include "ops/activations.h"
#include "ops/op_names.h"
#include "tensorflow/c/ops.h"
#include "tensorflow/core/framework/op.h"

namespace int8flow::kernels {
namespace {

struct ShapeHandleDeleter {
  void operator()(TF_ShapeHandle* h) const { TF_DeleteShapeHandle(h); }
};

// Outputs 0 to `outputs` - 1 have the shape of input `input`.
void OutputsShapedLikeInput(TF_ShapeInferenceContext* ctx, int input, int outputs,
                            TF_Status* status) {
  std::unique_ptr<TF_ShapeHandle, ShapeHandleDeleter> shape(TF_NewShapeHandle());
  TF_ShapeInferenceContextGetInput(ctx, input, shape.get(), status);
  for (int i = 0; i < outputs && TF_GetCode(status) == TF_OK; ++i)
    TF_ShapeInferenceContextSetOutput(ctx, i, shape.get(), status);
}

// Output 0 has the shape of input 0.
void SameShapeAsInput(TF_ShapeInferenceContext* ctx, TF_Status* status) {
  OutputsShapedLikeInput(ctx, 0, 1, status);
}

// The C API's shape functions cannot read bool attrs (the transposes), and
// these nodes only appear after Grappler's shape inference: say "unknown".
void UnknownShape(TF_ShapeInferenceContext* ctx, TF_Status* status) {
  TF_ShapeInferenceContextSetUnknownShape(ctx, status);
}

// Output 0 has input 0's shape; outputs 1 and 2 are scalars (a quantized
// tensor's scale and zero point).
void QuantizedShape(TF_ShapeInferenceContext* ctx, TF_Status* status) {
  SameShapeAsInput(ctx, status);
  for (int i = 1; i <= 2 && TF_GetCode(status) == TF_OK; ++i) {
    std::unique_ptr<TF_ShapeHandle, ShapeHandleDeleter> scalar(TF_ShapeInferenceContextScalar(ctx));
    TF_ShapeInferenceContextSetOutput(ctx, i, scalar.get(), status);
  }
}

// Outputs 0 and 1 have input 1's shape (an LSTM cell's state).
void StateShape(TF_ShapeInferenceContext* ctx, TF_Status* status) {
  OutputsShapedLikeInput(ctx, 1, 2, status);
}

struct OpSignature {
  const char* name;
  std::vector<const char*> inputs, outputs, attrs;
  void (*shape_fn)(TF_ShapeInferenceContext*, TF_Status*);
};

// Our ops' attr names, by op, as Define declared them.
std::map<std::string, std::vector<std::string>>& DeclaredAttrs() {
  static std::map<std::string, std::vector<std::string>> attrs;
  return attrs;
}

void Define(const OpSignature& signature, TF_Status* status) {
  if (TF_GetCode(status) != TF_OK) return;
  std::vector<std::string>& names = DeclaredAttrs()[signature.name];
  for (const char* attr : signature.attrs) {
    const std::string spec = attr;
    names.push_back(spec.substr(0, spec.find(':')));
  }
  TF_OpDefinitionBuilder* op = TF_NewOpDefinitionBuilder(signature.name);
  for (const char* input : signature.inputs) TF_OpDefinitionBuilderAddInput(op, input);
  for (const char* output : signature.outputs) TF_OpDefinitionBuilderAddOutput(op, output);
  for (const char* attr : signature.attrs) TF_OpDefinitionBuilderAddAttr(op, attr);
  TF_OpDefinitionBuilderSetShapeInferenceFunction(op, signature.shape_fn);
  TF_RegisterOpDefinition(op, status);  // takes ownership of `op`
}

// A float op: output "y: T" and attr "T: {float}" before `attrs`.
void Register(const char* name, std::initializer_list<const char*> inputs,
              const std::vector<const char*>& attrs,
              void (*shape_fn)(TF_ShapeInferenceContext*, TF_Status*), TF_Status* status) {
  std::vector<const char*> all_attrs = {"T: {float}"};
  all_attrs.insert(all_attrs.end(), attrs.begin(), attrs.end());
  Define({name, inputs, {"y: T"}, all_attrs, shape_fn}, status);
}

using TypeConstraints = std::vector<std::pair<std::string, TF_DataType>>;
struct TwinKernel {
  TypeConstraints types;
  bool loop_only;  // KernelSpec::loop_only
};
std::mutex twins_mutex;
// Standard op -> each QCPU kernel its twin has.
std::map<std::string, std::vector<TwinKernel>>& Twins() {
  static std::map<std::string, std::vector<TwinKernel>> twins;
  return twins;
}

// The QCPU kernel whose type constraints `node` meets, or null. Under twins_mutex.
const TwinKernel* KernelFor(const tensorflow::NodeDef& node) {
  const auto twin = Twins().find(node.op());
  if (twin == Twins().end()) return nullptr;
  for (const TwinKernel& kernel : twin->second) {
    bool serves = true;
    for (const auto& [attr, dtype] : kernel.types) {
      const auto value = node.attr().find(attr);
      serves =
          serves && value != node.attr().end() && static_cast<int>(value->second.type()) == dtype;
    }
    if (serves) return &kernel;
  }
  return nullptr;
}

}  // namespace

std::string UndeclaredAttr(const tensorflow::NodeDef& node) {
  // Written once at load (RegisterOpDefinitions), read-only after: no lock.
  const auto declared = DeclaredAttrs().find(node.op());
  if (declared == DeclaredAttrs().end()) return "";
  for (const auto& [name, value] : node.attr()) {
    if (name[0] == '_') continue;  // TF's and Grappler's own annotations
    if (std::find(declared->second.begin(), declared->second.end(), name) == declared->second.end())
      return name;
  }
  return "";
}

std::string DeclaredAttrList(const std::string& op) {
  std::string list;
  for (const std::string& name : DeclaredAttrs()[op]) list += (list.empty() ? "" : ", ") + name;
  return list;
}

void RegisterPrivateTwin(const std::string& op,
                         const std::vector<std::pair<const char*, TF_DataType>>& types,
                         bool loop_only, TF_Status* status) {
  std::lock_guard<std::mutex> lock(twins_mutex);
  const TwinKernel kernel{TypeConstraints(types.begin(), types.end()), loop_only};
  const auto known = Twins().find(op);
  if (known != Twins().end()) {
    known->second.push_back(kernel);
    return;
  }
  const tensorflow::OpRegistrationData* standard = nullptr;
  if (!tensorflow::OpRegistry::Global()->LookUp(op, &standard).ok())
    return SetError(status, TF_NOT_FOUND, "TensorFlow has no op '" + op + "' to twin");
  tensorflow::OpRegistrationData twin = *standard;
  twin.op_def.set_name(ops::PrivateTwinName(op));
  tensorflow::OpRegistry::Global()->Register(
      [twin](tensorflow::OpRegistrationData* data) -> absl::Status {
        *data = twin;
        return absl::OkStatus();
      });
  Twins()[op].push_back(kernel);
}

std::vector<std::string> OneDnnRenamesOf(const std::string& op) {
  const tensorflow::OpRegistrationData* standard = nullptr;
  if (!tensorflow::OpRegistry::Global()->LookUp(op, &standard).ok()) return {};
  // `extra`: names `a` may have after all of `b`'s. The others are typed
  // alike; their names may differ (_MklNativeAvgPool3D's input is "value").
  const auto args_match = [](const auto& a, const auto& b, const char* extra = "") {
    if (a.size() < b.size()) return false;
    for (int i = b.size(); i < a.size(); ++i)
      if (a[i].name() != extra) return false;
    for (int i = 0; i < b.size(); ++i)
      if (a[i].type_attr() != b[i].type_attr() || a[i].type() != b[i].type()) return false;
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
  return KernelFor(node) != nullptr;
}

bool LoopOnlyKernelServes(const tensorflow::NodeDef& node) {
  std::lock_guard<std::mutex> lock(twins_mutex);
  const TwinKernel* kernel = KernelFor(node);
  return kernel != nullptr && kernel->loop_only;
}

void RegisterOpDefinitions(TF_Status* status) {
  // The float ops' args are `num_args` floats; the quantized ops type theirs.
  const auto with_float_args = [](std::vector<const char*> attrs) {
    attrs.insert(attrs.begin(), "num_args: int >= 0");
    return attrs;
  };
  const std::vector<const char*> matmul_attrs = {
      "fused_ops: list(string) = []", "transpose_a: bool = false", "transpose_b: bool = false",
      "leakyrelu_alpha: float = 0.2"};
  Register(ops::kFusedMatMul, {"a: T", "b: T", "args: num_args * T"}, with_float_args(matmul_attrs),
           UnknownShape, status);
  // Conv2D's attrs, or Conv3D's (no explicit padding, NDHWC).
  const auto conv_attrs = [](bool three_d) {
    std::vector<const char*> attrs = {"strides: list(int)", "fused_ops: list(string) = []",
                                      "epsilon: float = 0.0001", "leakyrelu_alpha: float = 0.2"};
    if (three_d)
      attrs.insert(attrs.end(), {"padding: {'SAME', 'VALID'}", "data_format: {'NDHWC'} = 'NDHWC'",
                                 "dilations: list(int) = [1, 1, 1, 1, 1]"});
    else
      attrs.insert(attrs.end(),
                   {"padding: {'SAME', 'VALID', 'EXPLICIT'}", "explicit_paddings: list(int) = []",
                    "data_format: {'NHWC'} = 'NHWC'", "dilations: list(int) = [1, 1, 1, 1]"});
    return attrs;
  };
  for (const char* conv : {ops::kFusedConv2D, ops::kFusedDepthwiseConv2D, ops::kFusedConv3D})
    Register(conv, {"input: T", "filter: T", "args: num_args * T"},
             with_float_args(conv_attrs(std::string(conv) == ops::kFusedConv3D)), UnknownShape,
             status);
  Register(ops::kFusedConv2DBackpropInput,
           {"input_sizes: int32", "filter: T", "out_backprop: T", "args: num_args * T"},
           with_float_args(conv_attrs(false)), UnknownShape, status);
  std::vector<const char*> transposed_3d_attrs = with_float_args(conv_attrs(true));
  transposed_3d_attrs.push_back("Tshape: {int32, int64} = DT_INT32");
  Register(ops::kFusedConv3DBackpropInput,
           {"input_sizes: Tshape", "filter: T", "out_backprop: T", "args: num_args * T"},
           transposed_3d_attrs, UnknownShape, status);
  Register(ops::kLayerNorm, {"x: T", "epsilon: T", "args: num_args * T"},
           {"num_args: int >= 0 = 0", "fused_ops: list(string) = []"}, SameShapeAsInput, status);
  Register(
      ops::kScaleShift, {"x: T", "args: num_args * T"},
      {"num_args: int >= 0 = 0", "fused_ops: list(string) = []", "leakyrelu_alpha: float = 0.2"},
      SameShapeAsInput, status);
  Define({ops::kLstmCell, {"z: T", "c_prev: T"}, {"h: T", "c: T"}, {"T: {float}"}, StateShape},
         status);
  Register(ops::kGruCell, {"xz: T", "xr: T", "xh: T", "rz: T", "rr: T", "rh: T", "h_prev: T"}, {},
           SameShapeAsInput, status);
  // The activations with no TF op of their own (ops/activations.h).
  for (const char* activation : ops::kActivationOps)
    if (activation[0] == '_') Register(activation, {"x: T"}, {}, SameShapeAsInput, status);

  // INT8 (ops/op_names.h, quantization.h): the float ops' attrs plus the
  // quantized types, the output's requantization, and typed args: the Add's
  // input may be int8.
  Define({ops::kQuantize,
          {"x: float"},
          {"y: T", "scale: float", "zero_point: int32"},
          {"T: {uint8, int8}", "mode: {'dynamic', 'static'} = 'dynamic'",
           "static_scale: float = 1.0", "static_zero_point: int = 0"},
          QuantizedShape},
         status);
  Define({ops::kQuantizeWeights,
          {"w: float"},
          {"q: int8", "scales: float"},
          {"channel_axis: int = -1"},
          UnknownShape},
         status);
  Define({ops::kDequantize,
          {"x: T", "scale: float", "zero_point: int32"},
          {"y: float"},
          {"T: {uint8, int8}"},
          SameShapeAsInput},
         status);
  const std::vector<const char*> quantized_attrs = {"Tin: {uint8, int8}",
                                                    "Tout: {float, uint8, int8} = DT_FLOAT",
                                                    "out_scale: float = 1.0",
                                                    "out_zero_point: int = 0",
                                                    "Targs: list({float, uint8, int8}) >= 0",
                                                    "addend_scale: float = 1.0",
                                                    "addend_zero_point: int = 0"};
  const auto with_quantized = [&](std::vector<const char*> attrs) {
    attrs.insert(attrs.end(), quantized_attrs.begin(), quantized_attrs.end());
    return attrs;
  };
  Define({ops::kQuantizedMatMul,
          {"a: Tin", "b: int8", "a_scale: float", "a_zero_point: int32", "b_scales: float",
           "args: Targs"},
          {"y: Tout"},
          with_quantized(matmul_attrs),
          UnknownShape},
         status);
  Define({ops::kQuantizedBatchMatMul,
          {"x: Tin", "y: int8", "x_scale: float", "x_zero_point: int32", "y_scales: float",
           "args: Targs"},
          {"output: Tout"},
          with_quantized({"fused_ops: list(string) = []", "adj_x: bool = false",
                          "adj_y: bool = false", "leakyrelu_alpha: float = 0.2"}),
          UnknownShape},
         status);
  for (const char* conv :
       {ops::kQuantizedConv2D, ops::kQuantizedDepthwiseConv2D, ops::kQuantizedConv3D})
    Define({conv,
            {"input: Tin", "filter: int8", "input_scale: float", "input_zero_point: int32",
             "filter_scales: float", "args: Targs"},
            {"y: Tout"},
            with_quantized(conv_attrs(std::string(conv) == ops::kQuantizedConv3D)),
            UnknownShape},
           status);
}

}  // namespace int8flow::kernels
