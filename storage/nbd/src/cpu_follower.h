#pragma once

#include <sched.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

namespace strata::nbd {

// When a connection's threads should be kept on the CPU its requests arrive on
// (CpuFollower's decision, without the system calls; testable with any clock).
//
// A request qualifies when it arrived alone (every earlier one answered, nothing
// more received) and moves little data. After kWindow qualifying requests in a row
// the connection is followed on trial: kSettle requests to settle (its threads
// move, and the scheduler may move the client once more: trials timed from their
// first request read slower than the free pace on this VM, the same connections
// later ran 1.5-2x faster), then kWindow timed. It stays followed when those came
// at least 10 % faster than the kWindow before the trial, otherwise it is let go
// and the next trial needs twice the streak (up to kWindow << kMaxBackoff). The
// trial matters for a client that only looks serial: one that keeps its CPU busy
// producing requests (fio at QD16 on loopback, the server answering each before
// the next arrives) runs slower sharing its CPU with the server. A request that
// does not qualify lets the connection go at once.
class FollowPolicy {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kWindow = 128;
  static constexpr int kMaxBackoff = 8;
  // Requests of a trial before it is timed (the threads move, the client may too).
  static constexpr int kSettle = 4 * kWindow;

  // trial=false: follow after the streak without timing a trial (for tests of the
  // mechanism, whose timing is not theirs to decide).
  explicit FollowPolicy(bool trial = true) : trial_(trial) {}

  // One request read; true when the threads should be on the request's CPU.
  bool Observe(bool qualifies, Clock::time_point now);

  // Qualifying requests in a row needed before the next trial.
  int needed() const { return kWindow << backoff_; }
  // The last trial's kWindow requests, and the kWindow before it (for logs).
  Clock::duration last_trial() const { return last_trial_; }
  Clock::duration last_free() const { return free_window_; }

 private:
  enum class State { kWatching, kTrying, kFollowing };
  const bool trial_;
  State state_ = State::kWatching;
  int streak_ = 0;   // qualifying requests in a row while watching
  int backoff_ = 0;  // trials failed in a row (capped)
  Clock::time_point window_start_{};
  Clock::duration free_window_{};  // the last kWindow requests' time before the trial
  int tried_ = 0;                  // requests of the trial so far
  Clock::time_point trial_start_{};
  Clock::duration last_trial_{};
};

// Keeps one connection's serving threads on the CPU its requests arrive on
// (SO_INCOMING_CPU) while the client sends one small request at a time and that
// makes them come faster (FollowPolicy), and lets them run anywhere again as soon
// as it does not.
//
// Why: a client that waits for each reply before sending the next request (QD1)
// pays for two wake-ups a request, its request waking a serving thread and the
// reply waking the client. Each one that crosses CPUs costs an inter-processor
// interrupt, and on a virtual machine a VM exit and often a halted vCPU to wake:
// ~25 us here against ~12 us for the whole request otherwise (docs/benchmarks.md,
// "4 KiB QD1 and QD16 on the Xeon host"). The CPU a request arrives on is where
// the client sent it (loopback) or where the NIC's receive queue is handled, so
// serving there makes both wake-ups local. Only serial, small requests are
// followed: with requests pipelined, or large ones whose copies the client and the
// server do at the same time, two CPUs serve better than one.
//
// Every thread of the connection is moved, not only the one reading: the others
// are woken too (the read lock's hand-off), and a wake-up onto another CPU is what
// this saves.
//
// Thread-safety: Observe() from one thread at a time (the connection's reader,
// under its read lock); AddThisThread()/RemoveThisThread() from any.
class CpuFollower {
 public:
  // Requests in a row that must arrive alone before the connection is followed.
  static constexpr int kFollowAfter = FollowPolicy::kWindow;
  // A request moving more data than this is not "small".
  static constexpr uint32_t kMaxSmallBytes = 32 << 10;

  // enabled=false: Observe() does nothing. When not following, the threads may
  // run on the CPUs the calling thread may run on now ("base": the process's
  // affinity when the connection starts); with only one there, nothing is done.
  // trial: FollowPolicy's.
  explicit CpuFollower(bool enabled, bool trial = true);
  ~CpuFollower();
  CpuFollower(const CpuFollower&) = delete;
  CpuFollower& operator=(const CpuFollower&) = delete;

  // The calling thread serves the connection from now on: it takes the CPUs the
  // connection's threads run on now (a new thread starts with its creator's).
  void AddThisThread();
  // The calling thread serves no more requests of the connection.
  void RemoveThisThread();

  // One request read. alone: no earlier request of the connection is unanswered
  // and nothing more is buffered; bytes: the data the request moves. sock: the
  // connection's socket, asked for SO_INCOMING_CPU once the requests qualify.
  void Observe(bool alone, uint32_t bytes, int sock);

 private:
  // Moves every thread to `cpu` (-1: back to base_).
  void MoveTo(int cpu);
  // The affinity for `cpu` (-1: base_).
  cpu_set_t SetFor(int cpu) const;

  bool have_base_ = false;  // enabled, and more than one CPU to run on
  cpu_set_t base_;
  FollowPolicy policy_;  // Observe()'s caller only
  int cpu_ = -1;         // Observe()'s caller only: the CPU followed, -1 none

  std::mutex mu_;
  std::vector<pid_t> threads_;  // guarded by mu_
  int applied_ = -1;            // guarded by mu_: the CPU threads_ were last set to
};

}  // namespace strata::nbd
