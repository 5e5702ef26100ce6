#include "engine/journal.h"

#include <gtest/gtest.h>

namespace strata::storage::engine {
namespace {

TEST(JournalTest, RoundTripAllRecordKinds) {
  RecordEncoder e;
  LunRecord l;
  l.id = 7;
  l.name = "vol-a";
  l.wwn = "naa.3123456789abcdef";
  l.size_bytes = 1 << 30;
  l.tier = 1;
  l.write_tier = 2;
  l.dedup = true;
  l.owner = "team-a";
  l.allowed_clients = {"10.0.0.0/24", "*"};
  l.created_unix = 1700000000;
  e.Lun(l);
  LunRecord plain = l;  // without metadata: as older versions wrote it
  l.metadata = {{"csi.storage.k8s.io/pvc/name", "data"}, {"empty", ""}};
  e.Lun(l);
  e.Map({7, 99, MakeRef(1, 12345), true});
  e.DeleteLun(7);
  std::vector<LunRecord> luns;
  std::vector<MapRecord> maps;
  std::vector<uint64_t> deletes;
  ReplayHandlers h{[&](const LunRecord& r) { luns.push_back(r); },
                   [&](uint64_t id) { deletes.push_back(id); },
                   [&](const MapRecord& m) { maps.push_back(m); }};
  ReplayResult rr;
  ASSERT_TRUE(Replay(e.buffer(), h, &rr).ok());
  EXPECT_EQ(rr.records, 4u);
  EXPECT_EQ(rr.valid_bytes, e.buffer().size());
  ASSERT_EQ(luns.size(), 2u);
  EXPECT_TRUE(luns[0].metadata.empty());
  EXPECT_EQ(luns[1].metadata, l.metadata);
  EXPECT_EQ(luns[1].moved_to, plain.moved_to);
  EXPECT_EQ(luns[0].name, "vol-a");
  EXPECT_EQ(luns[0].allowed_clients, l.allowed_clients);
  EXPECT_EQ(luns[0].write_tier, 2u);
  EXPECT_TRUE(luns[0].dedup);
  ASSERT_EQ(maps.size(), 1u);
  EXPECT_EQ(RefTier(maps[0].ref), 1u);
  EXPECT_EQ(RefSlot(maps[0].ref), 12345u);
  EXPECT_TRUE(maps[0].indexed);
  EXPECT_EQ(deletes, std::vector<uint64_t>{7});
}

TEST(JournalTest, TornTailStopsReplayAtEveryCut) {
  RecordEncoder e;
  for (uint64_t i = 0; i < 5; ++i) e.Map({1, i, MakeRef(0, i + 1), false});
  const std::string full = e.buffer();
  const size_t frame = full.size() / 5;
  for (size_t cut = 0; cut <= full.size(); ++cut) {
    size_t n = 0;
    ReplayResult rr;
    ASSERT_TRUE(Replay(std::string_view(full).substr(0, cut),
                       ReplayHandlers{nullptr, nullptr, [&](const MapRecord&) { ++n; }}, &rr)
                    .ok());
    EXPECT_EQ(n, cut / frame) << cut;
    EXPECT_EQ(rr.valid_bytes, (cut / frame) * frame);
  }
}

TEST(JournalTest, FlippedBitEndsReplayThere) {
  RecordEncoder e;
  for (uint64_t i = 0; i < 3; ++i) e.Map({1, i, MakeRef(0, i + 1), false});
  std::string data = e.buffer();
  data[data.size() / 3 + 12] ^= 0x10;  // inside the second record's payload
  size_t n = 0;
  ASSERT_TRUE(
      Replay(data, ReplayHandlers{nullptr, nullptr, [&](const MapRecord&) { ++n; }}, nullptr).ok());
  EXPECT_EQ(n, 1u);
}

}  // namespace
}  // namespace strata::storage::engine
