// A scratch directory for a test: made fresh under `parent` (by default $TMPDIR, or
// /tmp) and removed with everything in it when the TempDir goes.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace strata::testing {

class TempDir {
 public:
  // `prefix` names the directory (prefix-XXXXXX) so a leftover says whose it was.
  explicit TempDir(std::string_view prefix = "strata-test", std::string_view parent = {}) {
    const char* tmp = std::getenv("TMPDIR");
    std::string base = !parent.empty() ? std::string(parent) : tmp && *tmp ? tmp : "/tmp";
    std::string tmpl = base + "/" + std::string(prefix) + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = std::move(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Empty if the directory could not be made (check it: ASSERT_FALSE(dir.path().empty())).
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace strata::testing
