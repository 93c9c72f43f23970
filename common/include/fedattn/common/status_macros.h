// Propagation macros for absl::Status / absl::StatusOr, in the style of Abseil's internal ones.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FEDATTN_CONCAT_INNER_(a, b) a##b
#define FEDATTN_CONCAT_(a, b) FEDATTN_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status fedattn_status_ = (expr);       \
    if (!fedattn_status_.ok()) return fedattn_status_; \
  } while (false)

// ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>); on error returns its
// status, otherwise moves the value into `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, expr) \
  FEDATTN_ASSIGN_OR_RETURN_IMPL_(FEDATTN_CONCAT_(fedattn_statusor_, __LINE__), lhs, expr)
#define FEDATTN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()
