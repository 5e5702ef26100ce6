#include "strata/csi/volume_util.h"

#include <gtest/gtest.h>

#include "call_logging.h"

namespace strata::csi {
namespace {

using ::csi::v1::VolumeCapability;

VolumeCapability Cap(bool block, VolumeCapability::AccessMode::Mode mode,
                     const std::string& fs = "") {
  VolumeCapability c;
  if (block) {
    c.mutable_block();
  } else {
    c.mutable_mount()->set_fs_type(fs);
  }
  c.mutable_access_mode()->set_mode(mode);
  return c;
}

TEST(CsiLunNameForTest, DeterministicValidAndDistinct) {
  const std::string a = LunNameFor("pvc-1234");
  EXPECT_EQ(a, LunNameFor("pvc-1234"));
  EXPECT_NE(a, LunNameFor("pvc-1235"));
  EXPECT_EQ(a.size(), 4u + 32u);
  EXPECT_EQ(a.rfind("csi-", 0), 0u);
  for (char ch : LunNameFor("weird/name with spaces\n\xff")) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-') << ch;
  }
  // SHA-256("abc") starts ba7816bf8f01cfea414140de5dae2223.
  EXPECT_EQ(LunNameFor("abc"), "csi-ba7816bf8f01cfea414140de5dae2223");
}

TEST(CsiVolumeIdTest, ParsesDeviceAndLun) {
  auto id = ParseVolumeId("dev-a/csi-0123");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->device, "dev-a");
  EXPECT_EQ(id->lun, "csi-0123");
  EXPECT_EQ(id->ToString(), "dev-a/csi-0123");
}

TEST(CsiVolumeIdTest, RejectsMalformed) {
  EXPECT_EQ(ParseVolumeId("").status().code(), StatusCode::kInvalidArgument);
  for (const char* bad : {"nolun", "/lun", "dev/", "a/b/c"}) {
    EXPECT_EQ(ParseVolumeId(bad).status().code(), StatusCode::kNotFound) << bad;
  }
}

TEST(CsiSizeForRangeTest, DefaultsRoundsAndChecksLimits) {
  EXPECT_EQ(*SizeForRange(nullptr), kDefaultVolumeBytes);
  ::csi::v1::CapacityRange r;
  r.set_required_bytes(1);
  EXPECT_EQ(*SizeForRange(&r), 4096u);
  r.set_required_bytes(8192);
  EXPECT_EQ(*SizeForRange(&r), 8192u);
  r.set_required_bytes(0);
  r.set_limit_bytes(10000);
  EXPECT_EQ(*SizeForRange(&r), 8192u);  // default capped by the limit, rounded down
  r.set_required_bytes(5000);
  r.set_limit_bytes(4096);
  EXPECT_EQ(SizeForRange(&r).status().code(), StatusCode::kInvalidArgument);
  r.set_required_bytes(4097);
  r.set_limit_bytes(5000);
  EXPECT_EQ(SizeForRange(&r).status().code(), StatusCode::kOutOfRange);
  r.set_required_bytes(0);
  r.set_limit_bytes(100);
  EXPECT_EQ(SizeForRange(&r).status().code(), StatusCode::kOutOfRange);
}

TEST(CsiSizeFitsTest, Range) {
  ::csi::v1::CapacityRange r;
  r.set_required_bytes(4096);
  EXPECT_TRUE(SizeFits(8192, &r));
  EXPECT_FALSE(SizeFits(2048, &r));
  r.set_limit_bytes(4096);
  EXPECT_FALSE(SizeFits(8192, &r));
  EXPECT_TRUE(SizeFits(1, nullptr));
}

