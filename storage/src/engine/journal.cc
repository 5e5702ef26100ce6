#include "journal.h"

#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace strata::storage::engine {
namespace {

enum RecordType : uint8_t {
  kLun = 1,
  kDeleteLun = 2,
  kMap = 3,
  kSnapshot = 4,
  kShareMap = 5,
  kMapRun = 6,
};
// A run record's fixed part (type, lun, first lba, count) and each entry's size.
constexpr size_t kMapRunHeader = 1 + 8 + 8 + 4;
constexpr size_t kMapRunEntry = 4 + 8 + 1;
// Tags of a LUN record's optional sections (after its metadata).
enum LunSection : uint8_t { kLunPublications = 1, kLunIdentities = 2, kLunIncoming = 3 };

void PutU8(std::string& s, uint8_t v) { s.push_back(static_cast<char>(v)); }
void PutU32(std::string& s, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  s.append(b, 4);
}
void PutU64(std::string& s, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  s.append(b, 8);
}
void PutStr(std::string& s, std::string_view v) {
  PutU32(s, static_cast<uint32_t>(v.size()));
  s.append(v);
}

uint32_t GetU32Raw(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool U8(uint8_t* v) {
    if (d_.size() < 1) return false;
    *v = static_cast<uint8_t>(d_[0]);
    d_.remove_prefix(1);
    return true;
  }
  bool U32(uint32_t* v) {
    if (d_.size() < 4) return false;
    *v = GetU32Raw(d_.data());
    d_.remove_prefix(4);
    return true;
  }
  bool U64(uint64_t* v) {
    if (d_.size() < 8) return false;
    uint64_t x = 0;
    for (int i = 0; i < 8; ++i) x |= static_cast<uint64_t>(static_cast<uint8_t>(d_[i])) << (8 * i);
    *v = x;
    d_.remove_prefix(8);
    return true;
  }
  bool Str(std::string* v) {
    uint32_t n = 0;
    if (!U32(&n) || d_.size() < n) return false;
    v->assign(d_.data(), n);
    d_.remove_prefix(n);
    return true;
  }
  bool done() const { return d_.empty(); }

 private:
  std::string_view d_;
};

// A LUN record's publications section: u32 count, then per node its id, a u32 count and
// its access entries.
bool DecodePublications(std::string_view section,
                        std::map<std::string, std::vector<std::string>>* out) {
  Reader r(section);
  uint32_t nodes = 0;
  bool ok = r.U32(&nodes);
  for (uint32_t i = 0; ok && i < nodes; ++i) {
    std::string node;
    uint32_t n = 0;
    ok = r.Str(&node) && r.U32(&n);
    std::vector<std::string> entries;
    for (uint32_t j = 0; ok && j < n; ++j) {
      std::string e;
      ok = r.Str(&e);
      entries.push_back(std::move(e));
    }
    if (ok) (*out)[std::move(node)] = std::move(entries);
  }
  return ok && r.done();
}

// A LUN record's identities section (LunRecord::allowed_identities): u32 count, strings.
bool DecodeIdentities(std::string_view section, std::vector<std::string>* out) {
  Reader r(section);
  uint32_t n = 0;
  bool ok = r.U32(&n);
  for (uint32_t i = 0; ok && i < n; ++i) {
    std::string id;
    ok = r.Str(&id);
    out->push_back(std::move(id));
  }
  return ok && r.done();
}

}  // namespace

void RecordEncoder::Frame(const std::string& payload) {
  PutU32(buf_, static_cast<uint32_t>(payload.size()));
  PutU32(buf_, XXH32(payload.data(), payload.size(), 0));
  buf_.append(payload);
  ++records_;
}

void RecordEncoder::Lun(const LunRecord& r) {
  std::string p;
  PutU8(p, kLun);
  PutU64(p, r.id);
  PutStr(p, r.name);
  PutStr(p, r.wwn);
  PutU64(p, r.size_bytes);
  PutU32(p, r.tier);
  PutU8(p, r.dedup ? 1 : 0);
  PutStr(p, r.owner);
  PutU32(p, static_cast<uint32_t>(r.allowed_clients.size()));
  for (const auto& c : r.allowed_clients) PutStr(p, c);
  PutU64(p, r.created_unix);
  PutU32(p, r.write_tier);
  PutStr(p, r.moved_to);
  if (!r.metadata.empty() || !r.publications.empty() || !r.allowed_identities.empty() ||
      r.incoming) {
    PutU32(p, static_cast<uint32_t>(r.metadata.size()));
    for (const auto& [k, v] : r.metadata) {
      PutStr(p, k);
      PutStr(p, v);
    }
  }
  if (!r.publications.empty()) {
    std::string section;
    PutU32(section, static_cast<uint32_t>(r.publications.size()));
    for (const auto& [node, entries] : r.publications) {
      PutStr(section, node);
      PutU32(section, static_cast<uint32_t>(entries.size()));
      for (const auto& e : entries) PutStr(section, e);
    }
    PutU8(p, kLunPublications);
    PutStr(p, section);
  }
  if (!r.allowed_identities.empty()) {
    std::string section;
    PutU32(section, static_cast<uint32_t>(r.allowed_identities.size()));
    for (const auto& id : r.allowed_identities) PutStr(section, id);
    PutU8(p, kLunIdentities);
    PutStr(p, section);
  }
  if (r.incoming) {
    PutU8(p, kLunIncoming);
    PutStr(p, std::string(1, '\1'));
  }
  Frame(p);
}

