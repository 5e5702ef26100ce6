#include "stage_state.h"

#include <filesystem>
#include <sstream>

#include "strata/common/file_util.h"

namespace strata::csi {

std::string StageStatePath(const std::string& staging) {
  return (std::filesystem::path(staging) / kStageStateFile).string();
}

std::string FormatStageState(const StageState& st) {
  std::ostringstream out;
  out << "volume " << st.volume_id << "\ndm " << st.dm_name << "\nexport " << st.export_name
      << "\nsize " << st.size << "\n";
  if (!st.device_address.empty()) out << "device " << st.device_address << "\n";
  if (!st.fs_type.empty()) out << "fs " << st.fs_type << "\n";
  if (st.readonly) out << "readonly\n";
  for (const auto& p : st.paths) out << "path " << p.nbd << " " << p.dev << " " << p.portal << "\n";
  for (const auto& m : st.missing) out << "missing " << m << "\n";
  return out.str();
}

Result<StageState> ParseStageState(const std::string& text, const std::string& where) {
  StageState st;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string key;
    f >> key;
    if (key == "volume") {
      f >> st.volume_id;
    } else if (key == "dm") {
      f >> st.dm_name;
    } else if (key == "export") {
      f >> st.export_name;
    } else if (key == "device") {
      f >> st.device_address;
    } else if (key == "fs") {
      f >> st.fs_type;
    } else if (key == "readonly") {
      st.readonly = true;
    } else if (key == "size") {
      f >> st.size;
    } else if (key == "missing") {
      std::string portal;
      f >> portal;
      if (!portal.empty()) st.missing.push_back(portal);
    } else if (key == "path") {
      StagePath p;
      f >> p.nbd >> p.dev >> p.portal;
      if (p.nbd >= 0) st.paths.push_back(p);
    }
  }
  if (st.dm_name.empty()) return InternalError("state file " + where + ": no dm name");
  return st;
}

Result<StageState> ReadStageState(const std::string& staging) {
  const std::string path = StageStatePath(staging);
  auto text = ReadFileToString(path);
  // Any file that cannot be read counts as none (as unstaged), as it always has.
  if (!text.ok()) return NotFoundError("no state file in " + staging);
  return ParseStageState(*text, path);
}

Status WriteStageState(const std::string& staging, const StageState& st) {
  return WriteFileAtomically(StageStatePath(staging), FormatStageState(st));
}

}  // namespace strata::csi
