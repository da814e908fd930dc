#include "graph/fusion_patterns.h"

#include <algorithm>
#include <iterator>
#include <tuple>

#include "ops/activations.h"
#include "ops/op_names.h"

namespace int8flow::graph {
namespace {

std::vector<std::string> ActivationOps() {
  return {std::begin(ops::kActivationOps), std::end(ops::kActivationOps)};
}

// MatMul + bias [+ residual Add] [+ activation]. Grappler's arithmetic
// optimizer may already have regrouped (x@w + b) + r as AddN(x@w, r) + b;
// sums commute, so both orders become the same fused op.
std::vector<FusionPattern> MatMulFusions() {
  // BatchMatMulV2 of a batch by one matrix is a MatMul over the rows (Keras'
  // Dense on 3-D inputs, EinsumDense).
  const PatternNode matmul{"matmul", {"MatMul", "BatchMatMulV2"}, {"$a", "$b"}, {{"adj_x", false}}};
  const ShapeCheck matrix_check{ShapeCheck::kMatrix, "$b", ""};
  const std::vector<std::string> adds = {"AddV2", "Add", "AddN"};
  const std::vector<std::string> bias_ops = {"BiasAdd", "AddV2", "Add"};
  const ShapeCheck bias_check{ShapeCheck::kVectorOfLastDim, "$bias", "matmul"};
  const ShapeCheck addend_check{ShapeCheck::kSameShape, "$addend", "matmul"};
  const std::vector<AttrCopy> attrs = {{"matmul", "transpose_a", "transpose_a"},
                                       {"matmul", "transpose_b", "transpose_b"},
                                       {"matmul", "adj_y", "transpose_b"},
                                       {"activation", "alpha", "leakyrelu_alpha"}};
  const std::string op = ops::kFusedMatMul;
  const std::vector<std::string> with_addend = {"$a", "$b", "$bias", "$addend"};
  const std::vector<std::string> without_addend = {"$a", "$b", "$bias"};
  const PatternNode activation_after_add{"activation", ActivationOps(), {"add"}};
  const PatternNode activation_after_bias{"activation", ActivationOps(), {"bias"}};
  // Bias first, then the residual add.
  const PatternNode bias_on_product{"bias", bias_ops, {"matmul", "$bias"}};
  const PatternNode add_on_bias{"add", adds, {"bias", "$addend"}};
  // Residual add first, then the bias.
  const PatternNode add_on_product{"add", adds, {"matmul", "$addend"}};
  const PatternNode bias_on_add{"bias", bias_ops, {"add", "$bias"}};
  // Keras' Dense on 3-D inputs may reshape the product before the bias.
  const PatternNode reshape{"reshape", {"Reshape"}, {"matmul", "$shape"}};
  const PatternNode bias_on_reshape{"bias", bias_ops, {"reshape", "$bias"}};
  const ShapeCheck reshaped_bias_check{ShapeCheck::kTrailingDims, "$bias", "reshape", "matmul"};
  std::vector<FusionPattern> rows = {
      {"MatMul+BiasAdd+Add+activation",
       {matmul, bias_on_product, add_on_bias, activation_after_add},
       {bias_check, addend_check},
       op,
       with_addend,
       {"BiasAdd", "Add", "@activation"},
       attrs},
      {"MatMul+Add+BiasAdd+activation",
       {matmul, add_on_product, bias_on_add, activation_after_bias},
       {bias_check, addend_check},
       op,
       with_addend,
       {"BiasAdd", "Add", "@activation"},
       attrs},
      {"MatMul+Reshape+BiasAdd+activation",
       {matmul, reshape, bias_on_reshape, activation_after_bias},
       {reshaped_bias_check},
       op,
       without_addend,
       {"BiasAdd", "@activation"},
       attrs,
       "reshape"},
      {"MatMul+BiasAdd+activation",
       {matmul, bias_on_product, activation_after_bias},
       {bias_check},
       op,
       without_addend,
       {"BiasAdd", "@activation"},
       attrs},
      {"MatMul+BiasAdd+Add",
       {matmul, bias_on_product, add_on_bias},
       {bias_check, addend_check},
       op,
       with_addend,
       {"BiasAdd", "Add"},
       attrs},
      {"MatMul+Add+BiasAdd",
       {matmul, add_on_product, bias_on_add},
       {bias_check, addend_check},
       op,
       with_addend,
       {"BiasAdd", "Add"},
       attrs},
      {"MatMul+Reshape+BiasAdd",
       {matmul, reshape, bias_on_reshape},
       {reshaped_bias_check},
       op,
       without_addend,
       {"BiasAdd"},
       attrs,
       "reshape"},
      {"MatMul+BiasAdd",
       {matmul, bias_on_product},
       {bias_check},
       op,
       without_addend,
       {"BiasAdd"},
       attrs},
  };
  for (FusionPattern& row : rows) row.checks.push_back(matrix_check);
  return rows;
}

// A fused convolution's attrs, from the matched "conv", "activation" and, for
// a FusedBatchNorm, "pre" (a label a row lacks copies nothing).
std::vector<AttrCopy> ConvAttrCopies() {
  return {
      {"conv", "strides", "strides"},         {"conv", "padding", "padding"},
      {"conv", "dilations", "dilations"},     {"conv", "explicit_paddings", "explicit_paddings"},
      {"conv", "data_format", "data_format"}, {"activation", "alpha", "leakyrelu_alpha"},
      {"pre", "epsilon", "epsilon"}};
}

// Conv2D / DepthwiseConv2dNative / Conv3D + an affine part + [residual Add]
// + [activation], one row per combination (a ZeroPadding2D before: 2-D only). The affine part is
// Keras' forms: a bias, an inference BatchNormalization (tf.nn.batch_normalization gives x * scale
// + shift, with per-channel scale and shift computed from the layer's variables), or a bias then a
// BatchNormalization. The kernel folds the scale into its packed weights and the rest into its
// bias. Grappler's arithmetic optimizer may regroup (x * scale + shift) + r as (x * scale + r) +
// shift; sums commute, so both orders are rows.
std::vector<FusionPattern> ConvFusions() {
  struct Affine {
    std::string name;
    std::vector<PatternNode> nodes;  // after "conv", up to the one labelled "pre"
    std::vector<std::string> captures, fused_ops;
    std::string shift;  // a BatchNorm: "pre" + this is its output; "" for none
  };
  const std::vector<std::string> adds = {"AddV2", "Add"};
  const std::vector<std::string> residual_adds = {"AddV2", "Add", "AddN"};
  const std::vector<std::string> bias_ops = {"BiasAdd", "AddV2", "Add"};
  // The scale and shift computed from the layer's variables, each call:
  // scale = gamma * rsqrt(variance + epsilon), shift = beta - mean * scale.
  // Fusing them too leaves the kernel a few floats of work instead of five
  // tiny ops per layer.
  const std::vector<PatternNode> batch_norm_params = {{"var_eps", adds, {"$variance", "$epsilon"}},
                                                      {"rsqrt", {"Rsqrt"}, {"var_eps"}},
                                                      {"scale", {"Mul"}, {"$gamma", "rsqrt"}},
                                                      {"mean_scaled", {"Mul"}, {"$mean", "scale"}},
                                                      {"shift", {"Sub"}, {"$beta", "mean_scaled"}}};
  const std::vector<std::string> batch_norm_captures = {"$mean", "$variance", "$gamma", "$beta",
                                                        "$epsilon"};
  const auto with_params = [&](std::vector<PatternNode> nodes) {
    nodes.insert(nodes.begin(), batch_norm_params.begin(), batch_norm_params.end());
    return nodes;
  };
  const auto concat = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const auto fused_batch_norm = [](const std::string& input) {
    return PatternNode{"pre",
                       {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"},
                       {input, "$scale", "$offset", "$mean", "$variance"},
                       {{"is_training", false}},
                       {{"data_format", "NHWC"}}};
  };
  const std::vector<std::string> fused_batch_norm_captures = {"$scale", "$offset", "$mean",
                                                              "$variance"};
  const std::vector<Affine> affines = {
      {"BatchNorm",
       with_params({{"pre", {"Mul"}, {"conv", "scale"}}}),
       batch_norm_captures,
       {"BatchNorm"},
       "shift"},
      {"BiasAdd+BatchNorm",
       with_params(
           {{"biased", bias_ops, {"conv", "$bias"}}, {"pre", {"Mul"}, {"biased", "scale"}}}),
       concat({"$bias"}, batch_norm_captures),
       {"BiasAdd", "BatchNorm"},
       "shift"},
      // The same, when the scale and shift come from elsewhere.
      {"ScaleShift",
       {{"pre", {"Mul"}, {"conv", "$scale"}}},
       {"$scale", "$shift"},
       {"Scale", "BiasAdd"},
       "$shift"},
      {"BiasAdd+ScaleShift",
       {{"biased", bias_ops, {"conv", "$bias"}}, {"pre", {"Mul"}, {"biased", "$scale"}}},
       {"$bias", "$scale", "$shift"},
       {"BiasAdd", "Scale", "BiasAdd"},
       "$shift"},
      {"BiasAdd", {{"pre", bias_ops, {"conv", "$bias"}}}, {"$bias"}, {"BiasAdd"}, ""},
      // A BatchNorm's scale alone, its shift summed elsewhere: Grappler
      // regroups ResNet's relu(bn(conv_a) + bn(conv_b)) into
      // relu((a·sa + b·sb) + (shift_a + shift_b)).
      {"BiasAdd+Scale",
       {{"biased", bias_ops, {"conv", "$bias"}}, {"pre", {"Mul"}, {"biased", "$scale"}}},
       {"$bias", "$scale"},
       {"BiasAdd", "Scale"},
       ""},
      {"Scale", {{"pre", {"Mul"}, {"conv", "$scale"}}}, {"$scale"}, {"Scale"}, ""},
      // TF's inference FusedBatchNorm op (tf.keras 2, tf.compat.v1, SavedModels).
      {"FusedBatchNorm",
       {fused_batch_norm("conv")},
       fused_batch_norm_captures,
       {"FusedBatchNorm"},
       ""},
      {"BiasAdd+FusedBatchNorm",
       {{"biased", bias_ops, {"conv", "$bias"}}, fused_batch_norm("biased")},
       concat({"$bias"}, fused_batch_norm_captures),
       {"BiasAdd", "FusedBatchNorm"},
       ""},
      // None: a conv with no bias (use_bias=False) whose BatchNorm Grappler
      // folded away (an identity one: scale 1 into the weights, shift 0).
      {"", {}, {}, {}, ""},
  };
  const std::vector<AttrCopy> attrs = ConvAttrCopies();
  // Keras' ZeroPadding2D before a VALID convolution (MobileNetV2's strided
  // depthwise, ResNet's stem): the conv pads instead, with no extra pass
  // over memory. Its spatial paddings become the conv's explicit ones.
  const PatternNode pad{"pad", {"Pad"}, {"$x", "$paddings"}};
  const std::vector<std::pair<std::string, std::string>> valid_nhwc = {{"padding", "VALID"},
                                                                       {"data_format", "NHWC"}};
  enum Residual { kNone, kAfterShift, kBeforeShift };
  std::vector<FusionPattern> rows;
  for (const bool padded : {true, false}) {
    for (const Residual residual : {kAfterShift, kBeforeShift, kNone}) {
      for (const bool activation : {true, false}) {
        for (const Affine& affine : affines) {
          const bool shift = !affine.shift.empty();
          if (residual == kBeforeShift && !shift) continue;
          // A plain conv is no fusion; a padded one is.
          if (!padded && affine.nodes.empty() && residual == kNone && !activation) continue;
          FusionPattern row;
          row.name = std::string(padded ? "Pad+" : "") + "Conv" +
                     (affine.name.empty() ? "" : "+" + affine.name) +
                     (residual != kNone ? "+Add" : "") + (activation ? "+activation" : "") +
                     (residual == kBeforeShift ? " (shift added last)" : "");
          row.nodes = {{"conv", {"Conv2D", "DepthwiseConv2dNative", "Conv3D"}, {"$x", "$w"}}};
          if (padded) {
            row.nodes = {
                pad, {"conv", {"Conv2D", "DepthwiseConv2dNative"}, {"pad", "$w"}, {}, valid_nhwc}};
            row.checks.push_back({ShapeCheck::kSpatialPaddings, "$paddings", ""});
            row.const_attrs = {{"$paddings", "explicit_paddings"}};
            row.string_attrs = {{"padding", "EXPLICIT"}};
          }
          row.nodes.insert(row.nodes.end(), affine.nodes.begin(), affine.nodes.end());
          row.inputs = {"$x", "$w"};
          row.inputs.insert(row.inputs.end(), affine.captures.begin(), affine.captures.end());
          row.fused_ops = affine.fused_ops;
          std::string last = affine.nodes.empty() ? "conv" : "pre";
          const auto add_shift = [&] {
            row.nodes.push_back({"shifted", adds, {last, affine.shift}});
            last = "shifted";
          };
          if (shift && residual != kBeforeShift) add_shift();
          if (residual != kNone) {
            row.nodes.push_back({"add", residual_adds, {last, "$addend"}});
            last = "add";
          }
          if (shift && residual == kBeforeShift) add_shift();
          if (residual != kNone) {
            row.inputs.push_back("$addend");
            row.fused_ops.push_back("Add");
            row.checks.push_back({ShapeCheck::kSameShape, "$addend", "conv"});
          }
          if (activation) {
            row.nodes.push_back({"activation", ActivationOps(), {last}});
            row.fused_ops.push_back("@activation");
          }
          for (const std::string& input : row.inputs)
            if (input != "$x" && input != "$w" && input != "$addend" && input != "$epsilon")
              row.checks.push_back({ShapeCheck::kVectorOfLastDim, input, "conv"});
          for (const std::string& capture : affine.captures)
            if (capture == "$epsilon") row.checks.push_back({ShapeCheck::kScalar, capture, "conv"});
          row.op = "_QcpuFused@conv";
          row.attrs = attrs;
          rows.push_back(std::move(row));
        }
      }
    }
  }
  // Larger patterns first, so that a smaller one never takes part of a
  // larger match (a Scale-only row would take a BatchNorm's scaled conv).
  std::stable_sort(rows.begin(), rows.end(), [](const FusionPattern& a, const FusionPattern& b) {
    return a.nodes.size() > b.nodes.size();
  });
  return rows;
}

// Keras' Conv1D (and DepthwiseConv1D) as tf.nn.conv1d writes it: ExpandDims,
// a Conv2D over [n, 1, w, c], a Squeeze back to [n, w, c], then the bias
// and activation. They fuse into the conv, on its 4-D output, and the
// Squeeze comes after (reshape_after): a bias and an activation are
// per channel and element-wise, so they commute with it.
std::vector<FusionPattern> SqueezedConvFusions() {
  const PatternNode conv{"conv", {"Conv2D", "DepthwiseConv2dNative"}, {"$x", "$w"}};
  const PatternNode squeeze{"squeeze", {"Squeeze"}, {"conv"}};
  const PatternNode bias{"bias", {"BiasAdd", "AddV2", "Add"}, {"squeeze", "$bias"}};
  // The channels stay the last dim through the Squeeze.
  const std::vector<ShapeCheck> checks = {{ShapeCheck::kVectorOfLastDim, "$bias", "conv"},
                                          {ShapeCheck::kVectorOfLastDim, "$bias", "squeeze"}};
  const std::vector<std::string> inputs = {"$x", "$w", "$bias"};
  return {{"Conv+Squeeze+BiasAdd+activation",
           {conv, squeeze, bias, {"activation", ActivationOps(), {"bias"}}},
           checks,
           "_QcpuFused@conv",
           inputs,
           {"BiasAdd", "@activation"},
           ConvAttrCopies(),
           "squeeze"},
          {"Conv+Squeeze+BiasAdd",
           {conv, squeeze, bias},
           checks,
           "_QcpuFused@conv",
           inputs,
           {"BiasAdd"},
           ConvAttrCopies(),
           "squeeze"}};
}

// A dilated convolution as tf.nn.convolution (Keras' Conv2D and
// DepthwiseConv2D with dilation_rate) writes it on CPUs: SpaceToBatchND
// pads and splits the input into block x block batches, a VALID stride-1
// conv runs on each, and BatchToSpaceND interleaves and crops. It is one
// convolution with dilations = the block and explicit paddings = the pads
// less the crops, and no passes over memory before or after: the conv rows
// after this one then fuse its bias and activation.
FusionPattern AtrousConvFusion() {
  FusionPattern row;
  row.name = "SpaceToBatch+Conv+BatchToSpace (dilated conv)";
  row.nodes = {{"s2b", {"SpaceToBatchND"}, {"$x", "$block", "$paddings"}},
               {"conv",
                {"Conv2D", "DepthwiseConv2dNative"},
                {"s2b", "$w"},
                {},
                {{"padding", "VALID"}, {"data_format", "NHWC"}}},
               {"b2s", {"BatchToSpaceND"}, {"conv", "$block_again", "$crops"}}};
  row.checks = {{ShapeCheck::kSameSpatialBlock, "$block", "", "$block_again"},
                {ShapeCheck::kCropsWithinPaddings, "$crops", "", "$paddings"},
                {ShapeCheck::kUnitStridesAndDilations, "", "conv"}};
  row.op = "@conv";
  row.inputs = {"$x", "$w"};
  row.attrs = {{"conv", "strides", "strides"}, {"conv", "data_format", "data_format"}};
  row.const_attrs = {
      {"$block", "dilations", AttrFromConst::kSpatialDims},
      {"$paddings", "explicit_paddings", AttrFromConst::kPaddingsLessCrops, "$crops"}};
  row.string_attrs = {{"padding", "EXPLICIT"}};
  return row;
}

// Conv2DTranspose / Conv3DTranspose: Conv2DBackpropInput /
// Conv3DBackpropInputV2 + [bias] + [activation], Keras' order; the kernel runs
// them as one oneDNN deconvolution.
std::vector<FusionPattern> TransposedConvFusions() {
  std::vector<AttrCopy> attrs = ConvAttrCopies();
  attrs.push_back({"conv", "Tshape", "Tshape"});  // Conv3DBackpropInputV2's sizes' type
  const PatternNode bias{"bias", {"BiasAdd", "AddV2", "Add"}, {"conv", "$bias"}};
  const ShapeCheck bias_check{ShapeCheck::kVectorOfLastDim, "$bias", "conv"};
  const std::vector<std::string> inputs = {"$sizes", "$w", "$x"};
  const std::vector<std::string> with_bias = {"$sizes", "$w", "$x", "$bias"};
  const std::string op = "_QcpuFused@conv";
  std::vector<FusionPattern> rows;
  for (const auto& [conv_op, format] :
       {std::pair{"Conv2DBackpropInput", "NHWC"}, std::pair{"Conv3DBackpropInputV2", "NDHWC"}}) {
    const PatternNode conv{
        "conv", {conv_op}, {"$sizes", "$w", "$x"}, {}, {{"data_format", format}}};
    const std::string name = conv_op;
    rows.push_back({name + "+BiasAdd+activation",
                    {conv, bias, {"activation", ActivationOps(), {"bias"}}},
                    {bias_check},
                    op,
                    with_bias,
                    {"BiasAdd", "@activation"},
                    attrs});
    rows.push_back(
        {name + "+BiasAdd", {conv, bias}, {bias_check}, op, with_bias, {"BiasAdd"}, attrs});
    rows.push_back({name + "+activation",
                    {conv, {"activation", ActivationOps(), {"conv"}}},
                    {},
                    op,
                    inputs,
                    {"@activation"},
                    attrs});
  }
  return rows;
}

// Keras' LayerNormalization over the last axis, after Grappler:
// inv = gamma * rsqrt(var + eps); y = -mean * inv + x * inv + beta, the sum
// as AddV2(AddN(two), beta), as one AddN of three, or as (shift + beta) +
// scaled (Grappler's grouping when beta is a variable's). Without gamma
// (scale=False, or Grappler dropped a Mul by ones) inv is the rsqrt itself;
// without beta (center=False, or an Add of zeros dropped) the sum is the
// output. The kernel takes gamma as a fused "Scale", beta as a "BiasAdd".
std::vector<FusionPattern> LayerNormFusions() {
  std::vector<FusionPattern> rows;
  for (const bool scale : {true, false}) {
    for (const bool center : {true, false}) {
      const std::string inv = scale ? "inv" : "rsqrt";
      std::vector<PatternNode> nodes = {{"mean", {"Mean"}, {"$x", "$axes"}},
                                        {"deviation", {"SquaredDifference"}, {"$x", "mean"}},
                                        {"variance", {"Mean"}, {"deviation", "$axes"}},
                                        {"var_eps", {"AddV2", "Add"}, {"variance", "$epsilon"}},
                                        {"rsqrt", {"Rsqrt"}, {"var_eps"}}};
      if (scale) nodes.push_back({"inv", {"Mul"}, {"$gamma", "rsqrt"}});
      nodes.push_back({"neg", {"Neg"}, {"mean"}});
      nodes.push_back({"shift", {"Mul"}, {"neg", inv}});
      nodes.push_back({"scaled", {"Mul"}, {"$x", inv}});
      // Distinct names, so stats()["fusions"] tells the forms apart.
      const std::string name = std::string("LayerNorm") + (scale ? "" : " without gamma") +
                               (center ? "" : " without beta");
      FusionPattern row{
          name,
          {},
          {{ShapeCheck::kLastAxis, "$axes", "mean"}, {ShapeCheck::kScalar, "$epsilon", "mean"}},
          ops::kLayerNorm,
          {"$x", "$epsilon"}};
      for (const auto& [present, capture, op] :
           {std::tuple{scale, "$gamma", "Scale"}, {center, "$beta", "BiasAdd"}}) {
        if (!present) continue;
        row.inputs.push_back(capture);
        row.fused_ops.push_back(op);
        row.checks.push_back({ShapeCheck::kVectorOfLastDim, capture, "layer_norm"});
      }
      if (!center) {
        nodes.push_back({"layer_norm", {"AddN", "AddV2", "Add"}, {"shift", "scaled"}});
        rows.push_back(row);
        rows.back().nodes = nodes;
        continue;
      }
      std::vector<PatternNode> two_adds = nodes, one_add = nodes, shift_first = nodes;
      two_adds.push_back({"sum", {"AddN", "AddV2", "Add"}, {"shift", "scaled"}});
      two_adds.push_back({"layer_norm", {"AddV2", "Add"}, {"sum", "$beta"}});
      one_add.push_back({"layer_norm", {"AddN"}, {"shift", "scaled", "$beta"}});
      shift_first.push_back({"shifted", {"AddV2", "Add"}, {"shift", "$beta"}});
      shift_first.push_back({"layer_norm", {"AddV2", "Add"}, {"shifted", "scaled"}});
      for (const auto& [form, suffix] : {std::pair{&two_adds, ""},
                                         {&one_add, " (AddN of 3)"},
                                         {&shift_first, " (beta added first)"}}) {
        // AddN adds equal shapes only: without gamma the shift is [..., 1],
        // the scaled x [..., C], so no graph has that form.
        if (form == &one_add && !scale) continue;
        rows.push_back(row);
        rows.back().name += suffix;
        rows.back().nodes = *form;
      }
    }
  }
  // Larger first: a row without beta would take a full one's inner sum.
  std::stable_sort(rows.begin(), rows.end(), [](const FusionPattern& a, const FusionPattern& b) {
    return a.nodes.size() > b.nodes.size();
  });
  return rows;
}

// Keras 3's inference BatchNormalization, x * inv + (beta - mean * inv),
// and the activation after it, where no conv or product before it took it
// (those rows come first): BN-ReLU before a conv (DenseNet, pre-activation
// ResNets), BN after pooling or a Dense's activation. Any per-channel
// multiply-add of a full-shaped x is one.
std::vector<FusionPattern> ScaleShiftFusions() {
  const std::vector<PatternNode> scale_shift = {
      {"scaled", {"Mul"}, {"$x", "$scale"}}, {"shifted", {"AddV2", "Add"}, {"scaled", "$offset"}}};
  const std::vector<ShapeCheck> checks = {{ShapeCheck::kSameShape, "$x", "scaled"},
                                          {ShapeCheck::kVectorOfLastDim, "$scale", "scaled"},
                                          {ShapeCheck::kVectorOfLastDim, "$offset", "scaled"}};
  std::vector<PatternNode> with_activation = scale_shift;
  // The activations its loop applies (kernels/scale_shift.cc).
  with_activation.push_back({"activation", {"Relu", "Relu6", "LeakyRelu"}, {"shifted"}});
  return {{"ScaleShift+activation",
           with_activation,
           checks,
           ops::kScaleShift,
           {"$x", "$scale", "$offset"},
           {"Scale", "BiasAdd", "@activation"},
           {{"activation", "alpha", "leakyrelu_alpha"}}},
          {"ScaleShift",
           scale_shift,
           checks,
           ops::kScaleShift,
           {"$x", "$scale", "$offset"},
           {"Scale", "BiasAdd"}}};
}

// Keras' LSTM cell after its gates' product z (x.W + h.U + b, one fused
// MatMul by then): i, f, g, o = split(z, 4); c = sigmoid(f) * c_prev +
// sigmoid(i) * tanh(g); h = sigmoid(o) * tanh(c). Ten ops a step become
// one; the new c, which the loop carries, is the replacement's output 1.
FusionPattern LstmCellFusion() {
  return {"LSTM cell",
          {{"split", {"Split"}, {"$axis", "$z"}, {}, {}, {{"num_split", 4}}},
           {"input_gate", {"Sigmoid"}, {"split"}},
           {"forget_gate", {"Sigmoid"}, {"split:1"}},
           {"candidate", {"Tanh"}, {"split:2"}},
           {"output_gate", {"Sigmoid"}, {"split:3"}},
           {"kept", {"Mul"}, {"forget_gate", "$c"}},
           {"added", {"Mul"}, {"input_gate", "candidate"}},
           {"c", {"AddV2", "Add"}, {"kept", "added"}},
           {"tanh_c", {"Tanh"}, {"c"}},
           {"h", {"Mul"}, {"output_gate", "tanh_c"}}},
          {{ShapeCheck::kLastAxis, "$axis", "split"},
           {ShapeCheck::kMatrix, "$z", ""},
           {ShapeCheck::kSameShape, "$c", "forget_gate"}},
          ops::kLstmCell,
          {"$z", "$c"},
          {},
          {},
          "",
          {},
          {},
          {"c"}};
}

// Keras' GRU cell (reset_after, its default) after its two products' parts:
// xz, xr, xh of x.W + b (a Split) and rz, rr, rh of h.U + b' (slices):
// z = sigmoid(xz + rz), r = sigmoid(xr + rr), hh = tanh(r * rh + xh),
// h = z * h_prev + hh * (1 - z). Eleven ops a step become one.
FusionPattern GruCellFusion() {
  FusionPattern row{"GRU cell",
                    {{"z_sum", {"AddV2", "Add"}, {"$xz", "$rz"}},
                     {"r_sum", {"AddV2", "Add"}, {"$xr", "$rr"}},
                     {"z", {"Sigmoid"}, {"z_sum"}},
                     {"r", {"Sigmoid"}, {"r_sum"}},
                     {"reset", {"Mul"}, {"r", "$rh"}},
                     {"candidate_sum", {"AddV2", "Add"}, {"reset", "$xh"}},
                     {"candidate", {"Tanh"}, {"candidate_sum"}},
                     {"kept", {"Mul"}, {"z", "$h"}},
                     {"one_minus_z", {"Sub"}, {"=1", "z"}},
                     {"new", {"Mul"}, {"candidate", "one_minus_z"}},
                     {"h", {"AddV2", "Add"}, {"kept", "new"}}},
                    {},
                    ops::kGruCell,
                    {"$xz", "$xr", "$xh", "$rz", "$rr", "$rh", "$h"}};
  for (const char* capture : {"$xz", "$xr", "$xh", "$rz", "$rr", "$rh", "$h"})
    row.checks.push_back({ShapeCheck::kSameShape, capture, "z"});
  return row;
}

}  // namespace

const std::vector<FusionPattern>& FusionPatterns() {
  static const std::vector<FusionPattern> table = [] {
    std::vector<FusionPattern> t = {
        // tf.nn.gelu(x, approximate=False) in TF 2.21: 0.5 * erfc(-x / sqrt(2)) * x.
        {"gelu (erf)",
         {{"neg", {"Neg"}, {"$x"}},
          {"scaled", {"Mul"}, {"=0.7071067811865476", "neg"}},
          {"erfc", {"Erfc"}, {"scaled"}},
          {"half", {"Mul"}, {"=0.5", "erfc"}},
          {"gelu", {"Mul"}, {"half", "$x"}}},
         {},
         ops::kGeluExact,
         {"$x"}},
        // tf.nn.gelu(x, approximate=True):
        // 0.5 * (1 + tanh(sqrt(2/pi) * (0.044715 * x^3 + x))) * x, after
        // Grappler's arithmetic optimizer turned x^3 into x * Square(x).
        {"gelu (tanh)",
         {{"square", {"Square"}, {"$x"}},
          {"cube", {"Mul"}, {"$x", "square"}},
          {"cubic", {"Mul"}, {"=0.044715", "cube"}},
          {"inner", {"AddV2", "Add"}, {"cubic", "$x"}},
          {"scaled", {"Mul"}, {"inner", "=0.7978845608028654"}},
          {"tanh", {"Tanh"}, {"scaled"}},
          {"one_plus", {"AddV2", "Add"}, {"tanh", "=1"}},
          {"half", {"Mul"}, {"=0.5", "one_plus"}},
          {"gelu", {"Mul"}, {"half", "$x"}}},
         {},
         ops::kGeluTanh,
         {"$x"}},
        // swish / silu: x * sigmoid(x).
        {"swish",
         {{"sigmoid", {"Sigmoid"}, {"$x"}}, {"swish", {"Mul"}, {"$x", "sigmoid"}}},
         {},
         ops::kSwish,
         {"$x"}},
    };
    for (FusionPattern& p : LayerNormFusions()) t.push_back(std::move(p));
    for (FusionPattern& p : MatMulFusions()) t.push_back(std::move(p));
    t.push_back(AtrousConvFusion());  // before the conv rows, which fuse what follows it
    for (FusionPattern& p : ConvFusions()) t.push_back(std::move(p));
    for (FusionPattern& p : SqueezedConvFusions()) t.push_back(std::move(p));
    for (FusionPattern& p : TransposedConvFusions()) t.push_back(std::move(p));
    t.push_back(LstmCellFusion());
    t.push_back(GruCellFusion());
    for (FusionPattern& p : ScaleShiftFusions()) t.push_back(std::move(p));
    // Keras' ZeroPadding2D before a VALID MaxPool (ResNet's stem). On input
    // >= 0 a zero pad never changes a max when every window holds an input
    // element, so the pool pads instead (its explicit padding takes no part
    // in the max), with no extra pass over memory. After the conv rows,
    // which leave a fused conv ending in the Relu as the input's producer.
    t.push_back(
        {"Pad+MaxPool",
         {{"pad", {"Pad"}, {"$x", "$paddings"}},
          {"pool", {"MaxPool"}, {"pad"}, {}, {{"padding", "VALID"}, {"data_format", "NHWC"}}}},
         {{ShapeCheck::kSpatialPaddings, "$paddings", ""},
          {ShapeCheck::kPaddingsInsideWindow, "$paddings", "pool"},
          {ShapeCheck::kNonNegative, "$x", ""}},
         "MaxPool",
         {"$x"},
         {},
         {{"pool", "ksize", "ksize"},
          {"pool", "strides", "strides"},
          {"pool", "data_format", "data_format"}},
         "",
         {{"$paddings", "explicit_paddings"}},
         {{"padding", "EXPLICIT"}}});
    return t;
  }();
  return table;
}

}  // namespace int8flow::graph
