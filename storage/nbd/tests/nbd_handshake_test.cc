// Option haggling against a raw-socket client: every reply checked byte by byte
// against doc/proto.md.
#include <gtest/gtest.h>

#include "nbd_test_fixture.h"

namespace strata::nbd::test {
namespace {

constexpr uint16_t kWritableFlags = kFlagHasFlags | kFlagSendFlush | kFlagSendFua | kFlagSendTrim |
                                    kFlagSendWriteZeroes | kFlagCanMultiConn;

class NbdHandshakeTest : public NbdServerTest {
 protected:
  void SetUp() override {
    NbdServerTest::SetUp();
    StartServer();
  }

  std::unique_ptr<TestClient> Greeted(uint32_t flags = kClientFlagFixedNewstyle |
                                                       kClientFlagNoZeroes) {
    auto c = Connect();
    EXPECT_TRUE(c->Greet(flags).ok());
    return c;
  }
};

TEST_F(NbdHandshakeTest, GreetingOffersFixedNewstyleAndNoZeroes) {
  auto c = Connect();
  auto flags = c->ReadGreeting();
  ASSERT_TRUE(flags.ok()) << flags.status().ToString();
  EXPECT_EQ(*flags, kFlagFixedNewstyle | kFlagNoZeroes);
}

TEST_F(NbdHandshakeTest, GoReportsExportBlockSizesNameAndDescription) {
  auto c = Greeted();
  auto go = c->InfoOrGo(kOptGo, "disk", {kInfoName, kInfoDescription, kInfoBlockSize});
  ASSERT_TRUE(go.ok()) << go.status().ToString();
  EXPECT_EQ(go->final_type, kRepAck);
  EXPECT_TRUE(go->have_export);
  EXPECT_EQ(go->size, kDiskSize);
  EXPECT_EQ(go->flags, kWritableFlags);
  ASSERT_TRUE(go->have_block_size);
  EXPECT_EQ(go->min_block, 1u);
  EXPECT_EQ(go->preferred_block, 4096u);
  EXPECT_EQ(go->max_block, 32u << 20);
  EXPECT_EQ(go->name, "disk");
  EXPECT_EQ(go->description, "a test disk");
  // In transmission now: a read works.
  auto r = c->Read(0, 512);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->error, 0u);
  EXPECT_EQ(r->data, std::string(512, '\0'));
}

TEST_F(NbdHandshakeTest, InfoStaysInNegotiationThenGo) {
  auto c = Greeted();
  auto info = c->InfoOrGo(kOptInfo, "ro");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->final_type, kRepAck);
  EXPECT_EQ(info->size, 1u << 20);
  EXPECT_EQ(info->flags, kFlagHasFlags | kFlagReadOnly | kFlagSendFlush | kFlagCanMultiConn);
  EXPECT_TRUE(info->name.empty()) << "NBD_INFO_NAME was not requested";
  // Still negotiating: another option is answered.
  ASSERT_TRUE(c->SendOption(kOptList, {}).ok());
  auto r = c->ReadOptionReply();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->option, kOptList);
  while (r.ok() && r->type == kRepServer) r = c->ReadOptionReply();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, kRepAck);
  auto go = c->InfoOrGo(kOptGo, "disk");
  ASSERT_TRUE(go.ok());
  EXPECT_EQ(go->final_type, kRepAck);
  EXPECT_EQ(c->Read(4096, 4096)->error, 0u);
}

TEST_F(NbdHandshakeTest, ListShowsOnlyExportsTheClientMayOpen) {
  auto c = Greeted();
  ASSERT_TRUE(c->SendOption(kOptList, {}).ok());
  std::vector<std::pair<std::string, std::string>> seen;
  while (true) {
    auto r = c->ReadOptionReply();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (r->type == kRepAck) break;
    ASSERT_EQ(r->type, kRepServer);
    ASSERT_GE(r->data.size(), 4u);
    uint32_t len = GetBe32(r->data.data());
    ASSERT_LE(len, r->data.size() - 4);
    seen.emplace_back(r->data.substr(4, len), r->data.substr(4 + len));
  }
  std::vector<std::pair<std::string, std::string>> want = {
      {"disk", "a test disk"}, {"gone", ""}, {"ro", ""}};
  EXPECT_EQ(seen, want);  // "locked" allows only 10.9.9.9
}

