// onednn_layers: INT8 against FP32 on bare oneDNN primitives, layer by layer,
// for machines without TensorFlow. The layers come from python/int8flow/bench/layers.py
// on stdin, one per line: `kind model name batch shape...` (native_shapes()).
// Each primitive is set up as int8flow's kernels set up theirs (csrc/kernels/conv.cc,
// matmul.cc, quantization.cc); the columns are layers.py's int8_u8 (u8 in and out, zero
// points 128), int8_relu (zero points 0, fused ReLU) and f32, timed interleaved.
//   benchmarks/native/build.sh /tmp/onb/onednn_layers
//   python -c 'from int8flow.bench.layers import native_shapes; print(native_shapes([1,16]))' >shapes.txt
//   OMP_NUM_THREADS=16 /tmp/onb/onednn_layers [rounds=15] [min_ms_per_sample=5] <shapes.txt
// (Without int8flow installed: PYTHONPATH=python/int8flow/bench, `from layers import ...`.)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

namespace {

using dnnl::memory;
using dt = memory::data_type;

dnnl::engine engine(dnnl::engine::kind::cpu, 0);
dnnl::stream stream(engine);

struct Layer {
  std::string kind, model, name;
  int64_t batch = 0;
  std::vector<int64_t> shape;  // layers.py's Layer.shape

  int64_t Macs() const {  // as Layer.macs
    const auto& s = shape;
    if (kind == "matmul") return batch * s[0] * s[1] * s[2];
    return batch * ((s[0] + s[5] - 1) / s[5]) * ((s[1] + s[5] - 1) / s[5]) * s[2] * s[4] * s[3] * s[3];
  }
};

bool ReadLayer(std::istream& in, Layer& layer) {
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    layer = Layer();
    if (!(words >> layer.kind)) continue;  // a blank line
    words >> layer.model >> layer.name >> layer.batch;
    for (int64_t v; words >> v;) layer.shape.push_back(v);
    const size_t want = layer.kind == "matmul"                               ? 3
                        : layer.kind == "conv" || layer.kind == "depthwise" ? 6
                                                                            : 0;
    if (want == 0 || layer.shape.size() != want || layer.batch <= 0) {
      std::cerr << "bad line: " << line << "\n";
      std::exit(1);
    }
    return true;
  }
  return false;
}

// The op in oneDNN's terms, with TF's layouts: NHWC activations, filters
// [kh, kw, in, out] (depthwise: [kh, kw, channels, multiplier]), matmul [K, N].
struct Op {
  bool conv;
  memory::dims src, dst, weights, user_weight_strides;
  memory::format_tag act_tag;
  int weights_mask;  // the output-channel dims of the weights, for their scales
  int64_t channels;  // output channels: innermost in TF's weights
  memory::dims strides, pad_l, pad_r;
};

// TF's SAME padding of one spatial dim (onednn_util.cc).
void SamePadding(int64_t in, int64_t k, int64_t stride, int64_t& out, int64_t& before, int64_t& after) {
  out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + k - in, 0);
  before = total / 2;
  after = total - before;
}

Op MakeOp(const Layer& l) {
  if (l.kind == "matmul") {
    const int64_t m = l.batch * l.shape[0], k = l.shape[1], n = l.shape[2];
    return {false, {m, k}, {m, n}, {k, n}, {n, 1}, memory::format_tag::ab, 1 << 1, n, {}, {}, {}};
  }
  const int64_t n = l.batch, ih = l.shape[0], iw = l.shape[1], ic = l.shape[2], k = l.shape[3],
                stride = l.shape[5];
  const bool depthwise = l.kind == "depthwise";
  const int64_t oc = depthwise ? ic * l.shape[4] : l.shape[4];
  const int64_t groups = depthwise ? ic : 1, ig = ic / groups, og = oc / groups;
  int64_t oh, ow, top, bottom, left, right;
  SamePadding(ih, k, stride, oh, top, bottom);
  SamePadding(iw, k, stride, ow, left, right);
  Op op{true, {n, ic, ih, iw}, {n, oc, oh, ow}, {}, {}, memory::format_tag::nhwc, 1, oc,
        {stride, stride}, {top, left}, {bottom, right}};
  if (groups == 1) {
    op.weights = {oc, ig, k, k};
    op.user_weight_strides = {1, oc, k * ig * oc, ig * oc};
  } else {  // output channel o = g * og + (o % og), as conv.cc reads TF's filter
    op.weights = {groups, og, ig, k, k};
    op.user_weight_strides = {og, 1, oc, k * ig * oc, ig * oc};
    op.weights_mask = 3;
  }
  return op;
}

