// The saved stage state: its text form both ways, and the file written atomically.
#include "stage_state.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace strata::csi {
namespace {

namespace fs = std::filesystem;

StageState Sample() {
  StageState st;
  st.volume_id = "dev-a/csi-1";
  st.dm_name = "strata-naa6001405abcdef";
  st.export_name = "csi-1";
  st.device_address = "10.0.0.5:7400";
  st.fs_type = "xfs";
  st.readonly = true;
  st.size = 1u << 20;
  st.paths = {StagePath{0, "43:0", "10.0.0.2:10809"}, StagePath{1, "43:32", "10.0.0.3:10809"}};
  st.missing = {"10.0.0.4:10809"};
  return st;
}

void ExpectSame(const StageState& a, const StageState& b) {
  EXPECT_EQ(a.volume_id, b.volume_id);
  EXPECT_EQ(a.dm_name, b.dm_name);
  EXPECT_EQ(a.export_name, b.export_name);
  EXPECT_EQ(a.device_address, b.device_address);
  EXPECT_EQ(a.fs_type, b.fs_type);
  EXPECT_EQ(a.readonly, b.readonly);
  EXPECT_EQ(a.size, b.size);
  ASSERT_EQ(a.paths.size(), b.paths.size());
  for (size_t i = 0; i < a.paths.size(); ++i) {
    EXPECT_EQ(a.paths[i].nbd, b.paths[i].nbd);
    EXPECT_EQ(a.paths[i].dev, b.paths[i].dev);
    EXPECT_EQ(a.paths[i].portal, b.paths[i].portal);
  }
  EXPECT_EQ(a.missing, b.missing);
}

TEST(StageStateTest, TextRoundTrip) {
  const StageState st = Sample();
  const std::string text = FormatStageState(st);
  EXPECT_EQ(text,
            "volume dev-a/csi-1\ndm strata-naa6001405abcdef\nexport csi-1\nsize 1048576\n"
            "device 10.0.0.5:7400\nfs xfs\nreadonly\npath 0 43:0 10.0.0.2:10809\n"
            "path 1 43:32 10.0.0.3:10809\nmissing 10.0.0.4:10809\n");
  auto back = ParseStageState(text, "x");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSame(*back, st);
}

TEST(StageStateTest, BlockVolumeOmitsOptionalLines) {
  StageState st;
  st.dm_name = "strata-x";
  const std::string text = FormatStageState(st);
  EXPECT_EQ(text.find("fs "), std::string::npos);
  EXPECT_EQ(text.find("readonly"), std::string::npos);
  EXPECT_EQ(text.find("device "), std::string::npos);
  auto back = ParseStageState(text, "x");
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->fs_type.empty());
  EXPECT_FALSE(back->readonly);
}

TEST(StageStateTest, NoDmNameIsAnErrorNamingTheFile) {
  auto r = ParseStageState("volume v\nsize 1\n", "/staging/strata-stage");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("/staging/strata-stage"), std::string::npos);
}

class StageStateFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strata-stage-state-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(StageStateFileTest, WriteThenReadAndNoTempFileLeft) {
  EXPECT_EQ(ReadStageState(dir_.string()).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(WriteStageState(dir_.string(), Sample()).ok());
  EXPECT_EQ(StageStatePath(dir_.string()), (dir_ / kStageStateFile).string());
  auto back = ReadStageState(dir_.string());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSame(*back, Sample());
  // Replaced whole: a second write with fewer paths leaves no trace of the first.
  StageState two = Sample();
  two.paths.pop_back();
  two.missing.clear();
  ASSERT_TRUE(WriteStageState(dir_.string(), two).ok());
  back = ReadStageState(dir_.string());
  ASSERT_TRUE(back.ok());
  ExpectSame(*back, two);
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename(), kStageStateFile) << "left behind: " << e.path();
  }
}

TEST_F(StageStateFileTest, MissingStagingDirectoryReadsAsNotStaged) {
  EXPECT_EQ(ReadStageState((dir_ / "nope").string()).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(WriteStageState((dir_ / "nope").string(), Sample()).ok());
}

}  // namespace
}  // namespace strata::csi
