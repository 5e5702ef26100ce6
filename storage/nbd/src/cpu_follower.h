#pragma once

#include <sched.h>
#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <vector>

namespace strata::nbd {

// Keeps one connection's serving threads on the CPU its requests arrive on
// (SO_INCOMING_CPU) while the client sends one small request at a time, and lets
// them run anywhere again as soon as it does not.
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
  static constexpr int kFollowAfter = 64;
  // A request moving more data than this is not "small".
  static constexpr uint32_t kMaxSmallBytes = 32 << 10;

  // enabled=false: Observe() does nothing. When not following, the threads may
  // run on the CPUs the calling thread may run on now ("base": the process's
  // affinity when the connection starts); with only one there, nothing is done.
  explicit CpuFollower(bool enabled);
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

  // The CPU the threads are kept on; -1 when they may run on any of base's.
  int cpu() const { return cpu_; }
  // Times the connection's threads were moved (onto a CPU, or back to all).
  uint64_t moves() const { return moves_; }

 private:
  // Moves every thread to `cpu` (-1: back to base_).
  void MoveTo(int cpu);
  // The affinity for `cpu` (-1: base_).
  cpu_set_t SetFor(int cpu) const;

  const bool enabled_;
  bool have_base_ = false;
  cpu_set_t base_;
  int streak_ = 0;      // Observe()'s caller only
  int cpu_ = -1;        // Observe()'s caller only, read under mu_ by AddThisThread
  uint64_t moves_ = 0;  // Observe()'s caller only

  std::mutex mu_;
  std::vector<pid_t> threads_;  // guarded by mu_
  int applied_ = -1;            // guarded by mu_: the CPU threads_ were last set to
};

}  // namespace strata::nbd
