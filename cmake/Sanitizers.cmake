# FEDATTN_SANITIZE instruments every target: a comma-separated list of address, undefined and
# thread ("address,undefined" is the usual pair; thread cannot be combined with address).
# scripts/test.sh --sanitize builds one and runs the unit and integration tests with the
# runtime options and suppressions in tests/sanitizers/ (see docs/operations.md, Sanitizers).
if(FEDATTN_SANITIZE)
  string(REPLACE "," ";" _fedattn_sanitizers "${FEDATTN_SANITIZE}")
  foreach(_sanitizer IN LISTS _fedattn_sanitizers)
    if(NOT _sanitizer MATCHES "^(address|undefined|thread)$")
      message(FATAL_ERROR "FEDATTN_SANITIZE takes address, undefined and thread, not '${_sanitizer}'")
    endif()
  endforeach()
  if("address" IN_LIST _fedattn_sanitizers AND "thread" IN_LIST _fedattn_sanitizers)
    message(FATAL_ERROR "FEDATTN_SANITIZE: address and thread cannot be combined")
  endif()
  add_compile_options(-fsanitize=${FEDATTN_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${FEDATTN_SANITIZE})
  if("undefined" IN_LIST _fedattn_sanitizers)
    # A report is a failure, not a line in a log: the process stops at the first one.
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()
