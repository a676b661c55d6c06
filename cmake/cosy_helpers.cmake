# cosy_add_test(NAME SOURCES... LIBS ...): a GoogleTest binary registered with ctest.
function(cosy_add_test name)
  if(NOT COSY_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} cosy_test_support GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES ENVIRONMENT "COSY_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp")
endfunction()
