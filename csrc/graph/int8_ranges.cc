// The INT8 rewrite's QDQ ranges: the fixed range a graph's QDQ node gives
// the activations it feeds, and the range of our static Quantize nodes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "graph/int8_internal.h"
#include "ops/int8_math.h"

namespace int8flow::graph::int8_rewrite {

FixedRange FixedRangeOf(const NodeIndex& nodes, const std::string& tensor) {
  FixedRange range;
  if (const NodeDef* fq = nodes.Producer(tensor, "FakeQuantWithMinMaxArgs")) {
    if (fq->input_size() < 1 || AttrOf(*fq, "num_bits").i() != 8 || AttrOf(*fq, "narrow_range").b())
      return range;
    const float min = AttrOf(*fq, "min").f(), max = AttrOf(*fq, "max").f();
    range.scale = (max - min) / 255.f;
    if (!(range.scale > 0) || !std::isfinite(range.scale)) return range;
    range.zero_point = static_cast<int>(std::clamp(std::round(-min / range.scale), 0.f, 255.f));
    range.qdq = fq;
    // With any zero point oneDNN 3.2 leaves its brgemm AMX kernels for
    // slower ones (1.3-3x a layer, measured), and AMX takes s8 activations
    // natively: there a range around 0 runs s8, symmetric. Elsewhere s8
    // costs more than the zero point (VNNI) or than float (AVX2).
    if (range.zero_point != 0 && ops::CpuHasAmx()) {
      range.type = tensorflow::DT_INT8;
      range.scale = std::max(-min, max) / 127.f;
      range.zero_point = 0;
    }
  } else if (const NodeDef* qdq = nodes.Producer(tensor, "QuantizeAndDequantizeV4")) {
    const NodeDef* min_node =
        qdq->input_size() == 3 ? nodes.Producer(qdq->input(1), "Const") : nullptr;
    const NodeDef* max_node =
        qdq->input_size() == 3 ? nodes.Producer(qdq->input(2), "Const") : nullptr;
    if (!min_node || !max_node || !AttrOf(*qdq, "range_given").b() ||
        AttrOf(*qdq, "num_bits").i() != 8 || AttrOf(*qdq, "narrow_range").b() ||
        AttrOf(*qdq, "axis").i() != -1 || AttrOf(*qdq, "round_mode").s() != "HALF_TO_EVEN")
      return range;
    const std::vector<float> lo = FloatValues(*min_node, 1), hi = FloatValues(*max_node, 1);
    if (lo.empty() || hi.empty()) return range;
    const bool is_signed = AttrOf(*qdq, "signed_input").b();
    const float q_min = is_signed ? -128.f : 0.f, q_max = is_signed ? 127.f : 255.f;
    // TF: the smaller of the two ends' factors (an end that cannot bind gives none).
    const float big = std::numeric_limits<float>::max();
    const float from_min = q_min * lo[0] > 0 ? q_min / lo[0] : big;
    const float from_max = q_max * hi[0] > 0 ? q_max / hi[0] : big;
    const float factor = std::min(from_min, from_max);
    if (!(factor < big) || !(factor > 0)) return range;
    range.type = is_signed ? tensorflow::DT_INT8 : tensorflow::DT_UINT8;
    range.scale = 1.f / factor;
    range.qdq = qdq;
  }
  return range;
}

FixedRange StaticRangeOf(const NodeDef& quantize) {
  return {&quantize, AttrOf(quantize, "T").type(), AttrOf(quantize, "static_scale").f(),
          static_cast<int>(AttrOf(quantize, "static_zero_point").i())};
}

bool SameRange(const FixedRange& a, const FixedRange& b) {
  return a.type == b.type && a.scale == b.scale && a.zero_point == b.zero_point;
}

}  // namespace int8flow::graph::int8_rewrite
