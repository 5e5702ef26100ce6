#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>

#include "strata/kube/client.h"
#include "strata/kube/clock.h"

namespace strata::kube {

struct LeaderElectionConfig {
  std::string lease_namespace = "default";
  std::string lease_name;
  std::string identity;  // unique per process, e.g. "HOSTNAME_PID"
  // client-go / controller-runtime defaults. REQUIRES: lease_duration > renew_deadline >
  // retry_period.
  Duration lease_duration = std::chrono::seconds(15);
  Duration renew_deadline = std::chrono::seconds(10);
  Duration retry_period = std::chrono::seconds(2);
  // On a graceful stop, give the lease up so a standby takes over at once.
  bool release_on_stop = true;
};

// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection package does
// it: a candidate acquires the lease when it is free or when its holder has not renewed it for
// lease_duration, measured on the candidate's own clock from when it last saw the record change
// (so clock skew between hosts does not matter); the leader renews every retry_period and gives up
// leadership when it could not renew for renew_deadline. Writes are conditional on the Lease's
// resourceVersion, so two candidates never both win one round. A candidate polls every
// retry_period (+ up to 20 % jitter) and also wakes exactly when the observed lease runs out, so a
// dead leader is replaced within lease_duration + 1.2 x retry_period of its last renewal.
// Thread-safe.
class LeaderElector {
 public:
  struct Callbacks {
    // Runs on its own thread while leading; `stop` is requested when leadership ends.
    std::function<void(std::stop_token stop)> on_started_leading;
    // After leadership ended (lost or released); on_started_leading has returned.
    std::function<void()> on_stopped_leading;
    std::function<void(const std::string& identity)> on_new_leader;
  };

  LeaderElector(ApiClient* client, LeaderElectionConfig config, Callbacks callbacks,
                Clock* clock = Clock::Real());

  // Campaigns until elected, leads until leadership is lost or `stop` is requested, then returns
  // (it does not campaign again: a process that lost the lease should exit, as client-go's users
  // do, so no work started as leader can outlive it). Returns true if it ever led.
  bool Run(std::stop_token stop);

  // True only while the last successful renewal is less than renew_deadline old: a worker that
  // checks this before acting cannot act after another candidate could have taken over, even if
  // this process was frozen (SIGSTOP, a long GC-like pause) past its lease.
  bool IsLeader() const;
  std::string identity() const { return config_.identity; }
  std::string observed_leader() const;

 private:
  // One attempt to acquire or renew. OK when we hold the lease afterwards.
  Status TryAcquireOrRenew();
  Status Release();

  ApiClient* const client_;
  const LeaderElectionConfig config_;
  const Callbacks callbacks_;
  Clock* const clock_;

  mutable std::mutex mu_;
  Json observed_record_;         // guarded by mu_; the Lease spec last seen
  TimePoint observed_time_{};    // guarded by mu_; when it last changed, on our clock
  std::string observed_leader_;  // guarded by mu_
  Json lease_;                   // guarded by mu_; the Lease object last read or written
  TimePoint last_renew_{};       // guarded by mu_
  bool leading_ = false;         // guarded by mu_
};

}  // namespace strata::kube
