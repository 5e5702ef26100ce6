#include "strata/kube/leader_election.h"

#include <spdlog/spdlog.h>

#include <random>
#include <thread>

#include "strata/kube/conditions.h"
#include "strata/kube/errors.h"

namespace strata::kube {
namespace {

int64_t Seconds(Duration d) { return std::chrono::duration_cast<std::chrono::seconds>(d).count(); }

}  // namespace

LeaderElector::LeaderElector(ApiClient* client, LeaderElectionConfig config, Callbacks callbacks,
                             Clock* clock)
    : client_(client),
      config_(std::move(config)),
      callbacks_(std::move(callbacks)),
      clock_(clock) {}

bool LeaderElector::IsLeader() const {
  std::lock_guard g(mu_);
  return leading_ && clock_->Now() - last_renew_ < config_.renew_deadline;
}

std::string LeaderElector::observed_leader() const {
  std::lock_guard g(mu_);
  return observed_leader_;
}

Status LeaderElector::TryAcquireOrRenew() {
  const Resource leases = resources::Leases();
  const std::string now = FormatMicroTime(clock_->WallNow());
  Json spec = {{"holderIdentity", config_.identity},
               {"leaseDurationSeconds", Seconds(config_.lease_duration)},
               {"acquireTime", now},
               {"renewTime", now},
               {"leaseTransitions", 0}};

  auto current = client_->Get(leases, config_.lease_namespace, config_.lease_name);
  if (!current.ok()) {
    if (!IsNotFound(current.status())) return current.status();
    Json lease = {
        {"apiVersion", "coordination.k8s.io/v1"},
        {"kind", "Lease"},
        {"metadata", {{"name", config_.lease_name}, {"namespace", config_.lease_namespace}}},
        {"spec", spec}};
    STRATA_ASSIGN_OR_RETURN(Json created, client_->Create(leases, config_.lease_namespace, lease));
    std::lock_guard g(mu_);
    lease_ = created;
    observed_record_ = created["spec"];
    observed_time_ = last_renew_ = clock_->Now();
    observed_leader_ = config_.identity;
    return Status::Ok();
  }

  Json lease = std::move(*current);
  const Json old = lease.contains("spec") ? lease["spec"] : Json::object();
  const std::string holder = old.value("holderIdentity", "");
  {
    std::lock_guard g(mu_);
    if (old != observed_record_) {
      observed_record_ = old;
      observed_time_ = clock_->Now();
    }
    observed_leader_ = holder;
    const auto held_for = std::chrono::seconds(old.value("leaseDurationSeconds", int64_t{0}));
    if (!holder.empty() && holder != config_.identity &&
        observed_time_ + held_for > clock_->Now()) {
      return FailedPreconditionError("lease " + config_.lease_namespace + "/" + config_.lease_name +
                                     " is held by " + holder);
    }
  }
  if (holder == config_.identity) {
    spec["acquireTime"] = old.value("acquireTime", now);
    spec["leaseTransitions"] = old.value("leaseTransitions", int64_t{0});
  } else {
    spec["leaseTransitions"] = old.value("leaseTransitions", int64_t{0}) + 1;
  }
  lease["spec"] = spec;
  // Conditional on the resourceVersion we read: a competing writer makes this a 409.
  STRATA_ASSIGN_OR_RETURN(Json updated, client_->Update(leases, lease));
  std::lock_guard g(mu_);
  lease_ = updated;
  observed_record_ = updated["spec"];
  observed_time_ = last_renew_ = clock_->Now();
  observed_leader_ = config_.identity;
  return Status::Ok();
}

Status LeaderElector::Release() {
  Json lease;
  {
    std::lock_guard g(mu_);
    lease = lease_;
  }
  if (lease.is_null()) return Status::Ok();
  lease["spec"]["holderIdentity"] = "";
  lease["spec"]["leaseDurationSeconds"] = 1;
  const std::string now = FormatMicroTime(clock_->WallNow());
  lease["spec"]["renewTime"] = now;
  lease["spec"]["acquireTime"] = now;
  return client_->Update(resources::Leases(), lease).status();
}

bool LeaderElector::Run(std::stop_token stop) {
  std::mt19937_64 rng(std::random_device{}());
  auto jittered = [&](Duration d) {
    // Spreads candidates' attempts. client-go jitters by up to 1.2x the period; 0.2x keeps the
    // takeover bound tight (see the wake-up at expiry below) while still de-synchronizing.
    return d + Duration(static_cast<Duration::rep>(static_cast<double>(d.count()) * 0.2 *
                                                   std::uniform_real_distribution<>(0, 1)(rng)));
  };

  // Campaign.
  std::string last_seen_leader;
  while (!stop.stop_requested()) {
    Status st = TryAcquireOrRenew();
    const std::string leader = observed_leader();
    if (leader != last_seen_leader) {
      last_seen_leader = leader;
      if (callbacks_.on_new_leader) callbacks_.on_new_leader(leader);
    }
    if (st.ok()) break;
    if (st.code() != StatusCode::kFailedPrecondition) {
      spdlog::info("leader election: {}", st.ToString());
    }
    // Try again after a retry period, or right when the holder's lease runs out if that is
    // sooner: a dead leader is replaced lease_duration after its last renewal was observed.
    TimePoint next = clock_->Now() + jittered(config_.retry_period);
    {
      std::lock_guard g(mu_);
      const auto held_for =
          std::chrono::seconds(observed_record_.value("leaseDurationSeconds", int64_t{0}));
      const TimePoint expiry = observed_time_ + held_for + std::chrono::milliseconds(50);
      if (expiry > clock_->Now() && expiry < next) next = expiry;
    }
    if (!clock_->SleepUntil(next, stop)) return false;
  }
  if (stop.stop_requested()) return false;

  {
    std::lock_guard g(mu_);
    leading_ = true;
  }
  spdlog::info("leader election: {} became leader of {}/{}", config_.identity,
               config_.lease_namespace, config_.lease_name);
  std::jthread work;
  if (callbacks_.on_started_leading) {
    work = std::jthread([this](std::stop_token s) { callbacks_.on_started_leading(s); });
  }

  // Renew until the deadline passes without a successful renewal, or we are asked to stop.
  bool graceful = false;
  while (true) {
    if (!clock_->SleepFor(config_.retry_period, stop)) {
      graceful = true;
      break;
    }
    Status st = TryAcquireOrRenew();
    if (st.ok()) continue;
    TimePoint last;
    {
      std::lock_guard g(mu_);
      last = last_renew_;
    }
    spdlog::warn("leader election: renew failed: {}", st.ToString());
    if (clock_->Now() - last >= config_.renew_deadline) {
      spdlog::error("leader election: {} lost the lease {}/{} (no renewal for {} s)",
                    config_.identity, config_.lease_namespace, config_.lease_name,
                    Seconds(config_.renew_deadline));
      break;
    }
  }
  {
    std::lock_guard g(mu_);
    leading_ = false;
  }
  // The work stops before the lease is given up, so a successor never overlaps with it.
  if (work.joinable()) {
    work.request_stop();
    work.join();
  }
  if (graceful && config_.release_on_stop) {
    if (Status st = Release(); st.ok()) {
      spdlog::info("leader election: released {}/{}", config_.lease_namespace, config_.lease_name);
    } else {
      spdlog::warn("leader election: release failed: {}", st.ToString());
    }
  }
  if (callbacks_.on_stopped_leading) callbacks_.on_stopped_leading();
  return true;
}

}  // namespace strata::kube
