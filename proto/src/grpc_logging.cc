#include "fedattn/rpc/grpc_logging.h"

#include <grpc/support/log.h>

#include "fedattn/common/logging.h"

namespace fedattn::rpc {
namespace {

void LogToSpdlog(gpr_log_func_args* args) {
  spdlog::debug("grpc {}:{}: {}", args->file, args->line, args->message);
}

}  // namespace

void RouteGrpcLogsToSpdlog() {
  gpr_set_log_verbosity(GPR_LOG_SEVERITY_DEBUG);
  gpr_set_log_function(&LogToSpdlog);
}

}  // namespace fedattn::rpc