// One timed column: a primitive with its arguments bound.
struct Column {
  dnnl::primitive primitive;
  std::unordered_map<int, memory> args;
  std::string impl;
  int reps = 1;
  std::vector<double> ms;
};

template <class T>
memory Filled(const memory::desc& desc, const std::vector<T>& values) {
  memory m(desc, engine);
  std::memcpy(m.get_data_handle(), values.data(), values.size() * sizeof(T));
  return m;
}

template <class T>
memory Scalar(dt type, T value) {
  return Filled(memory::desc({1}, type, memory::format_tag::a), std::vector<T>{value});
}

// `attr`'s primitive for `op` on `act` activations and `weights` (TF's layout,
// f32 or s8), the weights reordered once into the layout it picks, as
// int8flow's PackedWeights does, and scratchpad from the caller.
template <class W>
Column MakeColumn(const Op& op, dt act, const std::vector<W>& weights, memory src,
                  dnnl::primitive_attr attr) {
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dt wt = std::is_same_v<W, float> ? dt::f32 : dt::s8;
  const memory::desc any_weights(op.weights, wt, memory::format_tag::any);
  const memory::desc dst(op.dst, act, op.act_tag);
  const memory::desc src_desc = src.get_desc();
  const dnnl::primitive_desc pd =
      op.conv ? dnnl::primitive_desc(dnnl::convolution_forward::primitive_desc(
                    engine, dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_desc,
                    any_weights, dst, op.strides, {0, 0}, op.pad_l, op.pad_r, attr))
              : dnnl::primitive_desc(dnnl::matmul::primitive_desc(engine, src_desc, any_weights, dst, attr));
  memory user = Filled(memory::desc(op.weights, wt, op.user_weight_strides), weights);
  memory packed(pd.weights_desc(0), engine);
  dnnl::reorder(user, packed).execute(stream, user, packed);
  Column c{dnnl::primitive(pd),
           {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, packed}, {DNNL_ARG_DST, memory(dst, engine)}},
           pd.impl_info_str()};
  if (pd.scratchpad_desc().get_size() > 0)
    c.args.emplace(DNNL_ARG_SCRATCHPAD, memory(pd.scratchpad_desc(), engine));
  return c;
}

// int8flow's quantized op: u8 activations quantized with `x_scale` and
// `zero_point` (after a ReLU with `relu`, which also fuses one), s8 weights
// with a scale per output channel, u8 output at scale 0.05 (layers.py's),
// every scale and zero point a runtime argument (quantization.cc).
constexpr float kOutScale = 0.05f;

Column Int8Column(const Op& op, const std::vector<float>& x, float x_scale, const std::vector<int8_t>& wq,
                  const std::vector<float>& w_scales, int32_t zero_point, bool relu) {
  std::vector<uint8_t> q(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    q[i] = static_cast<uint8_t>(
        std::clamp(std::nearbyint((relu ? std::max(x[i], 0.f) : x[i]) / x_scale) + zero_point, 0.f, 255.f));
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  attr.set_scales_mask(DNNL_ARG_SRC, 0);
  attr.set_scales_mask(DNNL_ARG_WEIGHTS, op.weights_mask);
  attr.set_scales_mask(DNNL_ARG_DST, 0);
  // Zero points only when nonzero: with any, oneDNN 3.2 leaves its brgemm
  // convolutions for slower AMX kernels (quantization.h, ZeroPointsUsed).
  if (zero_point != 0) {
    attr.set_zero_points_mask(DNNL_ARG_SRC, 0);
    attr.set_zero_points_mask(DNNL_ARG_DST, 0);
  }
  Column c = MakeColumn(op, dt::u8, wq, Filled(memory::desc(op.src, dt::u8, op.act_tag), q), attr);
  c.args.emplace(DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC, Scalar(dt::f32, x_scale));
  c.args.emplace(DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS,
                 Filled(memory::desc({op.channels}, dt::f32, memory::format_tag::a), w_scales));
  c.args.emplace(DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST, Scalar(dt::f32, kOutScale));
  if (zero_point != 0) {
    c.args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, Scalar(dt::s32, zero_point));
    c.args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, Scalar(dt::s32, zero_point));
  }
  return c;
}

