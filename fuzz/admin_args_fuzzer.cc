// strata-admin's size and address arguments: --size (ParseSize), --server and --to-device
// (ParseHostPort), --allow (the access list the device validates and matches clients against).
// Input: lines; each line is tried as every kind of argument. Beyond "no crash", each parser
// must agree with itself: a value it accepts, written back, parses to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/net_address.h"
#include "strata/common/units.h"
#include "strata/storage/engine.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "admin_args_fuzzer: %s\n", what);
    std::abort();
  }
}

void FuzzSize(std::string_view text) {
  auto size = strata::ParseSize(text);
  if (!size.ok()) {
    Check(!size.status().message().empty(), "ParseSize: an error without a message");
    return;
  }
  auto again = strata::ParseSize(std::to_string(size.value()));
  Check(again.ok() && again.value() == size.value(), "ParseSize: N bytes does not round-trip");
  (void)strata::FormatSize(size.value());
}

void FuzzHostPort(std::string_view text, bool allow_port_zero) {
  auto hp = strata::ParseHostPort(text, "--server", allow_port_zero);
  if (!hp.ok()) {
    Check(!hp.status().message().empty(), "ParseHostPort: an error without a message");
    return;
  }
  Check(allow_port_zero || hp.value().port != 0, "ParseHostPort: port 0 accepted");
  auto again = strata::ParseHostPort(hp.value().ToString(), "--server", allow_port_zero);
  Check(again.ok() && again.value() == hp.value(), "ParseHostPort: ToString does not round-trip");
}

void FuzzAllowList(std::string_view text) {
  std::vector<std::string> entries;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    entries.emplace_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  auto st = strata::storage::ValidateAllowedClients(entries);
  for (const auto& e : entries) {
    (void)strata::storage::ClientAllowed(entries, e);
    if (st.ok() && e != "*" && e.find('/') == std::string::npos) {
      Check(strata::storage::ClientAllowed({e}, e), "an allowed IP does not match itself");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  while (start <= input.size()) {
    size_t nl = input.find('\n', start);
    if (nl == std::string_view::npos) nl = input.size();
    std::string_view line = input.substr(start, nl - start);
    FuzzSize(line);
    FuzzHostPort(line, false);
    FuzzHostPort(line, true);
    FuzzAllowList(line);
    start = nl + 1;
  }
  return 0;
}
