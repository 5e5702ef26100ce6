#include "move_exports.h"

#include <sys/random.h>

#include <cerrno>
#include <chrono>

#include "strata/storage/copy_priority.h"
#include "strata/storage/io_stats.h"

namespace strata::storage {
namespace {

// How long each of a move's writes waits for this device's clients, as WriteLunData's
// background messages do.
constexpr auto kMaxYieldToClients = std::chrono::microseconds(2000);

Result<std::string> NewToken() {
  unsigned char raw[16];
  size_t got = 0;
  while (got < sizeof(raw)) {
    ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("getrandom", errno);
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// Compares without stopping at the first difference (the token is a secret).
bool SameToken(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// Whether a move's export still takes writes: UNAVAILABLE once closed.
Status CheckLive(const std::atomic<bool>& live, const std::string& lun) {
  if (!live.load()) {
    return UnavailableError("the move export of LUN " + lun + " is closed (accepted or deleted)");
  }
  return Status::Ok();
}

// A move's write received where the LUN keeps its bytes (the engine's BeginWrite:
// new slots, or an in-place rewrite, through the tier mapping). All of it is copy
// traffic: from MoveVolume::BeginWrite (the slots' pages populated there) through the
// payload's receive to the commit, the connection's thread runs at the copy priority
// (`copy`, held until this write is dropped, on the thread that began it: the NBD
// server begins, receives, commits and drops a request on one thread); the commit is
// paced, as MoveVolume::Write is once the payload is in.
class MoveIncomingWrite final : public IncomingWrite {
 public:
  MoveIncomingWrite(Engine* engine, std::unique_ptr<IncomingWrite> inner, uint32_t length,
                    std::shared_ptr<std::atomic<bool>> live, std::string lun,
                    std::unique_ptr<CopyThreadScope> copy)
      : copy_(std::move(copy)),
        engine_(engine),
        inner_(std::move(inner)),
        length_(length),
        live_(std::move(live)),
        lun_(std::move(lun)) {}

  std::span<char> NextSpace() override { return inner_->NextSpace(); }
  size_t NextSpaces(std::span<char>* out, size_t max) override {
    return inner_->NextSpaces(out, max);
  }
  void Received(size_t n) override { inner_->Received(n); }
  Status Land(std::span<const char> bytes) override { return inner_->Land(bytes); }
  bool WholeReceives() const override { return inner_->WholeReceives(); }
  FileSpace NextFileSpace() override { return inner_->NextFileSpace(); }
  Status Commit() override {
    STRATA_RETURN_IF_ERROR(CheckLive(*live_, lun_));
    engine_->YieldToClients(kMaxYieldToClients, length_);
    return inner_->Commit();
  }

 private:
  // First in, last out: the inner write (its slots given back when abandoned) goes
  // before the thread's priority is restored.
  const std::unique_ptr<CopyThreadScope> copy_;
  Engine* const engine_;
  const std::unique_ptr<IncomingWrite> inner_;
  const uint32_t length_;
  const std::shared_ptr<std::atomic<bool>> live_;
  const std::string lun_;
};

// An incoming LUN written by a move: copy traffic, paced like WriteLunData's.
class MoveVolume final : public Volume {
 public:
  MoveVolume(Engine* engine, std::shared_ptr<Volume> inner, std::string lun,
             std::shared_ptr<std::atomic<bool>> live)
      : engine_(engine), inner_(std::move(inner)), lun_(std::move(lun)), live_(std::move(live)) {}

  uint64_t size_bytes() const override { return inner_->size_bytes(); }
  uint32_t block_size() const override { return inner_->block_size(); }
  bool read_only() const override { return false; }

  Status Read(uint64_t offset, std::span<char> out) override {
    STRATA_RETURN_IF_ERROR(Check());
    CopyThreadScope copy;
    return inner_->Read(offset, out);
  }
  Status Write(uint64_t offset, std::span<const char> data, bool fua) override {
    STRATA_RETURN_IF_ERROR(Check());
    CopyThreadScope copy;
    engine_->YieldToClients(kMaxYieldToClients, data.size());
    return inner_->Write(offset, data, fua);
  }
  // The move's bytes land straight in the target's tier (one copy from the socket);
  // declined (nullptr), they take Write.
  std::unique_ptr<IncomingWrite> BeginWrite(uint64_t offset, uint32_t length, bool fua,
                                            const IncomingPayload& payload) override {
    if (!Check().ok()) return nullptr;  // Write says why
    auto copy = std::make_unique<CopyThreadScope>();
    auto inner = inner_->BeginWrite(offset, length, fua, payload);
    if (!inner) return nullptr;
    return std::make_unique<MoveIncomingWrite>(engine_, std::move(inner), length, live_, lun_,
                                               std::move(copy));
  }
  Status WriteZeroes(uint64_t offset, uint64_t length, bool fua) override {
    STRATA_RETURN_IF_ERROR(Check());
    CopyThreadScope copy;
    engine_->YieldToClients(kMaxYieldToClients, 0);
    return inner_->WriteZeroes(offset, length, fua);
  }
  Status Trim(uint64_t offset, uint64_t length) override {
    return WriteZeroes(offset, length, false);
  }
  Status Flush() override {
    STRATA_RETURN_IF_ERROR(Check());
    CopyThreadScope copy;
    return inner_->Flush();
  }
  LunIoStats* io_stats() override { return &stats_; }

 private:
  Status Check() const { return CheckLive(*live_, lun_); }

  Engine* const engine_;
  const std::shared_ptr<Volume> inner_;
  const std::string lun_;
  const std::shared_ptr<std::atomic<bool>> live_;
  LunIoStats stats_;
};

}  // namespace

Result<std::string> MoveExportCatalog::OpenMoveExport(const std::string& lun,
                                                      const std::string& wwn) {
  if (lun.empty()) return InvalidArgumentError("name: is required");
  if (wwn.empty()) return InvalidArgumentError("wwn: is required");
  auto info = engine_->GetLun(lun);
  if (!info.ok()) {
    if (info.status().code() == StatusCode::kNotFound) {
      return NotFoundError("name: LUN '" + lun + "' not found");
    }
    return info.status();
  }
  if (!info->incoming) {
    return FailedPreconditionError("name: LUN '" + lun +
                                   "' is not a move's incoming copy (already accepted, or "
                                   "not created by a move)");
  }
  if (info->wwn != wwn) {
    return FailedPreconditionError("wwn: LUN '" + lun + "' has WWN " + info->wwn + ", not " + wwn);
  }
  std::lock_guard lock(mu_);
  auto it = grants_.find(lun);
  if (it != grants_.end() && it->second.lun_id == info->id && it->second.wwn == wwn &&
      it->second.live->load()) {
    return std::string(kPrefix) + lun + "/" + it->second.token;
  }
  if (it != grants_.end()) it->second.live->store(false);
  STRATA_ASSIGN_OR_RETURN(std::string token, NewToken());
  grants_[lun] = Grant{token, info->id, wwn, std::make_shared<std::atomic<bool>>(true)};
  return std::string(kPrefix) + lun + "/" + token;
}

void MoveExportCatalog::Revoke(const std::string& lun) {
  std::lock_guard lock(mu_);
  auto it = grants_.find(lun);
  if (it == grants_.end()) return;
  it->second.live->store(false);
  grants_.erase(it);
}

std::vector<ExportInfo> MoveExportCatalog::List(const ClientInfo& client) {
  return engine_->List(client);
}

Result<std::shared_ptr<Volume>> MoveExportCatalog::Open(std::string_view name,
                                                        const ClientInfo& client) {
  if (name.substr(0, kPrefix.size()) != kPrefix) return engine_->Open(name, client);
  const std::string_view rest = name.substr(kPrefix.size());
  const size_t slash = rest.rfind('/');
  // One answer for every failure: a guess learns nothing about which LUNs move here.
  // The token is not echoed (it would reach logs).
  const Status unknown = NotFoundError(
      "export '" + std::string(name.substr(0, name.rfind('/') + 1)) + "...' not found");
  if (slash == std::string_view::npos) return unknown;
  const std::string lun(rest.substr(0, slash));
  const std::string_view token = rest.substr(slash + 1);
  Grant grant;
  {
    std::lock_guard lock(mu_);
    auto it = grants_.find(lun);
    if (it == grants_.end() || !SameToken(it->second.token, token) || !it->second.live->load()) {
      return unknown;
    }
    grant = it->second;
  }
  auto info = engine_->GetLun(lun);
  if (!info.ok() || !info->incoming || info->id != grant.lun_id || info->wwn != grant.wwn) {
    std::lock_guard lock(mu_);
    auto it = grants_.find(lun);
    if (it != grants_.end() && it->second.token == grant.token) {
      it->second.live->store(false);
      grants_.erase(it);
    }
    return unknown;
  }
  STRATA_ASSIGN_OR_RETURN(auto vol, engine_->OpenVolume(lun));
  return std::shared_ptr<Volume>(
      std::make_shared<MoveVolume>(engine_, std::move(vol), lun, grant.live));
}

}  // namespace strata::storage
