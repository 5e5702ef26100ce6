# Compiler settings applied to Strata's own targets only: generated protobuf code
# and third-party headers are not held to our warning level.

if(STRATA_SANITIZE)
  # Applied globally so every object, including generated code, is instrumented:
  # mixing instrumented and plain objects gives false container-overflow reports.
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(STRATA_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "STRATA_BUILD_FUZZERS needs clang (libFuzzer): use the fuzz preset")
  endif()
  # Every object is instrumented for coverage (fuzzer-no-link) and checked (ASan, UBSan); the
  # fuzz targets alone link libFuzzer's main (-fsanitize=fuzzer, fuzz/CMakeLists.txt).
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

function(strata_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
                                           -Wimplicit-fallthrough)
  if(STRATA_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
    # GCC 12 at -O3 reports impossible overlaps in inlined std::string concatenation
    # ("'x' + std::string(...)"; GCC bug 105329): a warning stays, it does not fail the build.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      target_compile_options(${target} PRIVATE -Wno-error=restrict)
    endif()
  endif()
endfunction()

# strata_test_needs(GROUP TARGET...): tests of GROUP run TARGET. Two groups, one per build tree
# that scripts/test.sh compiles, so that each tree builds only what its tests run:
#   sanitized  unit and integration tests, run under ASan+UBSan (target strata_sanitized_tests)
#   system     controlplane and vm tests, run on the default build (target strata_system_tests)
# The targets are made by strata_add_test_groups() once every directory has been added.
function(strata_test_needs group)
  if(NOT group MATCHES "^(sanitized|system)$")
    message(FATAL_ERROR "strata_test_needs: unknown group '${group}' (sanitized, system)")
  endif()
  set_property(GLOBAL APPEND PROPERTY STRATA_TEST_NEEDS_${group} ${ARGN})
endfunction()

function(strata_add_test_groups)
  foreach(group sanitized system)
    get_property(needs GLOBAL PROPERTY STRATA_TEST_NEEDS_${group})
    add_custom_target(strata_${group}_tests)
    if(needs)
      list(REMOVE_DUPLICATES needs)
      foreach(t IN LISTS needs)
        if(TARGET ${t})
          add_dependencies(strata_${group}_tests ${t})
        endif()
      endforeach()
    endif()
  endforeach()
endfunction()

# strata_install_programs(DESTINATION DIR TARGET...): install(TARGETS) for executables that go into
# the image (`cmake --install`, the Dockerfile's build stage), recorded in the global property
# STRATA_INSTALLED_PROGRAMS: tests/image checks the shared libraries of every one of them against
# the runtime stage's packages, so a new binary installed this way is covered without more ado.
function(strata_install_programs)
  cmake_parse_arguments(ARG "" "DESTINATION" "" ${ARGN})
  if(NOT ARG_DESTINATION OR NOT ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "strata_install_programs(DESTINATION DIR TARGET...)")
  endif()
  install(TARGETS ${ARG_UNPARSED_ARGUMENTS} RUNTIME DESTINATION ${ARG_DESTINATION})
  set_property(GLOBAL APPEND PROPERTY STRATA_INSTALLED_PROGRAMS ${ARG_UNPARSED_ARGUMENTS})
endfunction()

# strata_add_unit_test(NAME SOURCES... LIBS ...): a GoogleTest binary whose cases are
# registered one by one with CTest under the "unit" label.
function(strata_add_unit_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  strata_target_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name} PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
  strata_test_needs(sanitized ${name})
endfunction()
