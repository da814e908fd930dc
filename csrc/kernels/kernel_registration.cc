#include "kernels/kernel_registration.h"

#include <algorithm>

#include "kernels/op_definitions.h"
#include "ops/op_names.h"
#include "tensorflow/core/framework/node_def.pb.h"

namespace int8flow::kernels {
namespace {

void CheckAttr(const OwnedStatus& status, const char* name) {
  if (!status.ok()) throw KernelError(std::string("attr '") + name + "': " + status.message());
}

// list_size and total_size as TF reports them for attr `name`, with the -1
// TF reports for an empty list (or a scalar) read as 0.
std::pair<int32_t, int32_t> AttrSize(TF_OpKernelConstruction* ctx, const char* name) {
  OwnedStatus status;
  int32_t list_size = 0;
  int32_t total_size = 0;
  TF_OpKernelConstruction_GetAttrSize(ctx, name, &list_size, &total_size, status.get());
  CheckAttr(status, name);
  return {std::max(list_size, 0), std::max(total_size, 0)};
}

// A scalar attr through its C API getter.
template <class Value>
Value ScalarAttr(TF_OpKernelConstruction* ctx, const char* name,
                 void (*get)(TF_OpKernelConstruction*, const char*, Value*, TF_Status*)) {
  OwnedStatus status;
  Value value{};
  get(ctx, name, &value, status.get());
  CheckAttr(status, name);
  return value;
}

// A list attr of numbers or types through its C API getter.
template <class Value>
std::vector<Value> ListAttr(TF_OpKernelConstruction* ctx, const char* name,
                            void (*get)(TF_OpKernelConstruction*, const char*, Value*, int,
                                        TF_Status*)) {
  const int32_t count = AttrSize(ctx, name).first;
  std::vector<Value> values(static_cast<size_t>(count));
  OwnedStatus status;
  get(ctx, name, values.data(), count, status.get());
  CheckAttr(status, name);
  return values;
}

tensorflow::NodeDef ReadNodeDef(TF_OpKernelConstruction* ctx) {
  OwnedStatus status;
  TF_Buffer* buffer = TF_OpKernelConstruction_GetNodeDef(ctx, status.get());
  if (!status.ok()) throw KernelError("reading the NodeDef: " + status.message(), TF_INTERNAL);
  tensorflow::NodeDef node;
  const bool parsed = node.ParseFromArray(buffer->data, static_cast<int>(buffer->length));
  TF_DeleteBuffer(buffer);
  if (!parsed) throw KernelError("cannot parse the NodeDef", TF_INTERNAL);
  return node;
}

}  // namespace

bool GetBoolAttr(TF_OpKernelConstruction* ctx, const char* name) {
  return ScalarAttr<TF_Bool>(ctx, name, TF_OpKernelConstruction_GetAttrBool) != 0;
}

float GetFloatAttr(TF_OpKernelConstruction* ctx, const char* name) {
  return ScalarAttr<float>(ctx, name, TF_OpKernelConstruction_GetAttrFloat);
}

int64_t GetIntAttr(TF_OpKernelConstruction* ctx, const char* name) {
  return ScalarAttr<int64_t>(ctx, name, TF_OpKernelConstruction_GetAttrInt64);
}

TF_DataType GetTypeAttr(TF_OpKernelConstruction* ctx, const char* name) {
  return ScalarAttr<TF_DataType>(ctx, name, TF_OpKernelConstruction_GetAttrType);
}

std::vector<TF_DataType> GetTypeListAttr(TF_OpKernelConstruction* ctx, const char* name) {
  return ListAttr<TF_DataType>(ctx, name, TF_OpKernelConstruction_GetAttrTypeList);
}

std::string GetStringAttr(TF_OpKernelConstruction* ctx, const char* name) {
  const int32_t size = AttrSize(ctx, name).second;
  std::string value(static_cast<size_t>(size), '\0');
  OwnedStatus status;
  TF_OpKernelConstruction_GetAttrString(ctx, name, value.data(), value.size(), status.get());
  CheckAttr(status, name);
  return value;
}

std::vector<std::string> GetStringListAttr(TF_OpKernelConstruction* ctx, const char* name) {
  const auto [count, total] = AttrSize(ctx, name);
  std::vector<char*> values(count);
  std::vector<size_t> lengths(count);
  std::string storage(static_cast<size_t>(total), '\0');
  OwnedStatus status;
  TF_OpKernelConstruction_GetAttrStringList(ctx, name, values.data(), lengths.data(), count,
                                            storage.data(), storage.size(), status.get());
  CheckAttr(status, name);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.emplace_back(values[i], lengths[i]);
  return out;
}

std::vector<int64_t> GetIntListAttr(TF_OpKernelConstruction* ctx, const char* name) {
  return ListAttr<int64_t>(ctx, name, TF_OpKernelConstruction_GetAttrInt64List);
}

std::string NodeName(TF_OpKernelConstruction* ctx) {
  const TF_StringView view = TF_OpKernelConstruction_GetName(ctx);
  return std::string(view.data, view.len);
}

void RejectUndeclaredAttrs(TF_OpKernelConstruction* ctx) {
  const tensorflow::NodeDef node = ReadNodeDef(ctx);
  const std::string attr = UndeclaredAttr(node);
  if (attr.empty()) return;
  throw KernelError(node.op() + " has no attr '" + attr + "' in this int8flow (it has " +
                    DeclaredAttrList(node.op()) + "); was the graph written by a newer int8flow?");
}

std::string OpType(TF_OpKernelConstruction* ctx) {
  const tensorflow::NodeDef node = ReadNodeDef(ctx);
  // A private twin or a oneDNN rename computes what its standard op does.
  for (const std::string& prefix :
       {ops::PrivateTwinName(""), std::string("_MklNative"), std::string("_Mkl")})
    if (node.op().rfind(prefix, 0) == 0 && HasPrivateTwin(node.op().substr(prefix.size())))
      return node.op().substr(prefix.size());
  return node.op();
}

namespace detail {

void Fail(TF_OpKernelContext* ctx, TF_Code code, const std::string& message) {
  OwnedStatus status;
  const TF_StringView node = TF_GetOpKernelName(ctx);
  SetError(status.get(), code, std::string(node.data, node.len) + ": " + message);
  TF_OpKernelContext_Failure(ctx, status.get());
}

void FailConstruction(TF_OpKernelConstruction* ctx, TF_Code code, const std::string& message) {
  OwnedStatus status;
  SetError(status.get(), code, NodeName(ctx) + ": " + message);
  TF_OpKernelConstruction_Failure(ctx, status.get());
}

namespace {

void RegisterOne(const char* op, const KernelSpec& spec, const char* device_type,
                 void* (*create)(TF_OpKernelConstruction*), ComputeFn compute,
                 ComputeAsyncFn compute_async, void (*destroy)(void*), TF_Status* status,
                 const char* label = nullptr) {
  TF_KernelBuilder* builder =
      spec.async ? TF_NewAsyncKernelBuilder(op, device_type, create, compute_async, destroy)
                 : TF_NewKernelBuilder(op, device_type, create, compute, destroy);
  if (label) TF_KernelBuilder_Label(builder, label);
  // Below TF's CPU kernels (priority 0): eager ops then pick TF's CPU.
  if (spec.loop_only) TF_KernelBuilder_Priority(builder, -1);
  for (const auto& [attr, dtype] : spec.types) {
    TF_KernelBuilder_TypeConstraint(builder, attr, dtype, status);
    if (TF_GetCode(status) != TF_OK) return TF_DeleteKernelBuilder(builder);
  }
  for (const char* arg : spec.host_memory) TF_KernelBuilder_HostMemory(builder, arg);
  // The kernel's name in TF's registry must be unique per op, device, types and label.
  std::string name = std::string(op) + "_" + device_type;
  for (const auto& [attr, dtype] : spec.types) name += "_" + std::to_string(dtype);
  if (label) name += std::string("_") + label;
  TF_RegisterKernelBuilder(name.c_str(), builder, status);
}

}  // namespace

void Register(const KernelSpec& spec, const char* device_type,
              void* (*create)(TF_OpKernelConstruction*), ComputeFn compute,
              ComputeAsyncFn compute_async, void (*destroy)(void*), TF_Status* status) {
  RegisterOne(spec.op, spec, device_type, create, compute, compute_async, destroy, status,
              spec.label);
  // A labelled kernel serves only the nodes our pass gives its label: no twin.
  if (TF_GetCode(status) != TF_OK || spec.op[0] == '_' || spec.label) return;
  // A standard op's kernel also serves its private twin (ops/op_names.h).
  RegisterPrivateTwin(spec.op, spec.types, spec.loop_only, status);
  if (TF_GetCode(status) != TF_OK) return;
  const std::string twin = ops::PrivateTwinName(spec.op);
  RegisterOne(twin.c_str(), spec, device_type, create, compute, compute_async, destroy, status);
  for (const std::string& rename : OneDnnRenamesOf(spec.op)) {
    if (TF_GetCode(status) != TF_OK) return;
    RegisterOne(rename.c_str(), spec, device_type, create, compute, compute_async, destroy, status,
                kOneDnnRenameLabel);
  }
}

}  // namespace detail
}  // namespace int8flow::kernels
