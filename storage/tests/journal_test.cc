#include "engine/journal.h"

#include <gtest/gtest.h>
#include <xxhash.h>

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
  LunRecord ids = plain;  // identities without metadata: an empty metadata count first
  ids.allowed_identities = {"CN=alice", "URI:spiffe://x/bob"};
  e.Lun(ids);
  e.Map({7, 99, MakeRef(1, 12345), true});
  e.DeleteLun(7);
  std::vector<LunRecord> luns;
  std::vector<MapRecord> maps;
  std::vector<uint64_t> deletes;
  ReplayHandlers h{[&](const LunRecord& r) { luns.push_back(r); },
                   [&](uint64_t id) { deletes.push_back(id); },
                   [&](const MapRecord& m) { maps.push_back(m); }, nullptr, nullptr};
  ReplayResult rr;
  ASSERT_TRUE(Replay(e.buffer(), h, &rr).ok());
  EXPECT_EQ(rr.records, 5u);
  EXPECT_EQ(rr.valid_bytes, e.buffer().size());
  ASSERT_EQ(luns.size(), 3u);
  EXPECT_TRUE(luns[0].metadata.empty());
  EXPECT_TRUE(luns[0].allowed_identities.empty());
  EXPECT_TRUE(luns[1].allowed_identities.empty());
  EXPECT_TRUE(luns[2].metadata.empty());
  EXPECT_EQ(luns[2].allowed_identities, ids.allowed_identities);
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

TEST(JournalTest, LunPublicationsRoundTripWithAndWithoutMetadata) {
  RecordEncoder e;
  LunRecord l;
  l.id = 3;
  l.name = "vol-p";
  l.allowed_clients = {"10.0.0.1", "10.0.0.2"};
  e.Lun(l);  // neither: byte-identical to a record of a version without publications
  const size_t plain_bytes = e.buffer().size();
  l.publications = {{"node-1@10.0.0.1", {"10.0.0.1"}}, {"node-2@10.0.0.2", {"10.0.0.2"}}};
  e.Lun(l);  // publications, no metadata
  l.metadata = {{"k", "v"}};
  e.Lun(l);  // both
  std::vector<LunRecord> luns;
  ReplayHandlers h{[&](const LunRecord& r) { luns.push_back(r); }, nullptr, nullptr, nullptr,
                   nullptr};
  ASSERT_TRUE(Replay(e.buffer(), h, nullptr).ok());
  ASSERT_EQ(luns.size(), 3u);
  EXPECT_TRUE(luns[0].publications.empty());
  EXPECT_EQ(luns[1].publications, l.publications);
  EXPECT_TRUE(luns[1].metadata.empty());
  EXPECT_EQ(luns[2].publications, l.publications);
  EXPECT_EQ(luns[2].metadata, l.metadata);
  EXPECT_EQ(luns[2].allowed_clients, l.allowed_clients);

  // The plain record is what the version before publications wrote: 8 bytes of frame, the
  // type, and the fields up to moved_to, nothing after.
  LunRecord bare;
  bare.id = 3;
  bare.name = "vol-p";
  bare.allowed_clients = l.allowed_clients;
  RecordEncoder again;
  again.Lun(bare);
  EXPECT_EQ(again.buffer().size(), plain_bytes);
}

