# The SR-IOV device plugin against a test kubelet (tests/netd/fake_kubelet.*: Registration and
# PodResources servers from the kubelet's protos) and the real strata-sriov in a real netns.
if(NOT TARGET strata_netd_sriov)  # netd is left out with STRATA_SKIP_CNI
  return()
endif()
add_library(strata_fake_kubelet STATIC ${CMAKE_CURRENT_LIST_DIR}/fake_kubelet.cc)
strata_target_defaults(strata_fake_kubelet)
target_include_directories(strata_fake_kubelet PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(strata_fake_kubelet PUBLIC strata_common strata_proto_deviceplugin
  strata_proto_podresources)

add_executable(netd_sriov_device_plugin_test
  ${CMAKE_CURRENT_LIST_DIR}/sriov_device_plugin_test.cc)
strata_target_defaults(netd_sriov_device_plugin_test)
target_include_directories(netd_sriov_device_plugin_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/lib)
target_link_libraries(netd_sriov_device_plugin_test PRIVATE strata_netd_sriov strata_fake_kubelet
  GTest::gtest)
strata_test_needs(sanitized netd_sriov_device_plugin_test strata-cni strata-podresources)
add_test(NAME netd_sriov_device_plugin
  COMMAND netd_sriov_device_plugin_test $<TARGET_FILE_DIR:strata-cni>
          --gtest_filter=-*StrataNetdBinary*)
set_tests_properties(netd_sriov_device_plugin PROPERTIES
  LABELS "root;integration" TIMEOUT 300 SKIP_RETURN_CODE 77 RESOURCE_LOCK cni_netns)
# The same against the strata-netd binary, which also needs an apiserver (the test control plane).
if(TARGET strata-netd AND EXISTS ${PROJECT_SOURCE_DIR}/tests/testenv/CMakeLists.txt)
  strata_test_needs(system netd_sriov_device_plugin_test strata-netd)
  add_test(NAME netd_sriov_binary
    COMMAND netd_sriov_device_plugin_test $<TARGET_FILE_DIR:strata-cni> $<TARGET_FILE:strata-netd>
            ${CMAKE_BINARY_DIR}/testenv/kube/kubeconfig --gtest_filter=*StrataNetdBinary*)
  set_tests_properties(netd_sriov_binary PROPERTIES
    FIXTURES_REQUIRED kube_testenv LABELS "root;controlplane" TIMEOUT 300 SKIP_RETURN_CODE 77
    RESOURCE_LOCK cni_netns)
endif()
