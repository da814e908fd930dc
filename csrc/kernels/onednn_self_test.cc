#include "kernels/onednn_self_test.h"

#include <exception>

#include "oneapi/dnnl/dnnl.hpp"

namespace int8flow::kernels {

std::string OneDnnSelfTest() {
  try {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    using tag = dnnl::memory::format_tag;
    const dnnl::memory::desc md({2, 2}, dnnl::memory::data_type::f32, tag::ab);
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, c[4] = {};
    dnnl::memory ma(md, engine, a), mb(md, engine, b), mc(md, engine, c);
    dnnl::matmul(dnnl::matmul::primitive_desc(engine, md, md, md))
        .execute(stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    stream.wait();
    if (c[0] != 19 || c[1] != 22 || c[2] != 43 || c[3] != 50)
      return "oneDNN's self-test matmul gave a wrong result";
    return "";
  } catch (const std::exception& e) {
    return std::string("oneDNN's self-test failed: ") + e.what();
  }
}

}  // namespace int8flow::kernels
