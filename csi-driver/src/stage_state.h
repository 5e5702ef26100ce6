#pragma once

// What NodeStageVolume built for one volume, saved in a file inside its
// staging_target_path so that unstage, the path checker and a restarted plugin tear
// down or check exactly that. Written atomically (WriteFileAtomically: temp file,
// fsync, rename, fsync of the directory): a crash leaves the old state or the new.

#include <cstdint>
#include <string>
#include <vector>

#include "strata/common/result.h"
#include "strata/common/status.h"

namespace strata::csi {

// The name of the state file inside staging_target_path.
inline constexpr char kStageStateFile[] = "strata-stage";

// One path: a kernel nbd device connected to one portal.
struct StagePath {
  int nbd = -1;
  std::string dev;  // MAJ:MIN
  std::string portal;
};

struct StageState {
  std::string volume_id;
  std::string dm_name;
  std::string export_name;
  std::string device_address;  // the device's management address ("" = unknown)
  std::string fs_type;         // empty: a block volume
  bool readonly = false;       // the dm device refuses writes
  uint64_t size = 0;
  std::vector<StagePath> paths;
  // Portals that did not answer at stage time: the checker connects them later.
  std::vector<std::string> missing;
};

// STAGING/strata-stage.
std::string StageStatePath(const std::string& staging);

// The text form: one "key value..." line per field, one "path NBD MAJ:MIN PORTAL" per
// path, one "missing PORTAL" per missing portal.
std::string FormatStageState(const StageState& st);
// INTERNAL naming `where` when there is no dm name.
Result<StageState> ParseStageState(const std::string& text, const std::string& where);

// NOT_FOUND when there is no state file.
Result<StageState> ReadStageState(const std::string& staging);
Status WriteStageState(const std::string& staging, const StageState& st);

}  // namespace strata::csi
