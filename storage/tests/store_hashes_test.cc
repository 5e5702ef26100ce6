#include "engine/store_hashes.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "engine/xxh3_stream.h"

namespace strata::storage::engine {
namespace {

constexpr uint32_t kBs = 4096;
constexpr uint64_t kRange = StoreHashes::kRangeBytes;

// A LUN's bytes beside its StoreHashes: every store goes to both, and what a range's
// checksum must be is the XXH3 of the bytes here.
class StoreHashesTest : public ::testing::Test {
 protected:
  void Make(uint64_t size) {
    lun_.assign(size, 0);
    hashes_ = std::make_unique<StoreHashes>(size, kBs);
  }

  std::string Bytes(size_t n, uint32_t seed) {
    std::string s(n, 0);
    std::mt19937 rng(seed);
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  }

  // Stores `data` at offset, handing it to StoreHashes in pieces of `piece` bytes (as
  // gRPC hands a message over in slices).
  void Store(uint64_t offset, const std::string& data, size_t piece = 16384) {
    std::copy(data.begin(), data.end(), lun_.begin() + static_cast<ptrdiff_t>(offset));
    std::vector<std::span<const char>> pieces;
    for (size_t at = 0; at < data.size(); at += piece) {
      pieces.emplace_back(data.data() + at, std::min(piece, data.size() - at));
    }
    hashes_->Stored(offset, pieces);
  }
  void Zero(uint64_t offset, uint64_t n) {
    std::fill_n(lun_.begin() + static_cast<ptrdiff_t>(offset), n, 0);
    hashes_->StoredZeros(offset, n);
  }

  uint64_t Truth(uint64_t index) const {
    const uint64_t rs = index * kRange;
    const uint64_t n = std::min<uint64_t>(kRange, lun_.size() - rs);
    return XXH3_64bits(lun_.data() + rs, n);
  }

  // The range's checksum: known (read-back counted) or nullopt.
  std::optional<uint64_t> Sum(uint64_t index) {
    auto scope = hashes_->ChecksumScope();
    auto r = hashes_->Checksum(index, [&](uint64_t at, std::span<char> out) {
      read_bytes_ += out.size();
      std::copy_n(lun_.begin() + static_cast<ptrdiff_t>(at), out.size(), out.begin());
      return Status::Ok();
    });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return *r;
  }

