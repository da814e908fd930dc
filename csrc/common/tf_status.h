// RAII and helpers for TF_Status, shared by every room.
#pragma once

#include <exception>
#include <memory>
#include <string>

#include "tensorflow/c/tf_status.h"

namespace int8flow {

struct TfStatusDeleter {
  void operator()(TF_Status* s) const { TF_DeleteStatus(s); }
};
// An owned TF_Status, for calls into TF or callbacks that need one.
class OwnedStatus {
 public:
  OwnedStatus() : status_(TF_NewStatus()) {}
  TF_Status* get() const { return status_.get(); }
  bool ok() const { return TF_GetCode(status_.get()) == TF_OK; }
  std::string message() const { return TF_Message(status_.get()); }

 private:
  std::unique_ptr<TF_Status, TfStatusDeleter> status_;
};

inline void SetOk(TF_Status* status) { TF_SetStatus(status, TF_OK, ""); }
inline void SetError(TF_Status* status, TF_Code code, const std::string& message) {
  TF_SetStatus(status, code, ("int8flow: " + message).c_str());
}

// Runs `body` at a C callback's boundary, which no exception may cross (TF
// would terminate Python): one that escapes becomes an INTERNAL status.
template <class Body>
void CatchAtBoundary(TF_Status* status, const char* callback, Body&& body) noexcept {
  try {
    body();
  } catch (const std::exception& e) {
    SetError(status, TF_INTERNAL, std::string(callback) + ": " + e.what());
  } catch (...) {
    SetError(status, TF_INTERNAL, std::string(callback) + ": an unknown exception");
  }
}

}  // namespace int8flow
