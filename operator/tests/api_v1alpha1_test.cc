// Typed strata.io/v1alpha1 objects: every sample in examples/ parses and round-trips with the
// CRDs' defaults applied; every invalid sample is rejected naming the field its expect-error line
// names; malformed JSON at every nesting level is an error naming the path, never an exception.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>

#include "strata/kube/yaml.h"
#include "strata/operator/api/v1alpha1/bandwidth_policy.h"
#include "strata/operator/api/v1alpha1/dedup_policy.h"
#include "strata/operator/api/v1alpha1/maintenance_window.h"
#include "strata/operator/api/v1alpha1/node_network_policy.h"
#include "strata/operator/api/v1alpha1/storage_device.h"
#include "strata/operator/api/v1alpha1/tiering_policy.h"
#include "strata/operator/api/v1alpha1/usage_report.h"
#include "strata/operator/api/v1alpha1/virtual_network_config.h"

namespace strata::op::api::v1alpha1 {
namespace {

using kube::Json;
namespace fs = std::filesystem;

const fs::path kExamples = STRATA_EXAMPLES_DIR;

// FromJson then ToJson, for the kind named in the object.
using RoundTrip = std::function<Result<Json>(const Json&)>;
template <typename T>
RoundTrip Via(Result<T> (*from_json)(const Json&)) {
  return [from_json](const Json& j) -> Result<Json> {
    auto parsed = from_json(j);
    if (!parsed.ok()) return parsed.status();
    return ToJson(*parsed);
  };
}
const std::map<std::string, RoundTrip>& Kinds() {
  static const auto* kinds = new std::map<std::string, RoundTrip>{
      {"StorageDevice", Via(&StorageDeviceFromJson)},
      {"TieringPolicy", Via(&TieringPolicyFromJson)},
      {"DedupPolicy", Via(&DedupPolicyFromJson)},
      {"MaintenanceWindow", Via(&MaintenanceWindowFromJson)},
      {"BandwidthPolicy", Via(&BandwidthPolicyFromJson)},
      {"VirtualNetworkConfig", Via(&VirtualNetworkConfigFromJson)},
      {"UsageReport", Via(&UsageReportFromJson)},
      {"NodeNetworkPolicy", Via(&NodeNetworkPolicyFromJson)},
  };
  return *kinds;
}
Result<Json> Parse(const Json& object) {
  auto it = Kinds().find(object.value("kind", ""));
  if (it == Kinds().end()) return InvalidArgumentError("no such kind");
  return it->second(object);
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
Json ReadYaml(const fs::path& path) {
  auto j = kube::YamlToJson(ReadText(path));
  EXPECT_TRUE(j.ok()) << path << ": " << j.status().ToString();
  return j.ok() ? *j : Json();
}
std::vector<fs::path> Yamls(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// What the apiserver adds to each valid sample: the CRDs' defaults for its absent fields
// (JSON pointer -> value), written out by hand from the schemas.
const std::map<std::string, std::vector<std::pair<std::string, Json>>>& Defaults() {
  static const auto* defaults =
      new std::map<std::string, std::vector<std::pair<std::string, Json>>>{
          {"policies/storagedevice.yaml", {{"/spec/desiredState", "Online"}}},
          {"policies/tieringpolicy.yaml",
           {{"/spec/scope", "IntraDevice"},
            {"/spec/cooldown", "1h"},
            {"/spec/maxConcurrentMigrations", 2},
            {"/spec/paused", false},
            {"/spec/rules/1/sustainedFor", "10m"}}},
          {"policies/deduppolicy.yaml",
           {{"/spec/mode", "Inline"},
            {"/spec/maxIndexMemoryBytes", 0},
            {"/spec/crossOwnerSharing", false}}},
          {"policies/maintenancewindow.yaml",
           {{"/spec/drain/policy", "MigrateVolumes"},
            {"/spec/drain/maxConcurrentMigrations", 2},
            {"/spec/restore", true},
            {"/spec/finish", false},
            {"/spec/abort", false},
            {"/spec/suspend", false}}},
          {"policies/maintenancewindow-monthly.yaml",
           {{"/spec/drain/policy", "MigrateVolumes"},
            {"/spec/drain/maxConcurrentMigrations", 2},
            {"/spec/restore", true},
            {"/spec/finish", false},
            {"/spec/abort", false},
            {"/spec/suspend", false}}},
          {"policies/bandwidthpolicy.yaml",
           {{"/spec/priority", 0},
            {"/spec/elastic/scaleUpUtilizationPercent", 80},
            {"/spec/elastic/scaleDownUtilizationPercent", 30},
            {"/spec/elastic/stepPercent", 25},
            {"/spec/elastic/sustainedFor", "5m"},
            {"/spec/elastic/cooldown", "10m"},
            {"/spec/elastic/sampleInterval", "1s"}}},
          {"policies/virtualnetworkconfig.yaml",
           {{"/spec/interfaces/0/bond/members", 2},
            {"/spec/interfaces/0/bond/miimonMilliseconds", 100}}},
          {"policies/usagereport.yaml", {}},
          {"policies/nodenetworkpolicy.yaml",
           {{"/spec/bond/primaryReselect", "always"},
            {"/spec/bond/updelayMilliseconds", 0},
            {"/spec/bond/downdelayMilliseconds", 0},
            {"/spec/bridge/vlanFiltering", false},
            {"/spec/bridge/stp", false}}},
          {"kubevirt/bandwidthpolicy.yaml",
           {{"/spec/elastic/stepPercent", 25}, {"/spec/elastic/sampleInterval", "1s"}}},
          {"kubevirt/deduppolicy.yaml", {{"/spec/maxIndexMemoryBytes", 0}}},
          {"kubevirt/tieringpolicy.yaml",
           {{"/spec/paused", false}, {"/spec/rules/1/sustainedFor", "10m"}}},
          {"kubevirt/virtualnetworkconfig.yaml", {}},
      };
  return *defaults;
}

void ExpectRoundTrip(const std::string& dir, bool only_strata) {
  int checked = 0;
  for (const fs::path& path : Yamls(kExamples / dir)) {
    const Json object = ReadYaml(path);
    if (only_strata && object.value("apiVersion", "") != kApiVersion) continue;
    const std::string name = dir + "/" + path.filename().string();
    SCOPED_TRACE(name);
    auto defaults = Defaults().find(name);
    ASSERT_NE(defaults, Defaults().end()) << "list the CRD defaults this sample gets in Defaults()";
    Json expected = object;
    for (const auto& [pointer, value] : defaults->second) {
      ASSERT_FALSE(expected.contains(Json::json_pointer(pointer))) << pointer << " is set";
      expected[Json::json_pointer(pointer)] = value;
    }
    auto round_trip = Parse(object);
    ASSERT_TRUE(round_trip.ok()) << round_trip.status().ToString();
    EXPECT_EQ(*round_trip, expected) << "diff: " << Json::diff(expected, *round_trip).dump();
    // And again: the output is a fixed point.
    auto again = Parse(*round_trip);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(*again, *round_trip);
    checked++;
  }
  EXPECT_GT(checked, 0);
}

TEST(ApiV1alpha1Test, PolicySamplesRoundTripWithDefaults) { ExpectRoundTrip("policies", false); }

TEST(ApiV1alpha1Test, KubevirtStrataSamplesRoundTripWithDefaults) {
  ExpectRoundTrip("kubevirt", true);
}

// Each invalid sample states the apiserver's error as `# expect-error: FIELD: ...`, FIELD a
// regex over the field path (read as ECMAScript: libstdc++'s POSIX mode rejects `\]`); ours must
// start with a path it matches. No sample breaks a rule we chose not to check, so there is no list
// of exceptions.
TEST(ApiV1alpha1Test, InvalidSamplesAreRejectedNamingTheField) {
  const std::regex expect_line("^# expect-error: (.*?): ");
  int checked = 0;
  for (const fs::path& path : Yamls(kExamples / "policies" / "invalid")) {
    SCOPED_TRACE(path.filename().string());
    std::istringstream lines(ReadText(path));
    std::string line, field;
    std::smatch m;
    while (field.empty() && std::getline(lines, line)) {
      if (std::regex_search(line, m, expect_line)) field = m[1];
    }
    ASSERT_FALSE(field.empty()) << "no expect-error line";
    auto result = Parse(ReadYaml(path));
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(std::regex_search(result.status().message(), std::regex("^" + field + ": ")))
        << "expected field " << field << ", got: " << result.status().message();
    checked++;
  }
  EXPECT_GE(checked, 18) << "every sample in policies/invalid is checked";
}

// A malformed variant of a valid sample: set (or with a null value, remove) one JSON pointer.
struct Malformed {
  std::string sample;   // examples/policies/<sample>.yaml
  std::string pointer;  // "" is the whole object
  Json value;           // null: remove the field
  std::string message;  // the error starts with this (the path and usually the reason)
};

void PrintTo(const Malformed& m, std::ostream* os) {
  *os << m.sample << " " << m.pointer << " = " << m.value.dump();
}

class MalformedTest : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedTest, IsAnErrorNamingThePath) {
  const Malformed& c = GetParam();
  Json object = ReadYaml(kExamples / "policies" / (c.sample + ".yaml"));
  if (c.pointer.empty()) {
    object = c.value;
  } else if (c.value.is_null()) {
    const Json::json_pointer p(c.pointer);
    object[p.parent_pointer()].erase(p.back());
  } else {
    object[Json::json_pointer(c.pointer)] = c.value;
  }
  // Parse dispatches on kind; a sample whose kind was replaced goes to its own kind's parser.
  const std::string kind = ReadYaml(kExamples / "policies" / (c.sample + ".yaml"))["kind"];
  auto result = Kinds().at(kind)(object);
  ASSERT_FALSE(result.ok()) << "accepted: " << object.dump();
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message().substr(0, c.message.size()), c.message)
      << result.status().message();
}

// Every kind: the envelope.
std::vector<Malformed> EnvelopeCases() {
  std::vector<Malformed> out;
  for (const char* sample : {"storagedevice", "tieringpolicy", "deduppolicy", "maintenancewindow",
                             "bandwidthpolicy", "virtualnetworkconfig"}) {
    const std::vector<Malformed> cases = {
        {sample, "", Json::array(), ""},  // the message names the kind
        {sample, "/kind", "Other", "kind: \"Other\" is not one of "},
        {sample, "/apiVersion", "strata.io/v1", "apiVersion: \"strata.io/v1\" is not one of "},
        {sample, "/metadata", "x", "metadata: must be an object, not string \"x\""},
        {sample, "/metadata", nullptr, "metadata: required"},
        {sample, "/metadata/labels", Json{{"a", 1}}, "metadata.labels.a: must be a string"},
        {sample, "/metadata/generation", "3", "metadata.generation: must be an integer"},
        {sample, "/spec", nullptr, "spec: required"},
        {sample, "/spec", Json::array(), "spec: must be an object, not array"},
        {sample, "/status", Json{{"phase", 5}}, "status.phase: must be a string, not integer 5"},
        {sample, "/status", Json{{"phase", "Bogus"}}, "status.phase: \"Bogus\" is not one of "},
        {sample, "/status", Json{{"conditions", {{{"type", "Ready"}}}}},
         "status.conditions[0].status: required"},
        {sample, "/status", Json{{"conditions", {{{"type", "Ready"}, {"status", "Maybe"}}}}},
         "status.conditions[0].status: \"Maybe\" is not one of True, False, Unknown"},
        {sample, "/status", Json{{"observedGeneration", -1}},
         "status.observedGeneration: -1 is less than the minimum 0"},
    };
    out.insert(out.end(), cases.begin(), cases.end());
  }
  return out;
}
INSTANTIATE_TEST_SUITE_P(Envelope, MalformedTest, ::testing::ValuesIn(EnvelopeCases()));

INSTANTIATE_TEST_SUITE_P(
    Kinds, MalformedTest,
    ::testing::Values(
        Malformed{"storagedevice", "/spec/endpoint", 7, "spec.endpoint: must be a string"},
        Malformed{"storagedevice", "/spec/tiers", nullptr, "spec.tiers: required"},
        Malformed{"storagedevice", "/spec/tiers", Json::object(), "spec.tiers: must be an array"},
        Malformed{"storagedevice", "/spec/tiers", Json::array(),
                  "spec.tiers: has 0 items, fewer than 1"},
        Malformed{"storagedevice", "/spec/tiers/0", "ssd", "spec.tiers[0]: must be an object"},
        Malformed{"storagedevice", "/spec/tiers/1/capacityBytes", "1Ti",
                  "spec.tiers[1].capacityBytes: must be an integer, not string \"1Ti\""},
        Malformed{"storagedevice", "/spec/tiers/0/capacityBytes", 1.5,
                  "spec.tiers[0].capacityBytes: must be an integer, not number 1.5"},
        Malformed{"storagedevice", "/spec/tiers/0/class", nullptr, "spec.tiers[0].class: required"},
        Malformed{"storagedevice", "/spec/tiers/0/pricePerGiBHour", -1,
                  "spec.tiers[0].pricePerGiBHour: -1 is less than the minimum 0"},
        Malformed{"storagedevice", "/spec/desiredState", "Offline",
                  "spec.desiredState: \"Offline\" is not one of Online, Maintenance"},
        Malformed{"storagedevice", "/spec/region", "eu west", "spec.region: \"eu west\" does not"},
        Malformed{"storagedevice", "/status/tiers", Json::array({{{"class", "ssd"}}, "x"}),
                  "status.tiers[1]: must be an object"},
        Malformed{"tieringpolicy", "/spec/rules/0/comparison", "bigger",
                  "spec.rules[0].comparison: \"bigger\" is not one of Above, Below"},
        Malformed{"tieringpolicy", "/spec/rules/0/targetTier", nullptr,
                  "spec.rules[0].targetTier: required"},
        Malformed{"tieringpolicy", "/spec/rules/1/name", "promote-hot",
                  "spec.rules[1]: duplicate name \"promote-hot\""},
        Malformed{"tieringpolicy", "/spec/rules/1/threshold", -5,
                  "spec.rules[1].threshold: -5 is less than the minimum 0"},
        Malformed{"tieringpolicy", "/spec/selector/matchLabels", Json::array(),
                  "spec.selector.matchLabels: must be an object"},
        Malformed{"tieringpolicy", "/spec/selector/matchExpressions",
                  Json::array({{{"key", "a"}, {"operator", "Like"}}}),
                  "spec.selector.matchExpressions[0].operator: \"Like\" is not one of"},
        Malformed{"tieringpolicy", "/spec/maxConcurrentMigrations", 65,
                  "spec.maxConcurrentMigrations: 65 is greater than the maximum 64"},
        Malformed{"tieringpolicy", "/spec/allowedRegions", Json::array({"eu", "eu"}),
                  "spec.allowedRegions[1]: duplicate value \"eu\""},
        Malformed{"tieringpolicy", "/spec/paused", "yes", "spec.paused: must be a boolean"},
        Malformed{"tieringpolicy", "/spec/cooldown", "1d",
                  "spec.cooldown: \"1d\" is not a duration"},
        Malformed{
            "tieringpolicy", "/status/volumes", Json::array({{{"pvc", "a"}, {"state", "Hot"}}}),
            "status.volumes[0].state: \"Hot\" is not one of Idle, Sustaining, Moving, Cooldown"},
        Malformed{"tieringpolicy", "/status/volumes", Json::array({{{"pvc", "a"}}, {{"pvc", "a"}}}),
                  "status.volumes[1]: duplicate pvc \"a\""},
        Malformed{"tieringpolicy", "/status/volumes", Json::array({{{"readIOPS", 1}}}),
                  "status.volumes[0].pvc: required"},
        Malformed{"tieringpolicy", "/status/history", Json::array({{{"time", "yesterday"}}}),
                  "status.history[0].time: \"yesterday\" is not"},
        Malformed{"tieringpolicy", "/status/history", Json(std::vector<Json>(21, Json::object())),
                  "status.history: has 21 items, more than 20"},
        Malformed{"tieringpolicy", "/status/lastMigration/toTier", "nvme",
                  "status.lastMigration.toTier: \"nvme\" is not one of"},
        Malformed{"tieringpolicy", "/status/refusedDevices", "us-c",
                  "status.refusedDevices: must be an array"},
        Malformed{"deduppolicy", "/spec/selector", nullptr, "spec.selector: required"},
        Malformed{"deduppolicy", "/spec/minSavingsRatio", "1.3",
                  "spec.minSavingsRatio: must be a number"},
        Malformed{"deduppolicy", "/spec/minSavingsRatio", 101,
                  "spec.minSavingsRatio: 101 is greater than the maximum 100"},
        Malformed{"deduppolicy", "/spec/tiers/0", "nvme", "spec.tiers[0]: \"nvme\" is not one of"},
        Malformed{"deduppolicy", "/spec/evaluationWindow", "2 days",
                  "spec.evaluationWindow: \"2 days\" is not a duration"},
        Malformed{"maintenancewindow", "/spec/schedule", "weekly",
                  "spec.schedule: must be an object"},
        Malformed{"maintenancewindow", "/spec/schedule/duration", nullptr,
                  "spec.schedule.duration: required"},
        Malformed{"maintenancewindow", "/spec/schedule/recurrence", "Yearly",
                  "spec.schedule.recurrence: \"Yearly\" is not one of Daily, Weekly, Monthly"},
        Malformed{"maintenancewindow", "/spec/drain/leadTime", 3,
                  "spec.drain.leadTime: must be a string"},
        Malformed{"maintenancewindow", "/spec/drain/targetDeviceSelector/matchLabels/pool", 1,
                  "spec.drain.targetDeviceSelector.matchLabels.pool: must be a string"},
        Malformed{"bandwidthpolicy", "/spec/ingress/rateBitsPerSecond", 500000000000,
                  "spec.ingress.rateBitsPerSecond: 500000000000 is greater than the maximum"},
        Malformed{"bandwidthpolicy", "/spec/ingress/rateBitsPerSecond", UINT64_MAX,
                  "spec.ingress.rateBitsPerSecond: must be an integer"},
        Malformed{"bandwidthpolicy", "/spec/elastic/minRateBitsPerSecond", nullptr,
                  "spec.elastic.minRateBitsPerSecond: required"},
        Malformed{"bandwidthpolicy", "/spec/egress/burstBytes", true,
                  "spec.egress.burstBytes: must be an integer, not boolean true"},
        Malformed{"bandwidthpolicy", "/spec/priority", 8,
                  "spec.priority: 8 is greater than the maximum 7"},
        Malformed{"bandwidthpolicy", "/spec/interfaces",
                  Json::array({"eth0", "far-too-long-name0"}),
                  "spec.interfaces[1]: \"far-too-long-name0\" does not match"},
        Malformed{"virtualnetworkconfig", "/spec/workload/kind", "Deployment",
                  "spec.workload.kind: \"Deployment\" is not one of Pod, VirtualMachine"},
        Malformed{"virtualnetworkconfig", "/spec/interfaces/0/mtu", 100,
                  "spec.interfaces[0].mtu: 100 is less than the minimum 576"},
        Malformed{"virtualnetworkconfig", "/spec/interfaces/0/addresses/1", 5,
                  "spec.interfaces[0].addresses[1]: must be a string"},
        Malformed{"virtualnetworkconfig", "/spec/interfaces/0/bond/members", 1,
                  "spec.interfaces[0].bond.members: 1 is less than the minimum 2"},
        Malformed{"virtualnetworkconfig", "/spec/routes/0", Json{{"gateway", "10.0.0.1"}},
                  "spec.routes[0].destination: required"},
        Malformed{"virtualnetworkconfig", "/spec/dns/nameservers", "10.0.0.53",
                  "spec.dns.nameservers: must be an array"}));

TEST(ApiV1alpha1Test, NotAnObjectNamesTheKind) {
  auto r = StorageDeviceFromJson(Json::array());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "StorageDevice: must be an object, not array");
}

TEST(ApiV1alpha1Test, TypedFieldsAndDefaults) {
  auto d = StorageDeviceFromJson(ReadYaml(kExamples / "policies" / "storagedevice.yaml"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->metadata.name, "sdev-sample");
  EXPECT_EQ(d->spec.endpoint, "sd-01.storage.example.net:10809");
  ASSERT_EQ(d->spec.tiers.size(), 2u);
  EXPECT_EQ(d->spec.tiers[1].class_, "sata");
  EXPECT_EQ(d->spec.tiers[1].capacity_bytes, 16000900661248);
  EXPECT_EQ(d->spec.tiers[0].price_per_gib_hour, 0.00012);
  EXPECT_EQ(d->spec.region, "eu-west-1");
  EXPECT_EQ(d->spec.desired_state, "Online");
  EXPECT_FALSE(d->metadata.deletion_timestamp.has_value());

  auto mw = MaintenanceWindowFromJson(ReadYaml(kExamples / "policies" / "maintenancewindow.yaml"));
  ASSERT_TRUE(mw.ok()) << mw.status().ToString();
  EXPECT_EQ(mw->spec.drain.lead_time, "3h");
  EXPECT_EQ(mw->spec.drain.policy, "MigrateVolumes");
  EXPECT_EQ(mw->spec.drain.target_device_selector->match_labels.at("pool"), "general");
}

// The status the TieringPolicy reconciler writes: volumes, history, lastMigration, refusedDevices.
TEST(ApiV1alpha1Test, TieringPolicyStatusRoundTrips) {
  Json object = ReadYaml(kExamples / "policies" / "tieringpolicy.yaml");
  const Json move = {{"volume", "data"},
                     {"fromDevice", "eu-a"},
                     {"fromTier", "sata"},
                     {"toDevice", "eu-b"},
                     {"toTier", "ssd"},
                     {"rule", "promote-hot"},
                     {"reason", "ReadIOPS 812 Above 500 for 15m"},
                     {"time", "2026-01-02T03:04:05Z"}};
  object["status"] = {
      {"phase", "Active"},
      {"matchedVolumes", 1},
      {"migrationsInProgress", 1},
      {"lastEvaluationTime", "2026-01-02T03:04:06Z"},
      {"lastMigration", move},
      {"history", Json::array({move})},
      {"volumes", Json::array({{{"pvc", "data"},
                                {"device", "eu-a"},
                                {"lun", "pvc-1"},
                                {"tier", "sata"},
                                {"readIOPS", 812},
                                {"writeIOPS", 3},
                                {"totalIOPS", 815},
                                {"throughputBytesPerSecond", 3338240},
                                {"idleSeconds", 0},
                                {"lastMove", "2026-01-02T03:04:05Z"},
                                {"state", "Moving"}}})},
      {"refusedDevices", Json::array({"us-c (region 'us-east-1', jurisdiction 'US'): ..."})}};
  auto p = TieringPolicyFromJson(object);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->status.volumes.size(), 1u);
  EXPECT_EQ(p->status.volumes[0].read_iops, 812);
  EXPECT_EQ(p->status.volumes[0].idle_seconds, 0) << "0 is a value, not absent";
  EXPECT_EQ(p->status.volumes[0].state, "Moving");
  ASSERT_EQ(p->status.history.size(), 1u);
  EXPECT_EQ(p->status.history[0].to_device, "eu-b");
  EXPECT_EQ(p->status.last_migration->reason, "ReadIOPS 812 Above 500 for 15m");
  EXPECT_EQ(p->status.refused_devices.size(), 1u);
  EXPECT_EQ(ToJson(*p)["status"], object["status"]);
}

TEST(ApiV1alpha1Test, ParseDuration) {
  using namespace std::chrono_literals;
  EXPECT_EQ(*ParseDuration("1h30m"), 90min);
  EXPECT_EQ(*ParseDuration("1.5s"), 1500ms);
  EXPECT_EQ(*ParseDuration("250ms"), 250ms);
  EXPECT_EQ(*ParseDuration("10m"), 600s);
  for (const char* bad : {"", "10", "1d", "h", "1.h", "15 minutes", "-1s", "1e3s"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace strata::op::api::v1alpha1

namespace strata::op::api::v1alpha1 {
namespace {

TEST(ApiV1alpha1Test, DedupPolicyStatusRoundTrips) {
  Json j = ReadYaml(kExamples / "policies" / "deduppolicy.yaml");
  j["status"] = {
      {"phase", "Active"},
      {"matchedVolumes", 1},
      {"logicalBytes", 300},
      {"uniqueBytes", 100},
      {"savedBytes", 200},
      {"dedupRatio", 3.0},
      {"volumes",
       {{{"pvc", "data"},
         {"device", "dev-a"},
         {"lun", "pvc-1"},
         {"tier", "sata"},
         {"dedup", false},
         {"logicalBytes", 300},
         {"uniqueBytes", 100},
         {"ratio", 3.0},
         {"state", "BelowMinSavings"},
         {"message", "below"},
         {"turnedOffAt", "2026-01-01T00:00:00Z"},
         {"turnedOffGeneration", 2}}}},
      {"devices",
       {{{"name", "dev-a"},
         {"volumes", 1},
         {"logicalBytes", 300},
         {"uniqueBytes", 100},
         {"dedupRatio", 3.0},
         {"dedupEnabled", true}}}},
  };
  auto p = DedupPolicyFromJson(j);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->status.volumes.size(), 1u);
  EXPECT_EQ(p->status.volumes[0].turned_off_generation, 2);
  EXPECT_EQ(ToJson(*p)["status"], j["status"]);

  Json dup = j;
  dup["status"]["volumes"].push_back(j["status"]["volumes"][0]);
  auto bad = DedupPolicyFromJson(dup);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("status.volumes[1]: duplicate pvc"), std::string::npos)
      << bad.status().message();
  Json state = j;
  state["status"]["volumes"][0]["state"] = "Sleeping";
  bad = DedupPolicyFromJson(state);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("status.volumes[0].state"), std::string::npos);
}

TEST(ApiV1alpha1Test, UsageReportStatusRoundTrips) {
  Json j = ReadYaml(kExamples / "policies" / "usagereport.yaml");
  const Json io = {{"readOps", 1}, {"writeOps", 2}, {"readBytes", 4096}, {"writeBytes", 8192}};
  j["status"] = {
      {"windowStart", "2026-01-01T00:00:00.000000Z"},
      {"lastUpdate", "2026-01-01T01:00:00.500000Z"},
      {"volumeCount", 1},
      {"gibHours", 2.5},
      {"totalCost", 0.25},
      {"logicalBytes", 10},
      {"uniqueBytes", 5},
      {"exclusiveBytes", 3},
      {"sharedBytes", 7},
      {"snapshotBytes", 2},
      {"io", io},
      {"tiers", {{{"tier", "ssd"}, {"gibHours", 2.5}, {"cost", 0.25}}}},
      {"usage", {{{"device", "dev-a"}, {"tier", "ssd"}, {"gibHours", 2.5}, {"cost", 0.25}}}},
      {"volumes",
       {{{"pvc", "data"},
         {"device", "dev-a"},
         {"lun", "pvc-1"},
         {"tier", "ssd"},
         {"sizeBytes", 1073741824},
         {"pricePerGibHour", 0.1},
         {"firstSeen", "2026-01-01T00:00:00.000000Z"},
         {"gibHours", 2.5},
         {"cost", 0.25},
         {"logicalBytes", 10},
         {"uniqueBytes", 5},
         {"exclusiveBytes", 3},
         {"sharedBytes", 7},
         {"snapshotBytes", 2},
         {"io", io},
         {"counters", io}}}},
  };
  auto r = UsageReportFromJson(j);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status.volumes[0].counters.write_bytes, 8192);
  EXPECT_EQ(ToJson(*r)["status"], j["status"]);
  EXPECT_EQ(UsageReports().Path("ns", "usage"),
            "/apis/strata.io/v1alpha1/namespaces/ns/usagereports/usage");

  Json bad = j;
  bad["status"]["usage"][0]["tier"] = "tape";
  auto e = UsageReportFromJson(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("status.usage[0].tier"), std::string::npos);
  bad = j;
  bad["status"]["gibHours"] = -1;
  e = UsageReportFromJson(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("status.gibHours"), std::string::npos);
}

TEST(ApiV1alpha1Test, NodeNetworkPolicyUplinksAndStatus) {
  Json j = ReadYaml(kExamples / "policies" / "nodenetworkpolicy.yaml");
  j["status"] = {{"nodes",
                  {{{"nodeName", "node-a"},
                    {"observedGeneration", 3},
                    {"bondPresent", true},
                    {"bridgePresent", true},
                    {"activeSlave", "eth1"},
                    {"failovers", 2},
                    {"lastFailoverTime", "2026-01-01T00:00:00Z"},
                    {"uplinks",
                     {{{"name", "eth1"}, {"linkState", "up"}, {"macAddress", "02:00:00:00:00:01"}},
                      {{"name", "eth2"}, {"linkState", "down"}}}},
                    {"conditions",
                     {{{"type", "Ready"},
                       {"status", "True"},
                       {"reason", "Applied"},
                       {"observedGeneration", 3}}}}}}}};
  auto p = NodeNetworkPolicyFromJson(j);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->spec.bond.uplinks[1].name, "eth2");
  EXPECT_EQ(p->spec.bond.primary_reselect, "always");
  EXPECT_EQ(p->status.nodes[0].active_slave, "eth1");
  EXPECT_EQ(ToJson(*p)["status"], j["status"]);
  EXPECT_EQ(kube::resources::NodeNetworkPolicies().Path("", "nnp"),
            "/apis/strata.io/v1alpha1/nodenetworkpolicies/nnp");

  const auto error_of = [](const Json& object) {
    auto r = NodeNetworkPolicyFromJson(object);
    return r.ok() ? std::string("accepted") : r.status().message();
  };
  Json bad = j;
  bad["spec"]["bond"]["uplinks"][0] = {{"match", {{"driver", "ixgbe"}}}};
  EXPECT_TRUE(NodeNetworkPolicyFromJson(bad).ok()) << "a match alone is an uplink";
  bad["spec"]["bond"]["uplinks"][0] = Json::object();
  EXPECT_EQ(error_of(bad), "spec.bond.uplinks[0]: exactly one of name and match is required");
  bad["spec"]["bond"]["uplinks"][0] = {{"match", Json::object()}};
  EXPECT_EQ(error_of(bad),
            "spec.bond.uplinks[0].match: needs at least one of macAddress, driver, pciAddress");
  bad = j;
  bad["spec"]["bond"]["mode"] = "round-robin";
  EXPECT_EQ(error_of(bad).rfind("spec.bond.mode: \"round-robin\" is not one of active-backup", 0),
            0u)
      << error_of(bad);
  bad = j;
  bad["spec"]["bond"]["uplinks"] = Json::array();
  EXPECT_EQ(error_of(bad), "spec.bond.uplinks: has 0 items, fewer than 1");
  bad = j;
  bad["spec"]["bridge"]["name"] = "a-name-longer-than-ifnamsiz";
  EXPECT_EQ(error_of(bad).rfind("spec.bridge.name: ", 0), 0u) << error_of(bad);
  bad = j;
  bad["status"]["nodes"].push_back(j["status"]["nodes"][0]);
  EXPECT_EQ(error_of(bad).rfind("status.nodes[1]: duplicate nodeName", 0), 0u) << error_of(bad);
  bad = j;
  bad["status"]["nodes"][0]["uplinks"][1]["linkState"] = "flapping";
  EXPECT_EQ(error_of(bad).rfind("status.nodes[0].uplinks[1].linkState: ", 0), 0u) << error_of(bad);
}

}  // namespace
}  // namespace strata::op::api::v1alpha1
