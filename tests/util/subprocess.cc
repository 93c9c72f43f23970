#include "util/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "absl/time/clock.h"

namespace fedattn::testing {

Subprocess::Subprocess(std::vector<std::string> argv, std::filesystem::path log) : log_(std::move(log)) {
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
    ::setpgid(0, 0);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

Subprocess::~Subprocess() {
  if (!exit_code_.has_value() && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

void Subprocess::Signal(int signal) {
  if (!exit_code_.has_value()) ::kill(pid_, signal);
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!exit_code_.has_value()) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return exit_code_;
}

bool Subprocess::running() { return !Wait(absl::ZeroDuration()).has_value(); }

std::string Subprocess::Log() const {
  std::ifstream in(log_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool Subprocess::WaitForLog(const std::string& text, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (Log().find(text) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return Log().find(text) != std::string::npos;
}

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  char pattern[] = "/tmp/fedattn-cmd-XXXXXX";
  const int fd = ::mkstemp(pattern);
  ::close(fd);
  CommandResult result;
  {
    Subprocess process(argv, pattern);
    const std::optional<int> code = process.Wait(timeout);
    result.exit_code = code.value_or(-1);
    result.output = process.Log();
  }
  ::unlink(pattern);
  return result;
}

}  // namespace fedattn::testing
