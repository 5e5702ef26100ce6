#include "strata/kubectl/format.h"

#include <gtest/gtest.h>

namespace strata::kubectl {
namespace {

using std::chrono::seconds;

TEST(FormatBytes, BinaryUnitsCompact) {
  EXPECT_EQ(FormatBytes(0), "0B");
  EXPECT_EQ(FormatBytes(512), "512B");
  EXPECT_EQ(FormatBytes(1023), "1023B");
  EXPECT_EQ(FormatBytes(1024), "1KiB");
  EXPECT_EQ(FormatBytes(1536), "1.5KiB");
  EXPECT_EQ(FormatBytes(10LL << 30), "10GiB");
  EXPECT_EQ(FormatBytes((1LL << 30) * 3 / 2), "1.5GiB");
  EXPECT_EQ(FormatBytes(150LL << 20), "150MiB");
  EXPECT_EQ(FormatBytes((1LL << 20) - 1), "1.0MiB");  // 1023.999 KiB rounds up a unit
  EXPECT_EQ(FormatBytes(5LL << 40), "5TiB");
  EXPECT_EQ(FormatBytes(-1), "-");
}

TEST(FormatRate, PerSecond) {
  EXPECT_EQ(FormatRate(50.0 * (1 << 20)), "50MiB/s");
  EXPECT_EQ(FormatRate(0), "0B/s");
  EXPECT_EQ(FormatRate(-1), "-");
}

TEST(FormatDuration, AsKubectlAge) {
  EXPECT_EQ(FormatDuration(seconds(-5)), "0s");
  EXPECT_EQ(FormatDuration(seconds(0)), "0s");
  EXPECT_EQ(FormatDuration(seconds(45)), "45s");
  EXPECT_EQ(FormatDuration(seconds(119)), "119s");
  EXPECT_EQ(FormatDuration(seconds(120)), "2m");
  EXPECT_EQ(FormatDuration(seconds(330)), "5m30s");
  EXPECT_EQ(FormatDuration(seconds(42 * 60)), "42m");
  EXPECT_EQ(FormatDuration(seconds(3 * 3600 + 20 * 60)), "3h20m");
  EXPECT_EQ(FormatDuration(seconds(5 * 3600)), "5h");
  EXPECT_EQ(FormatDuration(seconds(20 * 3600)), "20h");
  EXPECT_EQ(FormatDuration(seconds(52 * 3600)), "2d4h");
  EXPECT_EQ(FormatDuration(seconds(30 * 86400)), "30d");
  EXPECT_EQ(FormatDuration(seconds(3 * 365 * 86400)), "3y");
}

TEST(ParseDuration, GoStyle) {
  EXPECT_EQ(*ParseDuration("24h"), seconds(86400));
  EXPECT_EQ(*ParseDuration("1h30m"), seconds(5400));
  EXPECT_EQ(*ParseDuration("90s"), seconds(90));
  EXPECT_EQ(*ParseDuration("1.5h"), seconds(5400));
  EXPECT_EQ(*ParseDuration("1500ms"), seconds(1));
}

TEST(ParseDuration, RejectsWithTheText) {
  for (const char* bad : {"", "10", "h", "5d", "1h-5m", "0s", "10ms", "1.h"}) {
    auto d = ParseDuration(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_NE(d.status().message().find("\"" + std::string(bad) + "\""), std::string::npos)
        << d.status().message();
  }
}

TEST(DurationString, RoundTripsThroughTheCrdPattern) {
  EXPECT_EQ(DurationString(seconds(86400)), "24h");
  EXPECT_EQ(DurationString(seconds(5400)), "1h30m");
  EXPECT_EQ(DurationString(seconds(3661)), "1h1m1s");
  EXPECT_EQ(DurationString(seconds(45)), "45s");
  EXPECT_EQ(*ParseDuration(DurationString(seconds(3661))), seconds(3661));
}

TEST(Rfc3339, FormatsAndParsesUtc) {
  WallTime t = std::chrono::system_clock::from_time_t(1796540251);
  EXPECT_EQ(Rfc3339(t), "2026-12-06T06:57:31Z");
  EXPECT_EQ(*ParseRfc3339("2026-12-06T06:57:31Z"), t);
  EXPECT_EQ(*ParseRfc3339("2026-12-06T06:57:31.250Z"), t);
  EXPECT_FALSE(ParseRfc3339("yesterday").ok());
  EXPECT_FALSE(ParseRfc3339("2026-12-06T06:57:31+02:00").ok());
  EXPECT_EQ(Age("2026-12-06T06:52:31Z", t), "5m");
  EXPECT_EQ(Age("", t), "<unknown>");
}

TEST(ProgressBar, CellsAndPercent) {
  EXPECT_EQ(ProgressBar(0, 100, 10), "[----------]   0%");
  EXPECT_EQ(ProgressBar(50, 100, 10), "[#####-----]  50%");
  EXPECT_EQ(ProgressBar(999, 1000, 10), "[#########-]  99%");  // full only when done
  EXPECT_EQ(ProgressBar(100, 100, 10), "[##########] 100%");
  EXPECT_EQ(ProgressBar(200, 100, 10), "[##########] 100%");  // clamped
  EXPECT_EQ(ProgressBar(-5, 100, 10), "[----------]   0%");
  EXPECT_EQ(ProgressBar(5, 0, 4), "[----]   ?%");
  EXPECT_EQ(ProgressBar(1LL << 40, 1LL << 41, 4), "[##--]  50%");  // no overflow
}

TEST(FormatFixed, Rounds) {
  EXPECT_EQ(FormatFixed(6.125, 2), "6.13");
  EXPECT_EQ(FormatFixed(0, 2), "0.00");
  EXPECT_EQ(FormatFixed(-0.001, 2), "0.00");
  EXPECT_EQ(FormatFixed(130.5, 1), "130.5");
}

TEST(Table, AlignsLikeKubectl) {
  Table t({"NAME", "STATE", "LUNS"});
  t.AddRow({"dev-a", "Online", "3"});
  t.AddRow({"device-long", "", "12"});
  EXPECT_EQ(t.Render(),
            "NAME          STATE    LUNS\n"
            "dev-a         Online   3\n"
            "device-long   <none>   12\n");
}

TEST(ToYaml, BlockStyleWithSafeScalars) {
  Json v = {{"apiVersion", "strata.io/v1alpha1"},
            {"metadata", {{"name", "w"}, {"labels", Json::object()}}},
            {"spec",
             {{"restore", true},
              {"duration", "24h"},
              {"count", 3},
              {"quoted", {"true", "123", "", "a: b", "-x", "1e3", "2026-12-06T06:57:31Z"}},
              {"items", {{{"lun", "l1"}, {"bytes", 10}}, {{"lun", "l2"}}}}}}};
  EXPECT_EQ(ToYaml(v),
            "apiVersion: strata.io/v1alpha1\n"
            "metadata:\n"
            "  labels: {}\n"
            "  name: w\n"
            "spec:\n"
            "  count: 3\n"
            "  duration: 24h\n"
            "  items:\n"
            "  - bytes: 10\n"
            "    lun: l1\n"
            "  - lun: l2\n"
            "  quoted:\n"
            "  - \"true\"\n"
            "  - \"123\"\n"
            "  - \"\"\n"
            "  - \"a: b\"\n"
            "  - \"-x\"\n"
            "  - \"1e3\"\n"
            "  - \"2026-12-06T06:57:31Z\"\n"
            "  restore: true\n");
}

}  // namespace
}  // namespace strata::kubectl
