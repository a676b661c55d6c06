# cosy_add_test(NAME SOURCES... LIBS ... [COST N]): a GoogleTest binary registered with ctest.
# COST starts a binary's tests first under `ctest -j`: a fresh checkout (CI) has no recorded
# test times, and a minutes-long test that starts last runs alone on one core at the end.
function(cosy_add_test name)
  if(NOT COSY_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "COST" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_COST)
    set(ARG_COST 0)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} cosy_test_support GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES ENVIRONMENT "COSY_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp" COST ${ARG_COST})
endfunction()
