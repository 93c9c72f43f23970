# FEDATTN_SANITIZE=address|undefined|thread instruments every target.
if(FEDATTN_SANITIZE)
  if(NOT FEDATTN_SANITIZE MATCHES "^(address|undefined|thread)$")
    message(FATAL_ERROR "FEDATTN_SANITIZE must be address, undefined or thread, not '${FEDATTN_SANITIZE}'")
  endif()
  add_compile_options(-fsanitize=${FEDATTN_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${FEDATTN_SANITIZE})
endif()
