// RAII and helpers for TF_Status, shared by every room.
#pragma once

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

}  // namespace int8flow