  std::vector<char> lun_;
  std::unique_ptr<StoreHashes> hashes_;
  uint64_t read_bytes_ = 0;
};

TEST_F(StoreHashesTest, RangesStoredInOrderAreKnownWithoutReadingBack) {
  Make(3 * kRange + 8192);  // a short last range
  Store(0, Bytes(kRange, 1));
  Store(kRange, Bytes(kRange / 2, 2), 1000);  // pieces that cut blocks
  Store(kRange + kRange / 2, Bytes(kRange / 2, 3), 7);
  Store(3 * kRange, Bytes(8192, 4));
  for (uint64_t i = 0; i < 4; ++i) {
    auto h = Sum(i);
    ASSERT_TRUE(h.has_value()) << i;
    EXPECT_EQ(*h, Truth(i)) << i;
  }
  EXPECT_EQ(read_bytes_, 0u);  // range 2 never stored: zeros, known too
}

TEST_F(StoreHashesTest, HolesAndZeroWritesCountAsZeros) {
  Make(2 * kRange);
  Store(8 * kBs, Bytes(4 * kBs, 5));  // a hole before, out of order: read back later
  Zero(0, 8 * kBs);                   // the hole, now in order
  Zero(kRange, kRange);               // a whole range of zeros
  EXPECT_EQ(Sum(0), Truth(0));
  EXPECT_EQ(read_bytes_, 4 * kBs);
  EXPECT_EQ(Sum(1), Truth(1));
}

TEST_F(StoreHashesTest, OutOfOrderMessagesAreReadBackOnlyWhereNeeded) {
  Make(kRange);
  // Four 256 KiB messages landing 2, 0, 3, 1 (as over several streams).
  std::vector<std::string> parts;
  for (uint32_t i = 0; i < 4; ++i) parts.push_back(Bytes(kRange / 4, 10 + i));
  for (uint32_t i : {2u, 0u, 3u, 1u}) Store(i * kRange / 4, parts[i]);
  EXPECT_EQ(Sum(0), Truth(0));
  EXPECT_EQ(read_bytes_, kRange / 2);  // 0 and 1 hashed in order; 2 and 3 read back
}

TEST_F(StoreHashesTest, ARangeStoredAgainByALaterPassIsUnknown) {
  Make(2 * kRange);
  Store(0, Bytes(kRange, 20));
  Store(kRange, Bytes(kRange / 2, 21));
  EXPECT_EQ(Sum(0), Truth(0));
  // A later pass: one block of each range again.
  Store(5 * kBs, Bytes(kBs, 22));
  Store(kRange + 3 * kBs, Bytes(kBs, 23));
  EXPECT_FALSE(Sum(0).has_value());
  EXPECT_FALSE(Sum(1).has_value());
  // Zeros over stored bytes, too.
  Make(kRange);
  Store(0, Bytes(kRange / 2, 24));
  Zero(kBs, kBs);
  EXPECT_FALSE(Sum(0).has_value());
}

TEST_F(StoreHashesTest, AFailedStoreMakesItsRangesUnknown) {
  Make(2 * kRange);
  Store(0, Bytes(kBs, 30));
  hashes_->Failed(kRange - kBs, 2 * kBs);
  EXPECT_FALSE(Sum(0).has_value());
  EXPECT_FALSE(Sum(1).has_value());
}

TEST_F(StoreHashesTest, ABlockNotStoredOrStoredWrongDiffersFromTheSource) {
  Make(kRange);
  const std::string source = Bytes(kRange, 40);
  const uint64_t source_sum = XXH3_64bits(source.data(), source.size());
  // Not stored: the target missed one block of the range.
  Store(0, source.substr(0, 100 * kBs));
  Store(101 * kBs, source.substr(101 * kBs));
  ASSERT_TRUE(Sum(0).has_value());
  EXPECT_NE(*Sum(0), source_sum);
  EXPECT_EQ(*Sum(0), Truth(0));
  // Stored wrong: one byte other than sent.
  Make(kRange);
  std::string wrong = source;
  wrong[12345] ^= 1;
  Store(0, wrong);
  EXPECT_NE(*Sum(0), source_sum);
  // Stored right: equal.
  Make(kRange);
  Store(0, source);
  EXPECT_EQ(*Sum(0), source_sum);
}

TEST_F(StoreHashesTest, DisabledKnowsNothing) {
  Make(kRange);
  Store(0, Bytes(kRange, 50));
  hashes_->Disable();
  EXPECT_FALSE(hashes_->enabled());
  EXPECT_FALSE(Sum(0).has_value());
  Store(0, Bytes(kBs, 51));  // no effect, no crash
}

TEST_F(StoreHashesTest, RandomStoresAlwaysAgreeWithTheBytesOrSayUnknown) {
  std::mt19937 rng(7);
  int known = 0;
  for (int round = 0; round < 30; ++round) {
    Make(4 * kRange);
    for (int k = 0; k < 12; ++k) {
      const uint64_t blocks = 1 + rng() % 300;
      const uint64_t at = (rng() % (4 * kRange / kBs - blocks)) * kBs + (rng() % 3 == 0 ? 512 : 0);
      const uint64_t n = std::min<uint64_t>(blocks * kBs, 4 * kRange - at);
      if (rng() % 4 == 0) {
        Zero(at, n);
      } else {
        Store(at, Bytes(n, rng()), 1 + rng() % 20000);
      }
    }
    for (uint64_t i = 0; i < 4; ++i) {
      auto h = Sum(i);
      if (h) {
        EXPECT_EQ(*h, Truth(i)) << "round " << round << " range " << i;
        ++known;
      }
    }
  }
  EXPECT_GT(known, 5);  // some ranges are known, not all read back
}

// The dispatched stream (AVX2 / AVX-512 where the CPU has them) gives XXH3_64bits'
// values however the bytes are split, from any alignment, and a copy of a state goes
// on from where the original was.
TEST(Xxh3StreamTest, EqualsXxh3OfTheWholeInAnyPieces) {
  std::mt19937 rng(7);
  std::string bytes(3 * 1048576 + 333, 0);
  for (auto& c : bytes) c = static_cast<char>(rng());
  for (size_t len : {size_t{0}, size_t{1}, size_t{17}, size_t{240}, size_t{4096}, size_t{65537},
                     size_t{1048576}, bytes.size() - 5}) {
    const char* at = bytes.data() + 5;  // not aligned
    const uint64_t want = XXH3_64bits(at, len);
    EXPECT_EQ(Xxh3Of(at, len), want) << len;
    Xxh3Stream s;
    for (size_t done = 0; done < len;) {
      const size_t k = std::min<size_t>(len - done, 1 + rng() % 300000);
      s.Update(at + done, k);
      done += k;
    }
    EXPECT_EQ(s.Digest(), want) << len;
    s.Reset();
    s.Update(at, len);
    EXPECT_EQ(s.Digest(), want) << len;
  }
  Xxh3Stream a;
  a.Update(bytes.data(), 1000000);
  Xxh3Stream b = a;
  a.Update(bytes.data() + 1000000, 500000);
  b.Update(bytes.data() + 1000000, 500000);
  EXPECT_EQ(a.Digest(), XXH3_64bits(bytes.data(), 1500000));
  EXPECT_EQ(b.Digest(), a.Digest());
}

}  // namespace
}  // namespace strata::storage::engine
