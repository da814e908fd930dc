#include "kernels/conv_geometry.h"

namespace int8flow::kernels {

using dnnl::memory;

ConvAttrs::ConvAttrs(TF_OpKernelConstruction* ctx)
    : spatial_rank(ChannelsLastSpatialRank(ctx, "convolutions")),
      strides(GetIntListAttr(ctx, "strides")),
      dilations(GetIntListAttr(ctx, "dilations")),
      padding(GetStringAttr(ctx, "padding")) {
  RequireSpatialList(strides, spatial_rank, "strides");
  RequireSpatialList(dilations, spatial_rank, "dilations");
  Require(padding == "SAME" || padding == "VALID" || padding == "EXPLICIT",
          "unknown padding '" + padding + "'");
  if (padding == "EXPLICIT") {
    explicit_paddings = GetIntListAttr(ctx, "explicit_paddings");
    Require(explicit_paddings.size() == 2 * (spatial_rank + 2), [&] {
      return "explicit_paddings must hold " + std::to_string(2 * (spatial_rank + 2)) + " values";
    });
    for (int64_t p : explicit_paddings) Require(p >= 0, "explicit_paddings must be >= 0");
  }
}

std::vector<int64_t> ConvGeometry::in_shape() const {
  std::vector<int64_t> shape = {n};
  shape.insert(shape.end(), in_spatial.begin(), in_spatial.end());
  shape.push_back(ic);
  return shape;
}

std::vector<int64_t> ConvGeometry::out_shape() const {
  std::vector<int64_t> shape = {n};
  shape.insert(shape.end(), out_spatial.begin(), out_spatial.end());
  shape.push_back(oc);
  return shape;
}

void RequireConvShapes(const ConvAttrs& attrs, const std::vector<int64_t>& in,
                       const std::vector<int64_t>& f, bool depthwise) {
  const size_t rank = attrs.spatial_rank + 2;
  Require(in.size() == rank,
          [&] { return "input must be " + std::to_string(rank) + "-D, got " + ShapeString(in); });
  Require(f.size() == rank,
          [&] { return "filter must be " + std::to_string(rank) + "-D, got " + ShapeString(f); });
  const int64_t depth = in[rank - 1], filter_depth = f[rank - 2];
  if (depthwise)
    Require(depth == filter_depth, [&] {
      return "input depth must equal filter depth: input " + ShapeString(in) + ", filter " +
             ShapeString(f);
    });
  else if (attrs.spatial_rank == 3)  // TF's Conv3D takes no groups
    Require(depth == filter_depth, [&] {
      return "input and filter must have the same depth: " + std::to_string(depth) + " vs " +
             std::to_string(filter_depth);
    });
  else
    Require(filter_depth > 0 && depth % filter_depth == 0, [&] {
      return "input depth must be evenly divisible by filter depth: input " + ShapeString(in) +
             ", filter " + ShapeString(f);
    });
}

ConvGeometry MakeConvGeometry(const ConvAttrs& attrs, const std::vector<int64_t>& in,
                              const std::vector<int64_t>& f, bool depthwise) {
  const size_t rank = attrs.spatial_rank;
  ConvGeometry g;
  g.n = in[0], g.ic = in[rank + 1];
  g.in_spatial.assign(in.begin() + 1, in.begin() + 1 + rank);
  g.kernel.assign(f.begin(), f.begin() + rank);
  g.groups = depthwise ? g.ic : g.ic / f[rank];
  g.oc = depthwise ? f[rank] * f[rank + 1] : f[rank + 1];
  for (size_t i = 0; i < rank; ++i) {
    const int64_t s = attrs.strides[i + 1], d = attrs.dilations[i + 1];
    const bool explicit_pads = attrs.padding == "EXPLICIT";
    WindowSpan span;
    Require(SlideWindow(g.in_spatial[i], g.kernel[i], s, d, attrs.padding,
                        explicit_pads ? attrs.explicit_paddings[2 * i + 2] : 0,
                        explicit_pads ? attrs.explicit_paddings[2 * i + 3] : 0, span),
            [&] {
              return "the filter " + ShapeString(f) + " is larger than the padded input " +
                     ShapeString(in);
            });
    g.out_spatial.push_back(span.out);
    g.strides.push_back(s);
    g.dilations.push_back(d - 1);
    g.pad_l.push_back(span.before);
    g.pad_r.push_back(span.after);
  }
  return g;
}

memory::desc TfFilterDesc(const ConvGeometry& g, memory::data_type type, bool transposed) {
  const int64_t ig = g.ic / g.groups, og = g.oc / g.groups, oc = g.oc;
  // TF's [k..., ig, oc]: an input channel's stride is oc, an output's 1.
  const int64_t first = transposed ? ig : og, second = transposed ? og : ig;
  const int64_t first_stride = transposed ? oc : 1, second_stride = transposed ? 1 : oc;
  memory::dims dims = {first, second}, strides = {first_stride, second_stride};
  std::vector<int64_t> kernel_strides(g.kernel.size());
  int64_t stride = ig * oc;
  for (size_t i = g.kernel.size(); i-- > 0;) kernel_strides[i] = stride, stride *= g.kernel[i];
  dims.insert(dims.end(), g.kernel.begin(), g.kernel.end());
  strides.insert(strides.end(), kernel_strides.begin(), kernel_strides.end());
  if (g.groups > 1) {
    dims.insert(dims.begin(), g.groups);
    strides.insert(strides.begin(), og);
  }
  return memory::desc(dims, type, strides);
}

memory::desc AnyFilterDesc(const ConvGeometry& g, memory::data_type type, bool transposed) {
  const int64_t ig = g.ic / g.groups, og = g.oc / g.groups;
  memory::dims dims = {transposed ? ig : og, transposed ? og : ig};
  dims.insert(dims.end(), g.kernel.begin(), g.kernel.end());
  if (g.groups > 1) dims.insert(dims.begin(), g.groups);
  return memory::desc(dims, type, memory::format_tag::any);
}

}  // namespace int8flow::kernels
