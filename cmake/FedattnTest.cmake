# fedattn_add_test(NAME SOURCES a.cc b.cc LIBS lib... [LABELS label] [TIMEOUT s]
#                  [ENVIRONMENT_MODIFICATION op...])
# One executable per test file (or small group), registered with ctest through gtest_discover_tests.
include(GoogleTest)
function(fedattn_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ENVIRONMENT_MODIFICATION" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} fedattn_test_util GTest::gtest GTest::gmock
                        GTest::gtest_main fedattn_warnings)
  # Tests of LibTorch code reuse the library's precompiled LibTorch header: without it each such
  # test file spends most of a minute parsing LibTorch.
  if("fedattn_models" IN_LIST T_LIBS)
    target_precompile_headers(${name} REUSE_FROM fedattn_models)
  endif()
  # gtest_discover_tests passes the properties on as a flat list, so a second label would become
  # a stray property name and be lost: ctest -LE would then not leave that test out.
  list(LENGTH T_LABELS label_count)
  if(label_count GREATER 1)
    message(FATAL_ERROR "fedattn_add_test(${name}): one label at most, got '${T_LABELS}'")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set(extra_properties)
  if(T_ENVIRONMENT_MODIFICATION)
    set(extra_properties ENVIRONMENT_MODIFICATION "${T_ENVIRONMENT_MODIFICATION}")
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
                       PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}" ${extra_properties})
endfunction()
