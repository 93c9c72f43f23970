# fedattn_warnings: an interface target every FedAttn target links, so warnings apply to our
# code and never to generated or third-party sources.
add_library(fedattn_warnings INTERFACE)
target_compile_options(fedattn_warnings INTERFACE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  target_compile_options(fedattn_warnings INTERFACE -Wthread-safety)
endif()