TEST(JournalTest, UnknownLunSectionsAreSkippedAndBadOnesRejected) {
  // A LUN record with a section of a tag this version does not know (a later version's
  // field): it replays, the section ignored.
  RecordEncoder e;
  LunRecord l;
  l.id = 4;
  l.name = "vol-u";
  l.publications = {{"n@10.0.0.9", {"10.0.0.9"}}};
  e.Lun(l);
  std::string buf = e.buffer();
  // Rewrite the frame: change the section tag (1) to 200.
  // Layout of the tail: ... | u8 tag | u32 len | section; find the tag before the section.
  std::string section;
  {
    // u32 count=1 | str node | u32 n=1 | str entry
    auto put32 = [&](uint32_t v) {
      for (int i = 0; i < 4; ++i) section.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    put32(1);
    put32(10);
    section += "n@10.0.0.9";
    put32(1);
    put32(8);
    section += "10.0.0.9";
  }
  const size_t tag_at = buf.size() - section.size() - 4 - 1;
  ASSERT_EQ(static_cast<uint8_t>(buf[tag_at]), 1);
  std::string unknown = buf.substr(8);
  unknown[tag_at - 8] = static_cast<char>(200);
  auto reframe = [](const std::string& payload) {
    std::string out;
    auto put32 = [&](uint32_t v) {
      for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    put32(static_cast<uint32_t>(payload.size()));
    put32(XXH32(payload.data(), payload.size(), 0));
    return out + payload;
  };
  std::vector<LunRecord> luns;
  ReplayHandlers h{[&](const LunRecord& r) { luns.push_back(r); }, nullptr, nullptr, nullptr,
                   nullptr};
  ASSERT_TRUE(Replay(reframe(unknown), h, nullptr).ok());
  ASSERT_EQ(luns.size(), 1u);
  EXPECT_TRUE(luns[0].publications.empty());
  EXPECT_EQ(luns[0].name, "vol-u");

  // A publications section cut short (a count larger than what follows): not parsed, and
  // reported (the checksum is valid, so it is not a torn tail).
  std::string bad = buf.substr(8);
  bad[tag_at - 8 + 1 + 4] = 2;  // node count 1 -> 2
  Status s = Replay(reframe(bad), h, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.message();
}

TEST(JournalTest, IncomingLunFlagRoundTripsAndLeavesOtherRecordsAsTheyWere) {
  RecordEncoder e;
  LunRecord l;
  l.id = 5;
  l.name = "vol-i";
  l.wwn = "naa.3000000000000abc";
  e.Lun(l);
  const size_t plain_bytes = e.buffer().size();
  l.incoming = true;
  e.Lun(l);  // alone: an empty metadata count, then tag 3 with one byte
  EXPECT_EQ(e.buffer().size() - plain_bytes, plain_bytes + 4 + 1 + 4 + 1);
  EXPECT_EQ(e.buffer().back(), 1);
  EXPECT_EQ(static_cast<uint8_t>(e.buffer()[e.buffer().size() - 6]), 3);
  l.metadata = {{"k", "v"}};
  l.allowed_identities = {"CN=a"};
  l.publications = {{"n@10.0.0.1", {"10.0.0.1"}}};
  e.Lun(l);  // with every other section
  l.incoming = false;
  e.Lun(l);  // accepted: the section is gone
  std::vector<LunRecord> luns;
  ReplayHandlers h{[&](const LunRecord& r) { luns.push_back(r); }, nullptr, nullptr, nullptr,
                   nullptr};
  ASSERT_TRUE(Replay(e.buffer(), h, nullptr).ok());
  ASSERT_EQ(luns.size(), 4u);
  EXPECT_FALSE(luns[0].incoming);
  EXPECT_TRUE(luns[1].incoming);
  EXPECT_TRUE(luns[1].metadata.empty());
  EXPECT_TRUE(luns[2].incoming);
  EXPECT_EQ(luns[2].metadata, l.metadata);
  EXPECT_EQ(luns[2].allowed_identities, l.allowed_identities);
  EXPECT_EQ(luns[2].publications, l.publications);
  EXPECT_FALSE(luns[3].incoming);
  EXPECT_EQ(luns[3].publications, l.publications);
}

TEST(JournalTest, TornTailStopsReplayAtEveryCut) {
  RecordEncoder e;
  for (uint64_t i = 0; i < 5; ++i) e.Map({1, i, MakeRef(0, i + 1), false});
  const std::string full = e.buffer();
  const size_t frame = full.size() / 5;
  for (size_t cut = 0; cut <= full.size(); ++cut) {
    size_t n = 0;
    ReplayResult rr;
    ASSERT_TRUE(
        Replay(std::string_view(full).substr(0, cut),
               ReplayHandlers{nullptr, nullptr, [&](const MapRecord&) { ++n; }, nullptr, nullptr},
               &rr)
            .ok());
    EXPECT_EQ(n, cut / frame) << cut;
    EXPECT_EQ(rr.valid_bytes, (cut / frame) * frame);
  }
}

TEST(JournalTest, MapRunReplaysAsItsMapRecordsInOrderAndTearsWhole) {
  RecordEncoder e;
  e.Map({1, 3, MakeRef(0, 9), false});  // a single-block record before, as older journals hold
  std::vector<MapRunEntry> run;
  for (uint32_t i = 0; i < 256; ++i) {
    if (i % 5 == 4) continue;  // blocks a section left alone are not in the run
    run.push_back({i, i % 7 == 0 ? kHole : MakeRef(i % 2, 1000 + i), i % 3 == 0});
  }
  e.MapRun(2, 1ull << 40, run.data(), run.size());
  e.Map({1, 3, MakeRef(1, 10), true});
  EXPECT_EQ(e.records(), run.size() + 2);  // a run's entries count one each
  const std::string full = e.buffer();
  std::vector<MapRecord> maps;
  ReplayHandlers h{nullptr, nullptr, [&](const MapRecord& m) { maps.push_back(m); }, nullptr,
                   nullptr};
  ReplayResult rr;
  ASSERT_TRUE(Replay(full, h, &rr).ok());
  EXPECT_EQ(rr.records, run.size() + 2);
  EXPECT_EQ(rr.valid_bytes, full.size());
  ASSERT_EQ(maps.size(), run.size() + 2);
  EXPECT_EQ(maps.front().lba, 3u);
  EXPECT_EQ(maps.back().ref, MakeRef(1, 10));
  for (size_t i = 0; i < run.size(); ++i) {
    const MapRecord& m = maps[i + 1];
    EXPECT_EQ(m.lun_id, 2u);
    EXPECT_EQ(m.lba, (1ull << 40) + run[i].offset);
    EXPECT_EQ(m.ref, run[i].ref);
    EXPECT_EQ(m.indexed, run[i].indexed);
  }
  // 13 bytes a block instead of a 34-byte frame each.
  EXPECT_EQ(full.size(), 2 * 34 + 8 + 21 + 13 * run.size());
  // A torn run delivers none of its entries: the record before it only.
  const size_t run_end = 34 + 8 + 21 + 13 * run.size();
  for (size_t cut = 34; cut < run_end; cut += 97) {
    size_t n = 0;
    ASSERT_TRUE(
        Replay(std::string_view(full).substr(0, cut),
               ReplayHandlers{nullptr, nullptr, [&](const MapRecord&) { ++n; }, nullptr, nullptr},
               &rr)
            .ok());
    EXPECT_EQ(n, 1u) << cut;
    EXPECT_EQ(rr.valid_bytes, 34u) << cut;
  }
}

// A run record whose checksum holds but whose body is malformed is corruption, and none of
// its entries reach the handlers.
TEST(JournalTest, MalformedMapRunIsDataLossAndDeliversNothing) {
  auto frame = [](const std::string& payload) {
    std::string out;
    auto put32 = [&out](uint32_t v) {
      for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    put32(static_cast<uint32_t>(payload.size()));
    put32(XXH32(payload.data(), payload.size(), 0));
    return out + payload;
  };
  RecordEncoder e;
  MapRunEntry two[2] = {{0, MakeRef(0, 5), false}, {1, MakeRef(0, 6), true}};
  e.MapRun(4, 10, two, 2);
  const std::string good = e.buffer().substr(8);
  std::string bad_indexed = good;
  bad_indexed.back() = 2;  // the last entry's indexed byte
  std::string bad_count = good;
  bad_count[17] = 3;  // says 3 entries, holds 2
  std::string zero_count = good.substr(0, 21);
  zero_count[17] = 0;
  for (const std::string& p : {bad_indexed, bad_count, zero_count, good + std::string(1, '\0')}) {
    size_t n = 0;
    Status s =
        Replay(frame(p),
               ReplayHandlers{nullptr, nullptr, [&](const MapRecord&) { ++n; }, nullptr, nullptr},
               nullptr);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
    EXPECT_EQ(n, 0u);
  }
}

TEST(JournalTest, FlippedBitEndsReplayThere) {
  RecordEncoder e;
  for (uint64_t i = 0; i < 3; ++i) e.Map({1, i, MakeRef(0, i + 1), false});
  std::string data = e.buffer();
  data[data.size() / 3 + 12] ^= 0x10;  // inside the second record's payload
  size_t n = 0;
  ASSERT_TRUE(
      Replay(data,
             ReplayHandlers{nullptr, nullptr, [&](const MapRecord&) { ++n; }, nullptr, nullptr},
             nullptr)
          .ok());
  EXPECT_EQ(n, 1u);
}

TEST(JournalTest, SnapshotAndShareMapRecordsRoundTripAndTearWhole) {
  RecordEncoder e;
  SnapRecord s;
  s.id = 9;
  s.name = "daily";
  s.source_id = 3;
  s.source_lun = "vol";
  s.size_bytes = 1 << 30;
  s.tier = 1;
  s.owner = "ns";
  s.created_unix_nanos = 1234567890123ull;
  s.share_map_from = 3;
  s.metadata = {{"csi.storage.k8s.io/volumesnapshot/name", "snap"}};
  e.Snapshot(s);
  e.ShareMap(10, 9);
  const std::string full = e.buffer();
  std::vector<SnapRecord> got;
  std::vector<std::pair<uint64_t, uint64_t>> shares;
  ReplayHandlers h{nullptr, nullptr, nullptr, [&](const SnapRecord& r) { got.push_back(r); },
                   [&](uint64_t d, uint64_t f) { shares.emplace_back(d, f); }};
  ASSERT_TRUE(Replay(full, h, nullptr).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].name, "daily");
  EXPECT_EQ(got[0].source_lun, "vol");
  EXPECT_EQ(got[0].source_id, 3u);
  EXPECT_EQ(got[0].size_bytes, 1u << 30);
  EXPECT_EQ(got[0].tier, 1u);
  EXPECT_EQ(got[0].owner, "ns");
  EXPECT_EQ(got[0].created_unix_nanos, 1234567890123ull);
  EXPECT_EQ(got[0].share_map_from, 3u);
  EXPECT_EQ(got[0].metadata, s.metadata);
  ASSERT_EQ(shares.size(), 1u);
  EXPECT_EQ(shares[0], std::make_pair(uint64_t{10}, uint64_t{9}));
  // Any cut inside the snapshot frame: no snapshot at all.
  const size_t first = full.size() - (8 + 1 + 8 + 8);
  for (size_t cut = 0; cut < first; ++cut) {
    got.clear();
    ASSERT_TRUE(Replay(std::string_view(full).substr(0, cut), h, nullptr).ok());
    EXPECT_TRUE(got.empty()) << cut;
  }
}

}  // namespace
}  // namespace strata::storage::engine
