// The activations (and other element-wise unary ops) QCPU runs, standalone
// and as post-ops of fused kernels: their names are ops/activations.h's.
// One table maps each op name to its oneDNN eltwise algorithm, so the
// standalone kernels and the fused ones can never disagree.
#pragma once

#include <string>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

namespace int8flow::kernels {

struct Activation {
  const char* op;             // the TF op (or our private op) it implements
  dnnl::algorithm algorithm;  // oneDNN eltwise algorithm
  float alpha, beta;          // its parameters
  // Whether the node's attrs override `alpha` (LeakyRelu's `alpha`; the
  // fused ops carry it as `leakyrelu_alpha`).
  bool alpha_from_attr = false;
  // A second eltwise step, when one oneDNN algorithm is not enough.
  dnnl::algorithm then = dnnl::algorithm::undef;
  float then_alpha = 0.f, then_beta = 0.f;
};

// Appends `a` (with `alpha`) to `ops` as one or two eltwise post-ops.
void AppendActivation(dnnl::post_ops& ops, const Activation& a, float alpha);

// The standalone primitive of `a` (with `alpha`) over `data`, in place or
// not, its second step as a post-op: what the activation kernels run, and
// the recurrent cells for their gates.
dnnl::eltwise_forward::primitive_desc ActivationPrimitiveDesc(const Activation& a, float alpha,
                                                              const dnnl::memory::desc& data);

// The activation named `op`, or nullptr.
const Activation* FindActivation(const std::string& op);
const std::vector<Activation>& Activations();

}  // namespace int8flow::kernels