TEST_F(NbdHandshakeTest, ListWithDataIsInvalid) {
  auto c = Greeted();
  ASSERT_TRUE(c->SendOption(kOptList, "x").ok());
  auto r = c->ReadOptionReply();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, kRepErrInvalid);
}

TEST_F(NbdHandshakeTest, ExportNameSendsSizeFlagsAndZeroes) {
  auto c = Greeted(kClientFlagFixedNewstyle);
  ASSERT_TRUE(c->SendOption(kOptExportName, "disk").ok());
  auto reply = c->RecvExactly(8 + 2 + 124);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(GetBe64(reply->data()), kDiskSize);
  EXPECT_EQ(GetBe16(reply->data() + 8), kWritableFlags);
  EXPECT_EQ(reply->substr(10), std::string(124, '\0'));
  auto r = c->Write(0, "hello");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->error, 0u);
}

TEST_F(NbdHandshakeTest, ExportNameHonoursNoZeroes) {
  auto c = Greeted(kClientFlagFixedNewstyle | kClientFlagNoZeroes);
  ASSERT_TRUE(c->SendOption(kOptExportName, "disk").ok());
  auto reply = c->RecvExactly(10);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(GetBe64(reply->data()), kDiskSize);
  // Had the server sent 124 zeroes, this reply would not parse.
  auto r = c->Read(0, 16);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->error, 0u);
}

TEST_F(NbdHandshakeTest, ExportNameOfUnknownExportDisconnects) {
  auto c = Greeted();
  ASSERT_TRUE(c->SendOption(kOptExportName, "nope").ok());
  EXPECT_TRUE(c->WaitClosed());
}

TEST_F(NbdHandshakeTest, UnknownExportGetsErrUnknownAndNegotiationGoesOn) {
  auto c = Greeted();
  auto go = c->InfoOrGo(kOptGo, "nope");
  ASSERT_TRUE(go.ok());
  EXPECT_EQ(go->final_type, kRepErrUnknown);
  EXPECT_FALSE(go->have_export);
  EXPECT_NE(go->error_message.find("nope"), std::string::npos) << go->error_message;
  go = c->InfoOrGo(kOptGo, "disk");
  ASSERT_TRUE(go.ok());
  EXPECT_EQ(go->final_type, kRepAck);
}

TEST_F(NbdHandshakeTest, RefusedClientGetsErrPolicy) {
  auto c = Greeted();
  auto info = c->InfoOrGo(kOptInfo, "locked");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->final_type, kRepErrPolicy);
  EXPECT_NE(info->error_message.find("127.0.0.1"), std::string::npos) << info->error_message;
  auto go = c->InfoOrGo(kOptGo, "locked");
  ASSERT_TRUE(go.ok());
  EXPECT_EQ(go->final_type, kRepErrPolicy);
}

TEST_F(NbdHandshakeTest, UnavailableExportGetsErrUnknownWithMessage) {
  auto c = Greeted();
  auto go = c->InfoOrGo(kOptGo, "gone");
  ASSERT_TRUE(go.ok());
  EXPECT_EQ(go->final_type, kRepErrUnknown);
  EXPECT_NE(go->error_message.find("cannot serve now"), std::string::npos) << go->error_message;
}

TEST_F(NbdHandshakeTest, UnknownOptionsGetErrUnsup) {
  auto c = Greeted();
  for (uint32_t opt : {kOptPeekExport, kOptListMetaContext, kOptSetMetaContext, 4242u}) {
    ASSERT_TRUE(c->SendOption(opt, "some data").ok());
    auto r = c->ReadOptionReply();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->option, opt);
    EXPECT_EQ(r->type, kRepErrUnsup) << opt;
  }
  auto go = c->InfoOrGo(kOptGo, "disk");
  ASSERT_TRUE(go.ok());
  EXPECT_EQ(go->final_type, kRepAck);
}

TEST_F(NbdHandshakeTest, StartTlsIsRefusedByPolicy) {
  auto c = Greeted();
  ASSERT_TRUE(c->SendOption(kOptStartTls, {}).ok());
  auto r = c->ReadOptionReply();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, kRepErrPolicy);
  ASSERT_TRUE(c->SendOption(kOptStartTls, "x").ok());
  r = c->ReadOptionReply();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, kRepErrInvalid);
}

