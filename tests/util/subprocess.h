// A child process for integration tests: started with its output in a log file, killed (SIGKILL)
// and reaped when the object goes away, pass or fail.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace fedattn::testing {

class Subprocess {
 public:
  // Starts `argv` (argv[0] is a path) with stdout and stderr appended to `log`.
  Subprocess(std::vector<std::string> argv, std::filesystem::path log);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int signal);
  // The exit code (128 + signal when killed), or nullopt if still running after `timeout`.
  std::optional<int> Wait(absl::Duration timeout);
  bool running();

  std::string Log() const;
  // Polls the log until it contains `text` or `timeout` passes.
  bool WaitForLog(const std::string& text, absl::Duration timeout) const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::filesystem::path log_;
};

// Runs a command to completion (up to `timeout`), returning its exit code and combined output.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout = absl::Seconds(60));

}  // namespace fedattn::testing
