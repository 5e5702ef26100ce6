#include "strata/kubectl/lun_locator.h"

#include <map>
#include <set>

#include "strata/device/client.h"
#include "strata/device/tier.h"

namespace strata::kubectl {
namespace {

constexpr int kMaxMoveHops = 8;

class GrpcLunLocator final : public LunLocator {
 public:
  explicit GrpcLunLocator(std::chrono::milliseconds deadline) : deadline_(deadline) {}

  Result<LiveLun> Locate(const std::string& address, const std::string& lun) override {
    std::string at = address;
    std::set<std::string> seen;
    for (int hop = 0; hop <= kMaxMoveHops; ++hop) {
      if (auto it = unreachable_.find(at); it != unreachable_.end()) return it->second;
      auto got = Client(at)->GetLun(lun);
      if (!got.ok()) {
        if (got.status().code() == StatusCode::kUnavailable ||
            got.status().code() == StatusCode::kDeadlineExceeded) {
          unreachable_.emplace(at, got.status());
        }
        return got.status();
      }
      seen.insert(at);
      if (got->moved_to().empty()) {
        LiveLun live{.address = at,
                     .tier = std::string(device::TierName(got->tier())),
                     .portals = {got->portals().begin(), got->portals().end()},
                     .moves = hop};
        return live;
      }
      at = got->moved_to();
      if (seen.contains(at)) {
        return FailedPreconditionError("LUN " + lun + ": moved_to loops back to " + at);
      }
    }
    return FailedPreconditionError("LUN " + lun + ": more than " + std::to_string(kMaxMoveHops) +
                                   " moves to follow from " + address);
  }

 private:
  device::ClientPtr Client(const std::string& address) {
    auto& c = clients_[address];
    if (!c) c = device::NewGrpcClient(address, deadline_);
    return c;
  }

  const std::chrono::milliseconds deadline_;
  std::map<std::string, device::ClientPtr> clients_;
  std::map<std::string, Status> unreachable_;
};

}  // namespace

std::unique_ptr<LunLocator> NewGrpcLunLocator(std::chrono::milliseconds deadline) {
  return std::make_unique<GrpcLunLocator>(deadline);
}

}  // namespace strata::kubectl
