// Fusion patterns as data: every rewrite the QCPU pass makes is one row of
// FusionPatterns(), and graph/pattern_matcher.cc is the one matcher for all.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace int8flow::graph {

// One node of a pattern. Its inputs are, in order:
//   "label"  the output of another node of this pattern (a label used by two
//            nodes is one graph node feeding both); "label:1" its output 1
//            (a Split's);
//   "$name"  any tensor from outside, captured as $name (the same name twice
//            must be the same tensor);
//   "=0.5"   a float Const whose every element is 0.5.
// AddV2, Add, Mul, Maximum and Minimum also match with their inputs swapped.
struct PatternNode {
  std::string label;
  std::vector<std::string> ops;  // the node's op is any of these
  std::vector<std::string> inputs;
  // Bool attrs that must have these values, an unset one counting as its
  // op's default (FusedBatchNorm's is_training defaults to true); ignored
  // for ops without the attr (adj_x constrains BatchMatMulV2, not MatMul).
  std::vector<std::pair<std::string, bool>> bool_attrs = {};
  // String attrs that must hold these values when set.
  std::vector<std::pair<std::string, std::string>> string_attrs = {};
  // Int attrs that must hold these values (a Split's num_split).
  std::vector<std::pair<std::string, int64_t>> int_attrs = {};
};

// A check on shapes, from Grappler's static shape inference.
struct ShapeCheck {
  enum Kind {
    // `capture` is a vector as long as `label`'s last dim, or that vector
    // as [1, ..., 1, C] of no higher rank than `label` (Keras reshapes a
    // BatchNormalization's variables so when its axis is given as 3, not -1).
    kVectorOfLastDim,
    kSameShape,  // `capture` has exactly `label`'s shape
    kScalar,     // `capture` has one element (`label` is unused)
    kLastAxis,   // `capture` is an int Const naming `label`'s last axis only
    kMatrix,     // `capture` has rank 2 (`label` is unused)
    // `capture`'s shape is `label`'s trailing dims, which multiply to the
    // last dim of `of`: a bias added after a Reshape that split that dim.
    kTrailingDims,
    // `capture` is an int Const [4, 2] of NHWC paddings, >= 0, none on the
    // batch and channel dims (`label` is unused).
    kSpatialPaddings,
    // `capture`'s paddings are each smaller than pooling node `label`'s
    // window in their dim: every window holds an input element.
    kPaddingsInsideWindow,
    // `capture` comes from a Relu or Relu6, alone or as a fused op's last
    // (`label` is unused): it is >= 0. Not a shape check; it lives here as
    // the one other condition a pattern needs.
    kNonNegative,
    // `capture` and the capture named by `of` are the same int Const of two
    // values >= 1: a SpaceToBatchND's and a BatchToSpaceND's block_shape.
    kSameSpatialBlock,
    // `capture` (crops) and `of` (paddings) are int Consts [2, 2], >= 0,
    // each crop at most its padding.
    kCropsWithinPaddings,
    // Node `label`'s strides and dilations are all 1, unset dilations
    // counting as 1 (`capture` is unused).
    kUnitStridesAndDilations,
  } kind;
  std::string capture, label;
  std::string of = "";
};

// Copies attr `from` of matched node `label` (when set) into attr `to`.
struct AttrCopy {
  std::string label, from, to;
};

// The int Const captured as `capture` becomes list attr `to`, flattened
// (kAsIs), as NHWC's spatial dims ([a, b] -> [1, a, b, 1]), or as NHWC
// explicit paddings less the crops captured as `crops` ([[t, b], [l, r]]
// -> [0, 0, t - ct, b - cb, l - cl, r - cr, 0, 0]).
struct AttrFromConst {
  std::string capture, to;
  enum Form { kAsIs, kSpatialDims, kPaddingsLessCrops } form = kAsIs;
  std::string crops = "";
};

struct FusionPattern {
  std::string name;
  // The last node is the root: its output is the pattern's output, and the
  // replacement takes its name, so consumers and fetches need no rewiring.
  std::vector<PatternNode> nodes;
  std::vector<ShapeCheck> checks;
  // The replacement's op; "_QcpuFused@label" ends in that matched node's op.
  std::string op;
  std::vector<std::string> inputs;  // the replacement's inputs: captures
  // The replacement's `fused_ops` attr (and num_args); "@label" stands for
  // that matched node's op. An op with those attrs gets them even when empty.
  std::vector<std::string> fused_ops = {};
  std::vector<AttrCopy> attrs = {};
  // A matched Reshape or Squeeze between the product and the rest: the
  // replacement computes on the product's shape, and the root becomes that
  // node (its op, attrs and other inputs) applied to it.
  std::string reshape_after = "";
  std::vector<AttrFromConst> const_attrs = {};
  // String attrs of the replacement, set after `attrs` are copied.
  std::vector<std::pair<std::string, std::string>> string_attrs = {};
  // Matched nodes whose output 0 stays in use beyond the match (an LSTM
  // cell's new state): it becomes the replacement's output 1, 2, ..., in
  // this order, and their readers read that instead.
  std::vector<std::string> extra_outputs = {};
};

// In the order the pass applies them: activation subgraphs collapse into one
// node first, so the fusions after them see a single activation op.
const std::vector<FusionPattern>& FusionPatterns();

}  // namespace int8flow::graph
