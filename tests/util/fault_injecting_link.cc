#include "util/fault_injecting_link.h"

#include "absl/strings/str_cat.h"

namespace fedattn::testing {
namespace {

absl::Status StatusOf(const absl::Status& status) { return status; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

absl::Status Lost(const std::string& method, const char* what) {
  return absl::UnavailableError(absl::StrCat("fault injection: the ", what, " of ", method, " was lost"));
}

}  // namespace

std::vector<FaultInjectingLink::Duplicate> FaultInjectingLink::duplicates() const {
  absl::MutexLock lock(&mu_);
  return duplicates_;
}

int FaultInjectingLink::faults_injected() const {
  absl::MutexLock lock(&mu_);
  return faults_;
}

Fault FaultInjectingLink::Decide(const std::string& method) {
  int call;
  {
    absl::MutexLock lock(&mu_);
    call = ++calls_[method];
  }
  return plan_ ? plan_(Call{method, call}) : Fault::kNone;
}

void FaultInjectingLink::Record(const std::string& method, const absl::Status& second) {
  absl::MutexLock lock(&mu_);
  duplicates_.push_back({method, second});
}

template <typename Result>
Result FaultInjectingLink::Deliver(const std::string& method, Fault fault, const std::function<Result()>& send) {
  if (fault != Fault::kNone && fault != Fault::kDropTask && fault != Fault::kDropTaskOnce) {
    absl::MutexLock lock(&mu_);
    ++faults_;
  }
  switch (fault) {
    case Fault::kDropRequest:
      return Lost(method, "request");
    case Fault::kDropResponse: {
      (void)send();
      return Lost(method, "response");
    }
    case Fault::kDuplicate: {
      Result first = send();
      Record(method, StatusOf(send()));
      return first;
    }
    case Fault::kNone:
    case Fault::kDropTask:
    case Fault::kDropTaskOnce:
      break;
  }
  return send();
}

absl::StatusOr<v1::RegisterResponse> FaultInjectingLink::Register(const v1::RegisterRequest& request) {
  return Deliver<absl::StatusOr<v1::RegisterResponse>>("Register", Decide("Register"), [&] { return inner_->Register(request); });
}

absl::StatusOr<v1::HeartbeatResponse> FaultInjectingLink::Heartbeat(const v1::HeartbeatRequest& request) {
  return Deliver<absl::StatusOr<v1::HeartbeatResponse>>("Heartbeat", Decide("Heartbeat"), [&] { return inner_->Heartbeat(request); });
}

absl::StatusOr<v1::PullTaskResponse> FaultInjectingLink::PullTask(const v1::PullTaskRequest& request) {
  const Fault fault = Decide("PullTask");
  if (fault != Fault::kDropTask && fault != Fault::kDropTaskOnce) {
    return Deliver<absl::StatusOr<v1::PullTaskResponse>>("PullTask", fault, [&] { return inner_->PullTask(request); });
  }
  absl::StatusOr<v1::PullTaskResponse> result = inner_->PullTask(request);
  if (!result.ok() || !result->has_task()) return result;
  absl::MutexLock lock(&mu_);
  if (fault == Fault::kDropTaskOnce && tasks_dropped_ > 0) return result;
  ++tasks_dropped_;
  ++faults_;
  return Lost("PullTask", "response (holding a task)");
}

absl::StatusOr<std::vector<TensorBuffer>> FaultInjectingLink::DownloadModel(const v1::RoundRef& round) {
  return Deliver<absl::StatusOr<std::vector<TensorBuffer>>>("DownloadModel", Decide("DownloadModel"),
                                                            [&] { return inner_->DownloadModel(round); });
}

absl::StatusOr<v1::UploadUpdateResponse> FaultInjectingLink::UploadUpdate(const v1::RoundRef& round,
                                                                          const v1::TrainReport& report,
                                                                          std::vector<rpc::TensorView> tensors) {
  return Deliver<absl::StatusOr<v1::UploadUpdateResponse>>(
      "UploadUpdate", Decide("UploadUpdate"), [&] { return inner_->UploadUpdate(round, report, tensors); });
}

absl::StatusOr<v1::RecordLedgerEntryResponse> FaultInjectingLink::RecordLedgerEntry(
    const v1::RecordLedgerEntryRequest& request) {
  return Deliver<absl::StatusOr<v1::RecordLedgerEntryResponse>>(
      "RecordLedgerEntry", Decide("RecordLedgerEntry"), [&] { return inner_->RecordLedgerEntry(request); });
}

absl::Status FaultInjectingLink::ReportTask(const v1::ReportTaskRequest& request) {
  return Deliver<absl::Status>("ReportTask", Decide("ReportTask"), [&] { return inner_->ReportTask(request); });
}

}  // namespace fedattn::testing
