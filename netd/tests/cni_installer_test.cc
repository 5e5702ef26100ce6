#include "strata/netd/cni_installer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>

#include "strata/common/file_util.h"

namespace strata::netd {
namespace {

namespace fs = std::filesystem;

// Scratch dirs on the local file system: the installer's contract is about rename(2) and modes,
// which only a real file system shows.
class CniInstallerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strata-netd-test.XXXXXX";
    root_ = ::mkdtemp(tmpl);
    src_ = root_ + "/src";
    bin_ = root_ + "/bin";
    conf_ = root_ + "/conf";
    for (const auto& d : {src_, bin_, conf_}) fs::create_directory(d);
    ASSERT_TRUE(WriteFileAtomically(src_ + "/strata-cni", "#!binary v1").ok());
    fs::permissions(src_ + "/strata-cni", fs::perms(0755));
    fs::create_symlink("strata-cni", src_ + "/strata-bandwidth");
  }
  void TearDown() override { fs::remove_all(root_); }

  CniInstaller::Options Opts() {
    CniInstaller::Options o;
    o.source_dir = src_;
    o.names = {"strata-cni", "strata-bandwidth"};
    o.bin_dir = bin_;
    o.conf_dir = conf_;
    o.conf_contents = kConf;
    return o;
  }

  static constexpr const char* kConf =
      R"({"cniVersion":"1.0.0","name":"strata","plugins":[{"type":"strata-bandwidth"}]})";
  std::string root_, src_, bin_, conf_;
};

TEST_F(CniInstallerTest, InstallsBinariesLinksAndConf) {
  CniInstaller installer(Opts());
  ASSERT_TRUE(installer.Validate().ok());
  auto r = installer.Sync();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->written.size(), 3u);
  EXPECT_EQ(*ReadFileToString(bin_ + "/strata-cni"), "#!binary v1");
  EXPECT_EQ(fs::status(bin_ + "/strata-cni").permissions() & fs::perms::owner_exec,
            fs::perms::owner_exec);
  EXPECT_TRUE(fs::is_symlink(bin_ + "/strata-bandwidth"));
  EXPECT_EQ(fs::read_symlink(bin_ + "/strata-bandwidth"), "strata-cni");
  EXPECT_EQ(*ReadFileToString(conf_ + "/10-strata.conflist"), kConf);
  EXPECT_TRUE(installer.last_status().ok());
  // No temp files left behind.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(bin_)) entries += e.exists() ? 1 : 0;
  EXPECT_EQ(entries, 2);
}

TEST_F(CniInstallerTest, SteadyStateWritesNothing) {
  CniInstaller installer(Opts());
  ASSERT_TRUE(installer.Sync().ok());
  struct stat before {};
  ASSERT_EQ(::stat((bin_ + "/strata-cni").c_str(), &before), 0);
  auto r = installer.Sync();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->written.empty());
  struct stat after {};
  ASSERT_EQ(::stat((bin_ + "/strata-cni").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);  // not replaced
}

TEST_F(CniInstallerTest, RestoresChangedOrRemovedFiles) {
  CniInstaller installer(Opts());
  ASSERT_TRUE(installer.Sync().ok());
  ASSERT_TRUE(WriteFileAtomically(bin_ + "/strata-cni", "tampered").ok());
  fs::remove(bin_ + "/strata-bandwidth");
  fs::remove(conf_ + "/10-strata.conflist");
  auto r = installer.Sync();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->written.size(), 3u);
  EXPECT_EQ(*ReadFileToString(bin_ + "/strata-cni"), "#!binary v1");
  EXPECT_EQ(fs::read_symlink(bin_ + "/strata-bandwidth"), "strata-cni");
  EXPECT_EQ(*ReadFileToString(conf_ + "/10-strata.conflist"), kConf);
}

TEST_F(CniInstallerTest, NewImageContentReplacesTheOldBinary) {
  CniInstaller installer(Opts());
  ASSERT_TRUE(installer.Sync().ok());
  ASSERT_TRUE(WriteFileAtomically(src_ + "/strata-cni", "#!binary v2").ok());
  auto r = installer.Sync();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->written.size(), 1u);
  EXPECT_EQ(*ReadFileToString(bin_ + "/strata-cni"), "#!binary v2");
}

TEST_F(CniInstallerTest, MissingSourceFailsAndIsReported) {
  auto o = Opts();
  o.names.push_back("strata-missing");
  CniInstaller installer(o);
  auto r = installer.Sync();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("strata-missing"), std::string::npos);
  EXPECT_FALSE(installer.last_status().ok());
  // What could be installed was.
  EXPECT_TRUE(fs::exists(bin_ + "/strata-cni"));
}

TEST_F(CniInstallerTest, ValidateNamesTheBadField) {
  auto o = Opts();
  o.conf_contents = R"({"cniVersion":"1.0.0","plugins":[{"type":"x"}]})";
  Status s = CniInstaller(o).Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("name"), std::string::npos) << s.message();

  o = Opts();
  o.conf_contents = "not json";
  EXPECT_EQ(CniInstaller(o).Validate().code(), StatusCode::kInvalidArgument);

  o = Opts();
  o.conf_name = "strata.conf";
  s = CniInstaller(o).Validate();
  EXPECT_NE(s.message().find("conf name"), std::string::npos) << s.message();

  o = Opts();
  o.names = {"../evil"};
  s = CniInstaller(o).Validate();
  EXPECT_NE(s.message().find("../evil"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace strata::netd
