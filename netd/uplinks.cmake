# NodeNetworkPolicy in strata-netd (node uplinks: bond under a bridge), included by
# netd/CMakeLists.txt. strata_netd_uplinks is linked into strata-netd.
add_library(strata_netd_uplinks STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/uplinks.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/uplink_state.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/uplink_agent.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/node_network_policy_reconciler.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/uplink_static.cc)
strata_target_defaults(strata_netd_uplinks)
target_include_directories(strata_netd_uplinks PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
target_link_libraries(strata_netd_uplinks
  PUBLIC strata_net strata_operator_api strata_controller strata_kube strata_common
  PRIVATE spdlog::spdlog)
target_compile_definitions(strata_netd_uplinks PRIVATE _TURN_OFF_PLATFORM_STRING)

if(STRATA_BUILD_TESTS)
  strata_add_unit_test(strata_netd_uplinks_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tests/uplinks_test.cc
            ${CMAKE_CURRENT_LIST_DIR}/tests/node_network_policy_reconciler_test.cc
    LIBS strata_netd_uplinks strata_net_testing strata_kube_testing strata_common_testing)
endif()
