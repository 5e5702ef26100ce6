#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "strata/nbd/client.h"
#include "strata/storage/device_migration.h"

namespace strata::storage {

// A move's copy written into the target's move export (MoveExportCatalog) over NBD:
// a run handed out from the source's tier mapping (PutMapped) becomes one
// NBD_CMD_WRITE sent from there; other consecutive blocks that lie in the current ReadBuffer (or
// were copied into a buffer of the writer's own) become one NBD_CMD_WRITE of up to 1 MiB that
// references the buffer until its reply (no copy), a run of holes one NBD_CMD_WRITE_ZEROES;
// requests go round-robin over the connections, each pipelining up to its max_in_flight. Blocks so
// land in any order: a pass puts each block once, and Finish waits for every reply, so
// a later pass never overtakes an earlier one. The first failure fails every later Put
// and Finish (the move then fails and deletes the partial copy).
//
// Thread-compatible: one thread calls Put, ReadBuffer and Finish (the senders are
// internal).
class NbdBlockWriter final : public BlockWriter {
 public:
  // REQUIRES: !connections.empty(), 0 < block_size <= 1 MiB.
  NbdBlockWriter(std::vector<std::unique_ptr<nbd::NbdClient>> connections, uint32_t block_size);
  ~NbdBlockWriter() override;

  Status Put(uint64_t lba, const char* block) override;
  Status Finish() override;
  std::shared_ptr<char[]> ReadBuffer(size_t bytes) override;
  // Runs from the source's tier mapping that follow each other (up to 1 MiB) are one
  // NBD_CMD_WRITE sent straight from there (NbdClient::WriteGuarded under the runs'
  // pins: no copy into a buffer first).
  bool TakesMapped() const override { return true; }
  Status PutMapped(std::shared_ptr<Engine::MappedRun> run) override;

 private:
  struct Request {
    bool zero = false;
    uint64_t offset = 0;
    uint64_t length = 0;
    const char* data = nullptr;
    std::shared_ptr<char[]> owner;
    // Non-empty: the payload is these runs' bytes, one after another (data unused).
    std::vector<std::shared_ptr<Engine::MappedRun>> mapped;
  };
  // Queues `r`; waits while the queue is full.
  Status Enqueue(Request r);

  // Queues the run being built; waits while the queue is full.
  Status Send();
  void RunSender(nbd::NbdClient* conn);
  // Ends the senders once the queue is drained, then waits for every reply.
  Status Close();

  std::vector<std::unique_ptr<nbd::NbdClient>> conns_;
  const uint32_t bs_;
  // The run being built: [run_offset_, run_end_), zeroes or data at run_data_ in
  // run_owner_.
  bool pending_ = false;
  bool run_zero_ = false;
  uint64_t run_offset_ = 0;
  uint64_t run_end_ = 0;
  const char* run_data_ = nullptr;
  std::shared_ptr<char[]> run_owner_;
  std::vector<std::shared_ptr<Engine::MappedRun>> run_mapped_;  // non-empty: a mapped run
  std::shared_ptr<char[]> read_buf_;                            // the last ReadBuffer
  size_t read_buf_bytes_ = 0;
  std::shared_ptr<char[]> copy_buf_;  // where blocks from elsewhere are copied
  size_t copy_filled_ = 0;

  std::mutex mu_;
  std::condition_variable ready_cv_;  // waits on mu_: a request queued, closed or failed
  std::condition_variable room_cv_;   // waits on mu_: room in the queue, or failed
  std::deque<Request> queue_;         // guarded by mu_
  bool closed_ = false;               // guarded by mu_
  Status error_;                      // guarded by mu_: the first failure
  std::vector<std::thread> senders_;
};

}  // namespace strata::storage
