# strata-netd's SR-IOV device plugin (kubelet device plugin API v1beta1): VF pools per PF, one
# gRPC server per pool on a unix socket in the kubelet's device-plugins directory. Included from
# netd/CMakeLists.txt; strata_netd_lib links strata_netd_sriov.
add_library(strata_netd_sriov STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/sriov_pool.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/link_probe.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/sriov_inventory.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/sriov_device_plugin.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/sriov_device_plugin_manager.cc)
strata_target_defaults(strata_netd_sriov)
target_include_directories(strata_netd_sriov PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
target_link_libraries(strata_netd_sriov PUBLIC strata_cni strata_common strata_proto_deviceplugin
  spdlog::spdlog)

if(STRATA_BUILD_TESTS)
  strata_add_unit_test(strata_netd_sriov_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tests/sriov_device_plugin_test.cc
    LIBS strata_netd_sriov)
endif()