void RecordEncoder::DeleteLun(uint64_t lun_id) {
  std::string p;
  PutU8(p, kDeleteLun);
  PutU64(p, lun_id);
  Frame(p);
}

void RecordEncoder::Map(const MapRecord& r) {
  // The hot record (one per block written): framed in place, no temporary string.
  constexpr size_t kPayload = 1 + 8 + 8 + 8 + 1;
  const size_t start = buf_.size();
  buf_.resize(start + 8 + kPayload);
  char* p = buf_.data() + start + 8;
  auto put64 = [&p](uint64_t v) {
    for (int i = 0; i < 8; ++i) *p++ = static_cast<char>((v >> (8 * i)) & 0xff);
  };
  *p++ = static_cast<char>(kMap);
  put64(r.lun_id);
  put64(r.lba);
  put64(r.ref);
  *p++ = r.indexed ? 1 : 0;
  const char* payload = buf_.data() + start + 8;
  uint32_t sum = XXH32(payload, kPayload, 0);
  char* h = buf_.data() + start;
  for (int i = 0; i < 4; ++i) h[i] = static_cast<char>((kPayload >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) h[4 + i] = static_cast<char>((sum >> (8 * i)) & 0xff);
  ++records_;
}

void RecordEncoder::MapRun(uint64_t lun_id, uint64_t first_lba, const MapRunEntry* entries,
                           size_t n) {
  const size_t payload_size = kMapRunHeader + n * kMapRunEntry;
  const size_t start = buf_.size();
  buf_.resize(start + 8 + payload_size);
  char* const payload = buf_.data() + start + 8;
  char* p = payload;
  auto put = [&p](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) *p++ = static_cast<char>((v >> (8 * i)) & 0xff);
  };
  put(kMapRun, 1);
  put(lun_id, 8);
  put(first_lba, 8);
  put(n, 4);
  for (size_t i = 0; i < n; ++i) {
    put(entries[i].offset, 4);
    put(entries[i].ref, 8);
    put(entries[i].indexed ? 1 : 0, 1);
  }
  char* h = buf_.data() + start;
  p = h;
  put(payload_size, 4);
  put(XXH32(payload, payload_size, 0), 4);
  records_ += n;
}

void RecordEncoder::Snapshot(const SnapRecord& r) {
  std::string p;
  PutU8(p, kSnapshot);
  PutU64(p, r.id);
  PutStr(p, r.name);
  PutU64(p, r.source_id);
  PutStr(p, r.source_lun);
  PutU64(p, r.size_bytes);
  PutU32(p, r.tier);
  PutStr(p, r.owner);
  PutU64(p, r.created_unix_nanos);
  PutU64(p, r.share_map_from);
  PutU32(p, static_cast<uint32_t>(r.metadata.size()));
  for (const auto& [k, v] : r.metadata) {
    PutStr(p, k);
    PutStr(p, v);
  }
  Frame(p);
}

void RecordEncoder::ShareMap(uint64_t dst_id, uint64_t src_id) {
  std::string p;
  PutU8(p, kShareMap);
  PutU64(p, dst_id);
  PutU64(p, src_id);
  Frame(p);
}

