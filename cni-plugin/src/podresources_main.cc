// strata-podresources: asks the kubelet's PodResources API (v1 List) which devices of one
// extended resource a pod holds; strata-sriov runs it for `resourceName` (pod_devices.h). Kept
// out of strata-cni so the plugins do not load gRPC on every call.
//   strata-podresources --socket PATH --namespace NS --pod NAME --resource RESOURCE
// Prints {"deviceIDs":[...]} (every container of the pod, in the kubelet's order) and exits 0;
// otherwise prints {"code":<gRPC code>,"msg":"..."} and exits 1: INVALID_ARGUMENT for bad flags,
// UNAVAILABLE when the kubelet does not answer, NOT_FOUND when the pod holds no such device.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "podresources/v1/api.grpc.pb.h"

namespace {

int Fail(grpc::StatusCode code, const std::string& msg) {
  std::cout << nlohmann::json{{"code", static_cast<int>(code)}, {"msg", msg}}.dump() << std::endl;
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || i + 1 >= argc) {
      return Fail(grpc::StatusCode::INVALID_ARGUMENT,
                  "usage: strata-podresources --socket PATH --namespace NS --pod NAME "
                  "--resource RESOURCE (at '" +
                      a + "')");
    }
    flags[a.substr(2)] = argv[++i];
  }
  for (const char* f : {"socket", "namespace", "pod", "resource"}) {
    if (flags[f].empty()) {
      return Fail(grpc::StatusCode::INVALID_ARGUMENT, std::string("--") + f + ": required");
    }
  }
  const std::string& socket = flags["socket"];
  auto channel = grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials());
  auto stub = v1::PodResourcesLister::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListPodResourcesResponse resp;
  grpc::Status s = stub->List(&ctx, v1::ListPodResourcesRequest(), &resp);
  if (!s.ok()) {
    return Fail(s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                    ? grpc::StatusCode::UNAVAILABLE
                    : s.error_code(),
                "kubelet PodResources List on " + socket + ": " + s.error_message());
  }
  nlohmann::json ids = nlohmann::json::array();
  bool pod_found = false;
  for (const auto& pod : resp.pod_resources()) {
    if (pod.namespace_() != flags["namespace"] || pod.name() != flags["pod"]) continue;
    pod_found = true;
    for (const auto& c : pod.containers()) {
      for (const auto& d : c.devices()) {
        if (d.resource_name() != flags["resource"]) continue;
        for (const auto& id : d.device_ids()) ids.push_back(id);
      }
    }
  }
  if (ids.empty()) {
    return Fail(grpc::StatusCode::NOT_FOUND,
                "resourceName: pod " + flags["namespace"] + "/" + flags["pod"] +
                    (pod_found ? " holds no device of " : " is not listed by the kubelet with ") +
                    flags["resource"] + " (does it request the resource in its limits?)");
  }
  std::cout << nlohmann::json{{"deviceIDs", ids}}.dump() << std::endl;
  return 0;
}
