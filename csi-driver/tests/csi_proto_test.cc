// Pins the generated csi.v1 code to the CSI spec's wire contract: service and
// method names, and the field numbers and enum values drivers and COs exchange.
// A typo in proto/csi/v1/csi.proto fails here rather than on a real cluster.
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "csi/v1/csi.grpc.pb.h"
#include "csi/v1/csi.pb.h"

namespace {

using google::protobuf::DescriptorPool;

const google::protobuf::Descriptor* Msg(const std::string& name) {
  const auto* d = DescriptorPool::generated_pool()->FindMessageTypeByName("csi.v1." + name);
  EXPECT_NE(d, nullptr) << name;
  return d;
}

void ExpectFields(const std::string& message,
                  const std::vector<std::pair<std::string, int>>& fields) {
  const auto* d = Msg(message);
  ASSERT_NE(d, nullptr);
  for (const auto& [name, number] : fields) {
    const auto* f = d->FindFieldByName(name);
    ASSERT_NE(f, nullptr) << message << "." << name;
    EXPECT_EQ(f->number(), number) << message << "." << name;
  }
}

TEST(CsiProtoTest, ServicesAndMethods) {
  const auto* pool = DescriptorPool::generated_pool();
  struct {
    const char* service;
    std::vector<const char*> methods;
  } want[] = {
      {"csi.v1.Identity", {"GetPluginInfo", "GetPluginCapabilities", "Probe"}},
      {"csi.v1.Controller",
       {"CreateVolume", "DeleteVolume", "ControllerPublishVolume", "ControllerUnpublishVolume",
        "ValidateVolumeCapabilities", "ListVolumes", "GetCapacity", "ControllerGetCapabilities",
        "CreateSnapshot", "DeleteSnapshot", "ListSnapshots", "ControllerExpandVolume",
        "ControllerGetVolume", "ControllerModifyVolume"}},
      {"csi.v1.Node",
       {"NodeStageVolume", "NodeUnstageVolume", "NodePublishVolume", "NodeUnpublishVolume",
        "NodeGetVolumeStats", "NodeExpandVolume", "NodeGetCapabilities", "NodeGetInfo"}},
  };
  for (const auto& s : want) {
    const auto* sd = pool->FindServiceByName(s.service);
    ASSERT_NE(sd, nullptr) << s.service;
    for (const char* m : s.methods)
      EXPECT_NE(sd->FindMethodByName(m), nullptr) << s.service << "/" << m;
  }
}

TEST(CsiProtoTest, VolumeLifecycleFieldNumbers) {
  ExpectFields("CreateVolumeRequest", {{"name", 1},
                                       {"capacity_range", 2},
                                       {"volume_capabilities", 3},
                                       {"parameters", 4},
                                       {"secrets", 5},
                                       {"volume_content_source", 6},
                                       {"accessibility_requirements", 7},
                                       {"mutable_parameters", 8}});
  ExpectFields("Volume", {{"capacity_bytes", 1},
                          {"volume_id", 2},
                          {"volume_context", 3},
                          {"content_source", 4},
                          {"accessible_topology", 5}});
  ExpectFields("CapacityRange", {{"required_bytes", 1}, {"limit_bytes", 2}});
  ExpectFields("VolumeCapability", {{"block", 1}, {"mount", 2}, {"access_mode", 3}});
  ExpectFields("ControllerPublishVolumeRequest", {{"volume_id", 1},
                                                  {"node_id", 2},
                                                  {"volume_capability", 3},
                                                  {"readonly", 4},
                                                  {"secrets", 5},
                                                  {"volume_context", 6}});
  ExpectFields("NodeStageVolumeRequest", {{"volume_id", 1},
                                          {"publish_context", 2},
                                          {"staging_target_path", 3},
                                          {"volume_capability", 4},
                                          {"secrets", 5},
                                          {"volume_context", 6}});
  ExpectFields("NodePublishVolumeRequest", {{"volume_id", 1},
                                            {"publish_context", 2},
                                            {"staging_target_path", 3},
                                            {"target_path", 4},
                                            {"volume_capability", 5},
                                            {"readonly", 6},
                                            {"secrets", 7},
                                            {"volume_context", 8}});
  ExpectFields("ListVolumesRequest", {{"max_entries", 1}, {"starting_token", 2}});
  ExpectFields("NodeGetInfoResponse",
               {{"node_id", 1}, {"max_volumes_per_node", 2}, {"accessible_topology", 3}});
}

TEST(CsiProtoTest, AccessModeValues) {
  const auto* e = csi::v1::VolumeCapability_AccessMode_Mode_descriptor();
  std::vector<std::pair<std::string, int>> want = {{"UNKNOWN", 0},
                                                   {"SINGLE_NODE_WRITER", 1},
                                                   {"SINGLE_NODE_READER_ONLY", 2},
                                                   {"MULTI_NODE_READER_ONLY", 3},
                                                   {"MULTI_NODE_SINGLE_WRITER", 4},
                                                   {"MULTI_NODE_MULTI_WRITER", 5},
                                                   {"SINGLE_NODE_SINGLE_WRITER", 6},
                                                   {"SINGLE_NODE_MULTI_WRITER", 7}};
  for (const auto& [name, number] : want) {
    const auto* v = e->FindValueByName(name);
    ASSERT_NE(v, nullptr) << name;
    EXPECT_EQ(v->number(), number) << name;
  }
}

TEST(CsiProtoTest, SecretFieldsAreMarked) {
  // COs strip fields carrying the csi_secret option (extension 1059) from logs.
  const auto* ext = DescriptorPool::generated_pool()->FindExtensionByName("csi.v1.csi_secret");
  ASSERT_NE(ext, nullptr);
  EXPECT_EQ(ext->number(), 1059);
  const auto* secrets = Msg("CreateVolumeRequest")->FindFieldByName("secrets");
  ASSERT_NE(secrets, nullptr);
  EXPECT_TRUE(secrets->options().GetExtension(csi::v1::csi_secret));
}

}  // namespace