Status Replay(std::string_view data, const ReplayHandlers& h, ReplayResult* result) {
  size_t pos = 0;
  size_t records = 0;
  while (data.size() - pos >= 8) {
    uint32_t len = GetU32Raw(data.data() + pos);
    uint32_t sum = GetU32Raw(data.data() + pos + 4);
    if (data.size() - pos - 8 < len) break;  // torn tail
    std::string_view payload = data.substr(pos + 8, len);
    if (XXH32(payload.data(), payload.size(), 0) != sum) break;  // torn tail
    Reader r(payload);
    uint8_t type = 0;
    bool ok = r.U8(&type);
    if (ok && type == kLun) {
      LunRecord l;
      uint8_t dedup = 0;
      uint32_t n = 0;
      ok = r.U64(&l.id) && r.Str(&l.name) && r.Str(&l.wwn) && r.U64(&l.size_bytes) &&
           r.U32(&l.tier) && r.U8(&dedup) && r.Str(&l.owner) && r.U32(&n);
      for (uint32_t i = 0; ok && i < n; ++i) {
        std::string c;
        ok = r.Str(&c);
        l.allowed_clients.push_back(std::move(c));
      }
      ok = ok && r.U64(&l.created_unix) && r.U32(&l.write_tier) && r.Str(&l.moved_to);
      if (ok && !r.done()) {  // metadata: absent in records written before it existed
        uint32_t entries = 0;
        ok = r.U32(&entries);
        for (uint32_t i = 0; ok && i < entries; ++i) {
          std::string k, v;
          ok = r.Str(&k) && r.Str(&v);
          l.metadata.emplace(std::move(k), std::move(v));
        }
      }
      while (ok && !r.done()) {  // tagged sections (publications, identities, incoming)
        uint8_t tag = 0;
        std::string section;
        ok = r.U8(&tag) && r.Str(&section);
        if (ok && tag == kLunPublications) ok = DecodePublications(section, &l.publications);
        if (ok && tag == kLunIdentities) ok = DecodeIdentities(section, &l.allowed_identities);
        if (ok && tag == kLunIncoming) {
          ok = section.size() == 1 && section[0] == 1;
          l.incoming = true;
        }
      }
      ok = ok && r.done();
      l.dedup = dedup != 0;
      if (ok && h.on_lun) h.on_lun(l);
    } else if (ok && type == kDeleteLun) {
      uint64_t id = 0;
      ok = r.U64(&id) && r.done();
      if (ok && h.on_delete) h.on_delete(id);
    } else if (ok && type == kMap) {
      MapRecord m;
      uint8_t indexed = 0;
      ok = r.U64(&m.lun_id) && r.U64(&m.lba) && r.U64(&m.ref) && r.U8(&indexed) && r.done();
      m.indexed = indexed != 0;
      if (ok && h.on_map) h.on_map(m);
    } else if (ok && type == kMapRun) {
      uint64_t lun_id = 0, first = 0;
      uint32_t n = 0;
      ok = r.U64(&lun_id) && r.U64(&first) && r.U32(&n) && n > 0 &&
           payload.size() == kMapRunHeader + static_cast<size_t>(n) * kMapRunEntry;
      // Checked whole before any entry is delivered, as other records are.
      for (uint32_t pass = 0; ok && pass < 2; ++pass) {
        Reader e = r;
        for (uint32_t i = 0; ok && i < n; ++i) {
          MapRecord m;
          uint32_t offset = 0;
          uint8_t indexed = 0;
          ok = e.U32(&offset) && e.U64(&m.ref) && e.U8(&indexed) && indexed <= 1 &&
               offset <= UINT64_MAX - first;
          m.lun_id = lun_id;
          m.lba = first + offset;
          m.indexed = indexed != 0;
          if (ok && pass == 1 && h.on_map) h.on_map(m);
        }
        ok = ok && e.done();
      }
      if (ok) records += n - 1;  // counted as n records, as the encoder counts it
    } else if (ok && type == kSnapshot) {
      SnapRecord sr;
      uint32_t entries = 0;
      ok = r.U64(&sr.id) && r.Str(&sr.name) && r.U64(&sr.source_id) && r.Str(&sr.source_lun) &&
           r.U64(&sr.size_bytes) && r.U32(&sr.tier) && r.Str(&sr.owner) &&
           r.U64(&sr.created_unix_nanos) && r.U64(&sr.share_map_from) && r.U32(&entries);
      for (uint32_t i = 0; ok && i < entries; ++i) {
        std::string k, v;
        ok = r.Str(&k) && r.Str(&v);
        sr.metadata.emplace(std::move(k), std::move(v));
      }
      ok = ok && r.done();
      if (ok && h.on_snapshot) h.on_snapshot(sr);
    } else if (ok && type == kShareMap) {
      uint64_t dst = 0, src = 0;
      ok = r.U64(&dst) && r.U64(&src) && r.done();
      if (ok && h.on_share_map) h.on_share_map(dst, src);
    } else {
      ok = false;
    }
    if (!ok) {
      return Status(StatusCode::kDataLoss, "journal record " + std::to_string(records) +
                                               " at byte " + std::to_string(pos) +
                                               " has a valid checksum but does not parse");
    }
    pos += 8 + len;
    ++records;
  }
  if (result) {
    result->records = records;
    result->valid_bytes = pos;
  }
  return Status::Ok();
}

}  // namespace strata::storage::engine
