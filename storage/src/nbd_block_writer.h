#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "strata/nbd/client.h"
#include "strata/storage/device_migration.h"

namespace strata::storage {

// A move's copy written into the target's move export (MoveExportCatalog) over NBD:
// consecutive blocks that lie in the current ReadBuffer (or were copied into a buffer
// of the writer's own) become one NBD_CMD_WRITE of up to 1 MiB that references the
// buffer until its reply (no copy), a run of holes one NBD_CMD_WRITE_ZEROES; requests go
// round-robin over the connections, each pipelining up to its max_in_flight. Blocks so
// land in any order: a pass puts each block once, and Finish waits for every reply, so
// a later pass never overtakes an earlier one. The first failure fails every later Put
// and Finish (the move then fails and deletes the partial copy).
//
// Thread-compatible: one thread calls Put, ReadBuffer and Finish.
class NbdBlockWriter final : public BlockWriter {
 public:
  // REQUIRES: !connections.empty(), 0 < block_size <= 1 MiB.
  NbdBlockWriter(std::vector<std::unique_ptr<nbd::NbdClient>> connections, uint32_t block_size);
  ~NbdBlockWriter() override;

  Status Put(uint64_t lba, const char* block) override;
  Status Finish() override;
  std::shared_ptr<char[]> ReadBuffer(size_t bytes) override;

 private:
  Status Send();

  std::vector<std::unique_ptr<nbd::NbdClient>> conns_;
  const uint32_t bs_;
  size_t next_conn_ = 0;
  // The run being built: [run_offset_, run_end_), zeroes or data at run_data_ in
  // run_owner_.
  bool pending_ = false;
  bool run_zero_ = false;
  uint64_t run_offset_ = 0;
  uint64_t run_end_ = 0;
  const char* run_data_ = nullptr;
  std::shared_ptr<char[]> run_owner_;
  std::shared_ptr<char[]> read_buf_;  // the last ReadBuffer
  size_t read_buf_bytes_ = 0;
  std::shared_ptr<char[]> copy_buf_;  // where blocks from elsewhere are copied
  size_t copy_filled_ = 0;
  Status error_;
  bool finished_ = false;
};

}  // namespace strata::storage
