#include "graph/fusion_table_json.h"

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "graph/fusion_patterns.h"

namespace int8flow::graph {
namespace {

const char* KindName(ShapeCheck::Kind kind) {
  switch (kind) {
    case ShapeCheck::kVectorOfLastDim: return "vector_of_last_dim";
    case ShapeCheck::kSameShape: return "same_shape";
    case ShapeCheck::kScalar: return "scalar";
    case ShapeCheck::kLastAxis: return "last_axis";
    case ShapeCheck::kMatrix: return "matrix";
    case ShapeCheck::kTrailingDims: return "trailing_dims";
    case ShapeCheck::kSpatialPaddings: return "spatial_paddings";
    case ShapeCheck::kPaddingsInsideWindow: return "paddings_inside_window";
    case ShapeCheck::kNonNegative: return "non_negative";
    case ShapeCheck::kSameSpatialBlock: return "same_spatial_block";
    case ShapeCheck::kCropsWithinPaddings: return "crops_within_paddings";
    case ShapeCheck::kUnitStridesAndDilations: return "unit_strides_and_dilations";
  }
  return "unknown";
}

// A small writer: the table holds op names, labels and attr names, but
// every string is escaped anyway. Each value calls Separate(), which puts
// the comma before all but a container's first value or a key's value.
class Json {
 public:
  Json& String(const std::string& s) {
    Separate();
    out_ += '"';
    for (const char c : s) {
      if (static_cast<unsigned char>(c) < 0x20) continue;  // no control characters in the table
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += c;
    }
    out_ += '"';
    return *this;
  }
  Json& Bool(bool value) {
    Separate();
    out_ += value ? "true" : "false";
    return *this;
  }
  Json& Int(int64_t value) {
    Separate();
    out_ += std::to_string(value);
    return *this;
  }
  Json& Key(const std::string& key) {
    String(key);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  Json& Open(char bracket) {
    Separate();
    out_ += bracket;
    first_ = true;
    return *this;
  }
  Json& Close(char bracket) {
    out_ += bracket;
    first_ = false;
    return *this;
  }
  Json& Strings(const std::vector<std::string>& items) {
    Open('[');
    for (const std::string& item : items) String(item);
    return Close(']');
  }
  template <typename Value>
  Json& Pairs(const std::vector<std::pair<std::string, Value>>& pairs) {
    Open('{');
    for (const auto& [key, value] : pairs) {
      Key(key);
      if constexpr (std::is_same_v<Value, bool>)
        Bool(value);
      else if constexpr (std::is_same_v<Value, int64_t>)
        Int(value);
      else
        String(value);
    }
    return Close('}');
  }
  std::string str() && { return std::move(out_); }

 private:
  void Separate() {
    if (after_key_) {
      after_key_ = false;
    } else if (!first_) {
      out_ += ',';
    }
    first_ = false;
  }
  std::string out_;
  bool first_ = true, after_key_ = false;
};

}  // namespace

std::string FusionTableJson() {
  Json j;
  j.Open('[');
  for (const FusionPattern& row : FusionPatterns()) {
    j.Open('{');
    j.Key("name").String(row.name);
    j.Key("nodes").Open('[');
    for (const PatternNode& node : row.nodes) {
      j.Open('{');
      j.Key("label").String(node.label);
      j.Key("ops").Strings(node.ops);
      j.Key("inputs").Strings(node.inputs);
      j.Key("bool_attrs").Pairs(node.bool_attrs);
      j.Key("string_attrs").Pairs(node.string_attrs);
      j.Key("int_attrs").Pairs(node.int_attrs);
      j.Close('}');
    }
    j.Close(']');
    j.Key("checks").Open('[');
    for (const ShapeCheck& check : row.checks) {
      j.Open('{');
      j.Key("kind").String(KindName(check.kind));
      j.Key("capture").String(check.capture);
      j.Key("label").String(check.label);
      j.Key("of").String(check.of);
      j.Close('}');
    }
    j.Close(']');
    j.Key("op").String(row.op);
    j.Key("inputs").Strings(row.inputs);
    j.Key("fused_ops").Strings(row.fused_ops);
    j.Key("attrs").Open('[');
    for (const AttrCopy& copy : row.attrs) j.Strings({copy.label, copy.from, copy.to});
    j.Close(']');
    j.Key("reshape_after").String(row.reshape_after);
    j.Key("const_attrs").Open('[');
    for (const AttrFromConst& attr : row.const_attrs) j.Strings({attr.capture, attr.to});
    j.Close(']');
    j.Key("string_attrs").Pairs(row.string_attrs);
    j.Key("extra_outputs").Strings(row.extra_outputs);
    j.Close('}');
  }
  j.Close(']');
  return std::move(j).str();
}

}  // namespace int8flow::graph
