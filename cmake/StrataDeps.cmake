# Every dependency comes from a Debian bookworm package (scripts/install-deps.sh);
# docs/dependencies.md says why each was chosen. Targets link only what they use.
find_package(Threads REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(OpenSSL REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(LIBNL_ROUTE REQUIRED IMPORTED_TARGET libnl-route-3.0)
if(STRATA_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

find_program(STRATA_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
