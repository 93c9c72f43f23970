# Use ccache when present. PCH needs the sloppiness below or every hit becomes a miss; BASEDIR and
# NOHASHDIR let a fresh clone in another directory (CI) hit the objects of an earlier build.
find_program(FEDATTN_CCACHE ccache)
if(FEDATTN_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      CCACHE_BASEDIR=${CMAKE_SOURCE_DIR} CCACHE_NOHASHDIR=1
      ${FEDATTN_CCACHE})
  message(STATUS "ccache: ${FEDATTN_CCACHE}")
endif()