TEST(CsiCapabilityTest, AccessModesPerAccessType) {
  using M = VolumeCapability::AccessMode;
  EXPECT_TRUE(ValidateCapability(Cap(true, M::MULTI_NODE_MULTI_WRITER), "c").ok());
  EXPECT_TRUE(ValidateCapability(Cap(true, M::MULTI_NODE_SINGLE_WRITER), "c").ok());
  EXPECT_TRUE(ValidateCapability(Cap(false, M::SINGLE_NODE_WRITER, "ext4"), "c").ok());
  EXPECT_TRUE(ValidateCapability(Cap(false, M::MULTI_NODE_READER_ONLY), "c").ok());
  Status s = ValidateCapability(Cap(false, M::MULTI_NODE_MULTI_WRITER, "xfs"), "caps[0]");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("caps[0].access_mode"), std::string::npos) << s.message();
  EXPECT_EQ(ValidateCapability(Cap(false, M::MULTI_NODE_SINGLE_WRITER), "c").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateCapability(Cap(false, M::SINGLE_NODE_WRITER, "zfs"), "c").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateCapability(Cap(true, M::UNKNOWN), "c").code(), StatusCode::kInvalidArgument);
  VolumeCapability no_type;
  no_type.mutable_access_mode()->set_mode(M::SINGLE_NODE_WRITER);
  EXPECT_EQ(ValidateCapability(no_type, "c").code(), StatusCode::kInvalidArgument);
  google::protobuf::RepeatedPtrField<VolumeCapability> none;
  EXPECT_EQ(ValidateCapabilities(none, "volume_capabilities").message(),
            "volume_capabilities: required");
}

TEST(CsiCapabilityTest, SingleNodeModes) {
  using M = VolumeCapability::AccessMode;
  EXPECT_TRUE(IsSingleNode(M::SINGLE_NODE_WRITER));
  EXPECT_TRUE(IsSingleNode(M::SINGLE_NODE_MULTI_WRITER));
  EXPECT_FALSE(IsSingleNode(M::MULTI_NODE_READER_ONLY));
  EXPECT_FALSE(IsSingleNode(M::MULTI_NODE_MULTI_WRITER));
}

TEST(CsiNodeIdTest, NameAtIp) {
  auto n = ParseNodeId("worker-1@10.0.0.7");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->name, "worker-1");
  EXPECT_EQ(n->ip, "10.0.0.7");
  EXPECT_EQ(ParseNodeId("w@fd00::7")->ip, "fd00::7");
  EXPECT_EQ(ParseNodeId("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseNodeId("worker-1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ParseNodeId("w@not-an-ip").status().code(), StatusCode::kNotFound);
}

TEST(CsiTopologyTest, ZoneAllowedAndPreference) {
  ::csi::v1::TopologyRequirement req;
  EXPECT_TRUE(ZoneAllowed("zone-a", nullptr));
  EXPECT_TRUE(ZoneAllowed("zone-a", &req));  // no requisite
  (*req.add_requisite()->mutable_segments())[kZoneKey] = "zone-b";
  EXPECT_FALSE(ZoneAllowed("zone-a", &req));
  EXPECT_TRUE(ZoneAllowed("zone-b", &req));
  EXPECT_TRUE(ZoneAllowed("", &req));  // a device without a zone is reachable anywhere
  (*req.add_requisite()->mutable_segments())["other.io/rack"] = "r1";
  EXPECT_TRUE(ZoneAllowed("zone-a", &req));  // a segment we do not constrain
  (*req.add_preferred()->mutable_segments())[kZoneKey] = "zone-b";
  EXPECT_EQ(ZonePreference("zone-b", &req), 0);
  EXPECT_EQ(ZonePreference("zone-a", &req), 1);
  EXPECT_EQ(ZonePreference("zone-a", nullptr), 0);
}

TEST(CsiTierTest, Names) {
  EXPECT_EQ(*ParseTier("sata"), storage::v1::TIER_CLASS_SATA);
  EXPECT_EQ(*ParseTier(""), storage::v1::TIER_CLASS_UNSPECIFIED);
  EXPECT_EQ(ParseTier("nvme").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TierName(storage::v1::TIER_CLASS_SAS), "sas");
}

TEST(CsiCallLoggingTest, SecretsNeverReachTheLog) {
  ::csi::v1::CreateVolumeRequest req;
  req.set_name("pvc-1");
  (*req.mutable_secrets())["password"] = "hunter2";
  (*req.mutable_parameters())["tier"] = "ssd";
  const std::string text = RedactedText(req);
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  EXPECT_NE(text.find("pvc-1"), std::string::npos) << text;
  EXPECT_EQ(req.secrets().size(), 1u);  // the request itself is untouched
  ::csi::v1::ControllerPublishVolumeRequest pub;
  (*pub.mutable_secrets())["token"] = "s3cr3t";
  EXPECT_EQ(RedactedText(pub).find("s3cr3t"), std::string::npos);
}

}  // namespace
}  // namespace strata::csi
