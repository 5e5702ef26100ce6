#pragma once

#include <string>
#include <string_view>

#include "strata/common/result.h"

namespace strata {

// Replaces `path` with `contents` so that a crash at any point leaves either the
// old file or the new one, never a mix: write a temp file beside it, fsync it,
// rename it over `path`, fsync the directory (as leveldb's SetCurrentFile does).
Status WriteFileAtomically(const std::string& path, std::string_view contents);

// Reads a whole file. NOT_FOUND when it does not exist.
Result<std::string> ReadFileToString(const std::string& path);

// mkdir -p. OK when the directory already exists.
Status CreateDirectories(const std::string& path);

}  // namespace strata
