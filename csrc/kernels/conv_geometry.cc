#include "kernels/conv_geometry.h"

namespace int8flow::kernels {

using dnnl::memory;

ConvAttrs::ConvAttrs(TF_OpKernelConstruction* ctx)
    : strides(GetIntListAttr(ctx, "strides")),
      dilations(GetIntListAttr(ctx, "dilations")),
      padding(GetStringAttr(ctx, "padding")) {
  Require(GetStringAttr(ctx, "data_format") == "NHWC",
          "QCPU convolutions support the NHWC data format only");
  Require(
      strides.size() == 4 && strides[0] == 1 && strides[3] == 1 && strides[1] > 0 && strides[2] > 0,
      "strides must be [1, h, w, 1] with positive h and w");
  Require(dilations.size() == 4 && dilations[0] == 1 && dilations[3] == 1 && dilations[1] > 0 &&
              dilations[2] > 0,
          "dilations must be [1, h, w, 1] with positive h and w");
  Require(padding == "SAME" || padding == "VALID" || padding == "EXPLICIT",
          "unknown padding '" + padding + "'");
  if (padding == "EXPLICIT") {
    explicit_paddings = GetIntListAttr(ctx, "explicit_paddings");
    Require(explicit_paddings.size() == 8, "explicit_paddings must hold 8 values");
    for (int64_t p : explicit_paddings) Require(p >= 0, "explicit_paddings must be >= 0");
  }
}

void RequireConvShapes(const std::vector<int64_t>& in, const std::vector<int64_t>& f,
                       bool depthwise) {
  Require(in.size() == 4, [&] { return "input must be 4-D, got " + ShapeString(in); });
  Require(f.size() == 4, [&] { return "filter must be 4-D, got " + ShapeString(f); });
  if (depthwise)
    Require(in[3] == f[2], [&] {
      return "input depth must equal filter depth: input " + ShapeString(in) + ", filter " +
             ShapeString(f);
    });
  else
    Require(f[2] > 0 && in[3] % f[2] == 0, [&] {
      return "input depth must be evenly divisible by filter depth: input " + ShapeString(in) +
             ", filter " + ShapeString(f);
    });
}

ConvGeometry MakeConvGeometry(const ConvAttrs& attrs, const std::vector<int64_t>& in,
                              const std::vector<int64_t>& f, bool depthwise) {
  ConvGeometry g;
  g.n = in[0], g.ih = in[1], g.iw = in[2], g.ic = in[3];
  g.kh = f[0], g.kw = f[1];
  g.groups = depthwise ? g.ic : g.ic / f[2];
  g.oc = depthwise ? f[2] * f[3] : f[3];
  const auto& s = attrs.strides;
  const auto& d = attrs.dilations;
  int64_t top, bottom, left, right;
  if (attrs.padding == "SAME") {
    SamePadding(g.ih, g.kh, s[1], d[1], g.oh, top, bottom);
    SamePadding(g.iw, g.kw, s[2], d[2], g.ow, left, right);
  } else {
    top = bottom = left = right = 0;
    if (attrs.padding == "EXPLICIT") {
      const auto& p = attrs.explicit_paddings;
      top = p[2], bottom = p[3], left = p[4], right = p[5];
    }
    const int64_t ekh = (g.kh - 1) * d[1] + 1, ekw = (g.kw - 1) * d[2] + 1;
    Require(g.ih + top + bottom >= ekh && g.iw + left + right >= ekw, [&] {
      return "the filter " + ShapeString(f) + " is larger than the padded input " + ShapeString(in);
    });
    g.oh = (g.ih + top + bottom - ekh) / s[1] + 1;
    g.ow = (g.iw + left + right - ekw) / s[2] + 1;
  }
  g.strides = {s[1], s[2]};
  g.dilations = {d[1] - 1, d[2] - 1};
  g.pad_l = {top, left};
  g.pad_r = {bottom, right};
  return g;
}

memory::desc TfFilterDesc(const ConvGeometry& g, memory::data_type type, bool transposed) {
  const int64_t ig = g.ic / g.groups, og = g.oc / g.groups, oc = g.oc;
  // TF's [kh, kw, ig, oc]: an input channel's stride is oc, an output's 1.
  const int64_t first = transposed ? ig : og, second = transposed ? og : ig;
  const int64_t first_stride = transposed ? oc : 1, second_stride = transposed ? 1 : oc;
  const int64_t kh_stride = g.kw * ig * oc, kw_stride = ig * oc;
  if (g.groups == 1)
    return memory::desc({first, second, g.kh, g.kw}, type,
                        memory::dims{first_stride, second_stride, kh_stride, kw_stride});
  return memory::desc({g.groups, first, second, g.kh, g.kw}, type,
                      memory::dims{og, first_stride, second_stride, kh_stride, kw_stride});
}

memory::desc AnyFilterDesc(const ConvGeometry& g, memory::data_type type, bool transposed) {
  const int64_t ig = g.ic / g.groups, og = g.oc / g.groups;
  const int64_t first = transposed ? ig : og, second = transposed ? og : ig;
  if (g.groups == 1)
    return memory::desc({first, second, g.kh, g.kw}, type, memory::format_tag::any);
  return memory::desc({g.groups, first, second, g.kh, g.kw}, type, memory::format_tag::any);
}

memory::desc NhwcDesc(int64_t n, int64_t c, int64_t h, int64_t w, memory::data_type type) {
  return memory::desc({n, c, h, w}, type, memory::format_tag::nhwc);
}

}  // namespace int8flow::kernels