TEST_F(NbdHandshakeTest, StructuredRepliesNegotiatedOnceAddsDf) {
  auto c = Greeted();
  ASSERT_TRUE(c->SendOption(kOptStructuredReply, {}).ok());
  EXPECT_EQ(c->ReadOptionReply()->type, kRepAck);
  ASSERT_TRUE(c->SendOption(kOptStructuredReply, {}).ok());
  EXPECT_EQ(c->ReadOptionReply()->type, kRepErrInvalid);
  auto go = c->InfoOrGo(kOptGo, "disk");
  ASSERT_TRUE(go.ok());
  EXPECT_EQ(go->flags, kWritableFlags | kFlagSendDf);
}

TEST_F(NbdHandshakeTest, MalformedGoIsInvalid) {
  auto c = Greeted();
  // Name length beyond the data.
  std::string bad = TestClient::GoData("disk", {});
  PutBe32(bad.data(), 100);
  ASSERT_TRUE(c->SendOption(kOptGo, bad).ok());
  EXPECT_EQ(c->ReadOptionReply()->type, kRepErrInvalid);
  // Request count not matching the length.
  bad = TestClient::GoData("disk", {kInfoName});
  bad.pop_back();
  ASSERT_TRUE(c->SendOption(kOptGo, bad).ok());
  EXPECT_EQ(c->ReadOptionReply()->type, kRepErrInvalid);
  // Too short to hold the fixed fields.
  ASSERT_TRUE(c->SendOption(kOptInfo, "abc").ok());
  EXPECT_EQ(c->ReadOptionReply()->type, kRepErrInvalid);
  // Still negotiating.
  EXPECT_EQ(c->InfoOrGo(kOptGo, "disk")->final_type, kRepAck);
}

TEST_F(NbdHandshakeTest, OversizedOptionGetsTooBigAndDisconnect) {
  auto c = Greeted();
  // Only the header: the server must not wait for (or allocate) 1 GiB.
  std::string h(16, '\0');
  PutBe64(h.data(), kOptsMagic);
  PutBe32(h.data() + 8, kOptList);
  PutBe32(h.data() + 12, 1u << 30);
  ASSERT_TRUE(c->SendRaw(h).ok());
  auto r = c->ReadOptionReply();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->type, kRepErrTooBig);
  EXPECT_TRUE(c->WaitClosed());
}

TEST_F(NbdHandshakeTest, AbortIsAcknowledgedThenClosed) {
  auto c = Greeted();
  ASSERT_TRUE(c->SendOption(kOptAbort, {}).ok());
  auto r = c->ReadOptionReply();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, kRepAck);
  EXPECT_TRUE(c->WaitClosed());
}

TEST_F(NbdHandshakeTest, NonFixedNewstyleClientIsRefused) {
  auto c = Greeted(/*flags=*/0);
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_TRUE(WaitFor([&] { return server_->connection_count() == 0; }));
}

TEST_F(NbdHandshakeTest, UnknownClientFlagsAreRefused) {
  auto c = Greeted(kClientFlagFixedNewstyle | (1u << 7));
  EXPECT_TRUE(c->WaitClosed());
}

TEST_F(NbdHandshakeTest, OptionWithoutMagicDisconnects) {
  auto c = Greeted();
  ASSERT_TRUE(c->SendRaw(std::string(16, 'x')).ok());
  EXPECT_TRUE(c->WaitClosed());
  // The server still serves others.
  EXPECT_NE(Open("disk"), nullptr);
}

TEST_F(NbdHandshakeTest, ReadOnlyExportAdvertisesReadOnly) {
  auto c = Greeted();
  auto go = c->InfoOrGo(kOptGo, "ro");
  ASSERT_TRUE(go.ok());
  EXPECT_NE(go->flags & kFlagReadOnly, 0);
  EXPECT_EQ(go->flags & (kFlagSendTrim | kFlagSendWriteZeroes | kFlagSendFua), 0);
}

TEST(NbdHandshakeTimeoutTest, SilentClientIsDroppedAfterTheTimeout) {
  StaticExportCatalog catalog;
  NbdServerOptions opt;
  opt.handshake_timeout = std::chrono::milliseconds(200);
  auto server = NbdServer::Start(&catalog, {{"127.0.0.1", 0}}, opt);
  ASSERT_TRUE(server.ok());
  auto c = TestClient::Connect((*server)->bound_portals()[0]);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->ReadGreeting().ok());
  EXPECT_TRUE((*c)->WaitClosed(std::chrono::seconds(5)));
}

}  // namespace
}  // namespace strata::nbd::test
