#include "kernels/bf16.h"

namespace int8flow::kernels {

using dnnl::memory;

memory::data_type ComputeType(memory::data_type type, bool bf16) {
  return bf16 && type == memory::data_type::f32 ? memory::data_type::bf16 : type;
}

memory::desc ComputeDesc(const memory::desc& desc, bool bf16) {
  const memory::data_type type = ComputeType(desc.get_data_type(), bf16);
  if (type == desc.get_data_type()) return desc;
  return memory::desc(desc.get_dims(), type, desc.get_strides());
}

}  // namespace int8flow::kernels
