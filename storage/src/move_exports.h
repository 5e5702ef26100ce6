#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"
#include "strata/storage/engine.h"
#include "strata/storage/volume.h"

namespace strata::storage {

// The NBD exports a device move writes its bulk data into on the target: one per
// incoming LUN (a move's copy, not exported otherwise), named
// "move/<lun>/<32 hex digits>": a random 128-bit token (getrandom) that only the
// caller of OpenMoveExport learns (LUN names cannot hold '/', so no LUN export can
// take such a name). Every other name goes to the engine, as before.
//
// A move export's writes are the move's copy, not client I/O: each runs at the copy
// priority (CopyThreadScope) after Engine::YieldToClients with its bytes (as
// WriteLunData's background messages), and is not recorded into the LUN's I/O
// statistics (the export has its own). List never shows move exports.
//
// Tokens live in memory only (an incoming LUN is itself dropped when the engine
// opens) and die with Revoke (AcceptLun, DeleteLun): later Opens get NOT_FOUND and
// connections already open get UNAVAILABLE on their next request. A token also dies
// when its LUN is no longer the incoming LUN it was given for (deleted and created
// again). Thread-safe.
class MoveExportCatalog final : public ExportCatalog {
 public:
  static constexpr std::string_view kPrefix = "move/";

  explicit MoveExportCatalog(Engine* engine) : engine_(engine) {}

  // The export name for incoming LUN `lun` with WWN `wwn`; the same name again while
  // the token lives (idempotent). NOT_FOUND naming `name` without the LUN;
  // FAILED_PRECONDITION naming `name` when it is not incoming, naming `wwn` when its
  // WWN differs; INVALID_ARGUMENT for an empty field.
  Result<std::string> OpenMoveExport(const std::string& lun, const std::string& wwn);
  // Every token of `lun` dies.
  void Revoke(const std::string& lun);

  std::vector<ExportInfo> List(const ClientInfo& client) override;
  Result<std::shared_ptr<Volume>> Open(std::string_view name, const ClientInfo& client) override;

 private:
  struct Grant {
    std::string token;
    uint64_t lun_id = 0;
    std::string wwn;
    std::shared_ptr<std::atomic<bool>> live;
  };

  Engine* const engine_;
  std::mutex mu_;
  std::map<std::string, Grant> grants_;  // by LUN name; guarded by mu_
};

}  // namespace strata::storage