// Milliseconds per run, over `reps` runs; each waits, as int8flow's Execute does.
double TimeMs(const Column& c, int reps) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) {
    c.primitive.execute(stream, c.args);
    stream.wait();
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / reps;
}

template <class T>
const T* Data(const memory& m) {
  return static_cast<const T*>(m.get_data_handle());
}

// Cosine between the dequantized u8 output of `c` (zero point `zero_point`)
// and `ref`.
double Cosine(const Column& c, int32_t zero_point, const std::vector<float>& ref) {
  const uint8_t* q = Data<uint8_t>(c.args.at(DNNL_ARG_DST));
  double dot = 0, qq = 0, rr = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double y = kOutScale * (q[i] - zero_point);
    dot += y * ref[i], qq += y * y, rr += double(ref[i]) * ref[i];
  }
  return dot / std::sqrt(qq * rr + 1e-30);
}

// f32 output of `f32` on input `x`, then a ReLU when `relu`: the reference of
// an int8 column.
std::vector<float> Reference(const Column& f32, const std::vector<float>& x, bool relu) {
  auto args = f32.args;
  args[DNNL_ARG_SRC] = Filled(args[DNNL_ARG_SRC].get_desc(), x);
  f32.primitive.execute(stream, args);
  stream.wait();
  const memory& dst = args[DNNL_ARG_DST];
  const float* y = Data<float>(dst);
  std::vector<float> out(y, y + dst.get_desc().get_size() / sizeof(float));
  if (relu)
    for (float& v : out) v = std::max(v, 0.f);
  return out;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

const char* IsaName(dnnl::cpu_isa isa) {
  using i = dnnl::cpu_isa;
  switch (isa) {
    case i::sse41: return "sse41";
    case i::avx: return "avx";
    case i::avx2: return "avx2";
    case i::avx2_vnni: return "avx2_vnni";
    case i::avx2_vnni_2: return "avx2_vnni_2";
    case i::avx512_core: return "avx512_core";
    case i::avx512_core_vnni: return "avx512_core_vnni";
    case i::avx512_core_bf16: return "avx512_core_bf16";
    case i::avx512_core_fp16: return "avx512_core_fp16";
    case i::avx512_core_amx: return "avx512_core_amx";
    case i::avx512_core_amx_fp16: return "avx512_core_amx_fp16";
    default: return "other";
  }
}

std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 15;
  const double min_ms = argc > 2 ? std::atof(argv[2]) : 5.0;
  const dnnl::version_t* v = dnnl::version();
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  // Without VNNI a u8·s8 pair can saturate its int16 sum: int8flow then
  // quantizes weights to 7 bits (quantization.cc, PackWeights).
  const auto has = [isa](dnnl::cpu_isa f) {
    return (static_cast<int>(isa) & static_cast<int>(f)) == static_cast<int>(f);
  };
  const bool vnni = has(dnnl::cpu_isa::avx512_core_vnni) || has(dnnl::cpu_isa::avx2_vnni);
  const float levels = vnni ? 127.f : 63.f;
  std::printf("%s; oneDNN %d.%d.%d (%s), ISA %s, %d OpenMP threads, weights %s; %d rounds, "
              ">= %.1f ms per sample\n\n",
              CpuModel().c_str(), v->major, v->minor, v->patch, v->hash, IsaName(isa), omp_get_max_threads(),
              vnni ? "8-bit" : "7-bit (no VNNI)", rounds, min_ms);
  std::printf("| model | layer | b | u8 ms | relu ms | f32 ms | u8 GOPS | relu GOPS | f32 GOPS | u8 speedup "
              "| relu speedup | cos u8 | cos relu | check | impl u8 | impl relu | impl f32 |\n|");
  for (int i = 0; i < 17; ++i) std::printf("---|");
  std::printf("\n");
  std::fflush(stdout);

  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  for (Layer layer; ReadLayer(std::cin, layer);) {
    const Op op = MakeOp(layer);
    // Random data as layers.py's, x ~ N(0, 1) and w ~ N(0, 1 / fan_in), but
    // with a depthwise filter's true fan-in (k²): layers.py's C·k² leaves
    // outputs too small for the 0.05 output scale to check.
    std::vector<float> x(std::accumulate(op.src.begin(), op.src.end(), int64_t{1}, std::multiplies<>()));
    for (float& e : x) e = normal(rng);
    const int64_t weight_count = std::accumulate(op.weights.begin(), op.weights.end(), int64_t{1},
                                                 std::multiplies<>());
    const float w_std = 1.f / std::sqrt(float(weight_count / op.channels));
    std::vector<float> w(weight_count);
    for (float& e : w) e = normal(rng) * w_std;
    // Symmetric per-channel s8, as QuantizeWeightsPerChannel; x's scale as layers.py's.
    std::vector<float> w_scales(op.channels, 0.f);
    for (int64_t i = 0; i < weight_count; ++i) {
      float& scale = w_scales[i % op.channels];
      scale = std::max(scale, std::fabs(w[i]));
    }
    for (float& s : w_scales) s /= levels;
    std::vector<int8_t> wq(weight_count);
    for (int64_t i = 0; i < weight_count; ++i)
      wq[i] = static_cast<int8_t>(
          std::nearbyint(std::clamp(w[i] / w_scales[i % op.channels], -levels, levels)));
    float x_max = 0;
    for (float e : x) x_max = std::max(x_max, std::fabs(e));
    const float x_scale = x_max / 127;

    std::vector<Column> columns;
    columns.push_back(Int8Column(op, x, x_scale, wq, w_scales, 128, /*relu=*/false));
    columns.push_back(Int8Column(op, x, x_scale, wq, w_scales, 0, /*relu=*/true));
    columns.push_back(MakeColumn(op, dt::f32, w, Filled(memory::desc(op.src, dt::f32, op.act_tag), x), {}));

    for (const Column& c : columns) TimeMs(c, 1);  // a warm-up, whose outputs the check reads
    std::vector<float> x_relu(x);
    for (float& e : x_relu) e = std::max(e, 0.f);
    const double cos_u8 = Cosine(columns[0], 128, Reference(columns[2], x, false));
    const double cos_relu = Cosine(columns[1], 0, Reference(columns[2], x_relu, true));

    for (Column& c : columns) c.reps = std::max(1, static_cast<int>(std::ceil(min_ms / TimeMs(c, 1))));
    for (int r = 0; r < rounds; ++r)  // interleaved, so drift hits every column alike
      for (Column& c : columns) c.ms.push_back(TimeMs(c, c.reps));

    double ms[3];
    for (int i = 0; i < 3; ++i) ms[i] = Median(columns[i].ms);
    const auto gops = [&](double t) { return 2.0 * layer.Macs() / t / 1e6; };
    std::printf("| %s | %s | %lld | %.3f | %.3f | %.3f | %.1f | %.1f | %.1f | %.2fx | %.2fx | %.4f | %.4f "
                "| %s | %s | %s | %s |\n",
                layer.model.c_str(), layer.name.c_str(), static_cast<long long>(layer.batch), ms[0], ms[1],
                ms[2],
                gops(ms[0]), gops(ms[1]), gops(ms[2]), ms[2] / ms[0], ms[2] / ms[1], cos_u8, cos_relu,
                cos_u8 > 0.99 && cos_relu > 0.99 ? "ok" : "LOW COSINE", columns[0].impl.c_str(),
                columns[1].impl.c_str(), columns[2].impl.c_str());
    std::fflush(stdout);
  }
  return 0;
}
