# FEDATTN_FUZZ=ON (clang only) instruments every target for libFuzzer's coverage feedback and
# links the targets under fuzz/ with libFuzzer's main. Combine it with
# FEDATTN_SANITIZE=address,undefined so that memory errors, not only crashes, are findings
# (scripts/fuzz.sh configures build-fuzz that way). Without it the fuzz targets are still built,
# with a replay main() that runs the seed corpus and past crash inputs as a regression test.
option(FEDATTN_FUZZ "Build the fuzz targets under fuzz/ with libFuzzer (clang only)" OFF)
if(FEDATTN_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "FEDATTN_FUZZ needs clang (e.g. -DCMAKE_CXX_COMPILER=clang++-14), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
