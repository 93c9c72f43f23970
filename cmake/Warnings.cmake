# fedattn_warnings: an interface target every FedAttn target links, so warnings apply to our
# code and never to generated or third-party sources.
add_library(fedattn_warnings INTERFACE)
target_compile_options(fedattn_warnings INTERFACE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # Lock annotations (ABSL_GUARDED_BY, ...) are our check on shared state: ThreadSanitizer cannot
  # see Debian's abseil locks (docs/operations.md, "Sanitizers"). The clang build the test command
  # makes (the fuzz targets and the libraries they link) fails on a violation.
  target_compile_options(fedattn_warnings INTERFACE -Wthread-safety -Werror=thread-safety)
endif()
