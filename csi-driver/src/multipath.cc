#include "strata/csi/multipath.h"

#include <cctype>
#include <cstdlib>
#include <sstream>

#include "strata/common/status.h"

namespace strata::csi {

std::vector<std::string> SplitPortals(std::string_view portals) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= portals.size()) {
    size_t comma = portals.find(',', start);
    if (comma == std::string_view::npos) comma = portals.size();
    std::string_view item = portals.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

Result<std::string> DmNameForWwn(std::string_view wwn, std::string_view prefix) {
  std::string name(prefix);
  bool any = false;
  for (char c : wwn) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      any = true;
    }
  }
  if (!any)
    return InvalidArgumentError("publish_context: wwn '" + std::string(wwn) + "' is not usable");
  return name;
}

std::string MultipathTable(uint64_t size_bytes, const std::vector<std::string>& devs) {
  std::string t = "0 " + std::to_string(size_bytes / 512) +
                  " multipath 1 queue_if_no_path 0 1 1 round-robin 0 " +
                  std::to_string(devs.size()) + " 1";
  for (const auto& d : devs) t += " " + d + " 1";
  return t;
}

Result<std::vector<DmPath>> ParseMultipathStatus(std::string_view status) {
  std::istringstream in{std::string(status)};
  std::vector<std::string> t;
  for (std::string w; in >> w;) t.push_back(w);
  size_t i = 0;
  auto bad = [&](const char* why) {
    return InternalError("dm multipath status '" + std::string(status) + "': " + why);
  };
  auto number = [&](uint64_t* out) {
    if (i >= t.size()) return false;
    char* end = nullptr;
    *out = std::strtoull(t[i].c_str(), &end, 10);
    if (end == t[i].c_str() || *end != '\0') return false;
    ++i;
    return true;
  };
  // start length "multipath"
  if (t.size() < 3 || t[2] != "multipath") return bad("not a multipath target");
  i = 3;
  uint64_t n = 0;
  if (!number(&n)) return bad("no feature count");  // features
  i += n;
  if (!number(&n)) return bad("no hardware handler count");
  i += n;
  uint64_t groups = 0, next_group = 0;
  if (!number(&groups) || !number(&next_group)) return bad("no path group count");
  std::vector<DmPath> paths;
  for (uint64_t g = 0; g < groups; ++g) {
    ++i;  // group state A/D/E
    if (!number(&n)) return bad("no selector status count");
    i += n;
    uint64_t npaths = 0, info_args = 0;
    if (!number(&npaths) || !number(&info_args)) return bad("no path count");
    for (uint64_t p = 0; p < npaths; ++p) {
      if (i + 3 > t.size()) return bad("truncated path");
      DmPath path;
      path.dev = t[i];
      path.active = t[i + 1] == "A";
      i += 3 + info_args;  // dev, A|F, fail count, selector info
      paths.push_back(std::move(path));
    }
  }
  if (i > t.size()) return bad("truncated");
  return paths;
}

}  // namespace strata::csi
