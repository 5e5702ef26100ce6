#include "strata/net/attachment.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace strata::net {
namespace {

class AttachmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strata-net-attach.XXXXXX";
    root_ = ::mkdtemp(tmpl);
    dir_ = root_ + "/attachments";  // created by the first write
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_, dir_;
};

Attachment Sample() {
  Attachment a;
  a.container_id = "c0ffee";
  a.ifname = "eth0";
  a.netns = "/var/run/netns/p1";
  SetPodFromCniArgs(
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web-0;"
      "K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=7c1d",
      &a);
  a.host_interface = "veth12ab";
  a.plugin = "strata-bandwidth";
  return a;
}

TEST_F(AttachmentTest, CniArgsFillThePod) {
  Attachment a = Sample();
  EXPECT_EQ(a.pod_namespace, "team-a");
  EXPECT_EQ(a.pod_name, "web-0");
  EXPECT_EQ(a.pod_uid, "7c1d");
  EXPECT_EQ(a.pod_infra_container_id, "c0ffee");
  EXPECT_TRUE(ParseCniArgs("=x;novalue;A=1").size() == 1);
}

TEST_F(AttachmentTest, WriteListRemoveRoundTrip) {
  ASSERT_TRUE(ListAttachments(dir_).ok());  // a missing dir lists as empty
  EXPECT_TRUE(ListAttachments(dir_)->empty());
  Attachment a = Sample();
  ASSERT_TRUE(WriteAttachment(dir_, a).ok());
  Attachment b = a;
  b.ifname = "net1";
  ASSERT_TRUE(WriteAttachment(dir_, b).ok());
  ASSERT_TRUE(WriteAttachment(dir_, b).ok());  // replaced, not duplicated
  auto all = ListAttachments(dir_);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_TRUE((*all)[0] == a || (*all)[1] == a);
  ASSERT_TRUE(RemoveAttachment(dir_, "c0ffee", "eth0").ok());
  ASSERT_TRUE(RemoveAttachment(dir_, "c0ffee", "eth0").ok());  // idempotent
  ASSERT_TRUE(RemoveAttachment(root_ + "/none", "x", "eth0").ok());
  all = ListAttachments(dir_);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].ifname, "net1");
}

TEST_F(AttachmentTest, BadRecordsNameTheField) {
  auto r = AttachmentFromJson(R"({"containerId":"x","netns":"/n"})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("ifname"), std::string::npos);
  Attachment a = Sample();
  a.container_id = "../x";
  EXPECT_EQ(WriteAttachment(dir_, a).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::net
