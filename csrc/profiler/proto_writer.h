// Protocol-buffer wire format, just enough to write an XSpace. The plugin
// shim links no protobuf library (docs/architecture.md), and an XSpace is
// a handful of varints and length-delimited fields.
#pragma once

#include <cstdint>
#include <string>

namespace int8flow::profiler {

class ProtoWriter {
 public:
  void Int(int field, int64_t value) {
    Tag(field, kVarint);
    Varint(static_cast<uint64_t>(value));
  }
  void Uint(int field, uint64_t value) {
    Tag(field, kVarint);
    Varint(value);
  }
  // A string, bytes or an embedded message's serialization.
  void Bytes(int field, const std::string& value) {
    Tag(field, kLengthDelimited);
    Varint(value.size());
    out_ += value;
  }
  const std::string& data() const { return out_; }

 private:
  enum WireType { kVarint = 0, kLengthDelimited = 2 };
  void Tag(int field, WireType type) { Varint((static_cast<uint64_t>(field) << 3) | type); }
  void Varint(uint64_t value) {
    while (value >= 0x80) {
      out_ += static_cast<char>((value & 0x7f) | 0x80);
      value >>= 7;
    }
    out_ += static_cast<char>(value);
  }
  std::string out_;
};

}  // namespace int8flow::profiler
