#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "strata/storage/engine.h"

namespace strata::storage {
namespace {

// An address as 16 bytes (IPv4 as IPv4-mapped IPv6), so one comparison covers both.
bool ParseIp(const std::string& text, unsigned char out[16], bool* v4) {
  in_addr a4{};
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    std::memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    std::memcpy(out + 12, &a4, 4);
    *v4 = true;
    return true;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
    std::memcpy(out, &a6, 16);
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    *v4 = std::memcmp(out, kMapped, 12) == 0;
    return true;
  }
  return false;
}

// Parses "IP" or "IP/BITS" into a 128-bit prefix.
bool ParseEntry(const std::string& entry, unsigned char net[16], int* bits) {
  size_t slash = entry.find('/');
  bool v4 = false;
  if (!ParseIp(entry.substr(0, slash), net, &v4)) return false;
  int max_bits = v4 ? 32 : 128;
  if (slash == std::string::npos) {
    *bits = 128;
    return true;
  }
  std::string b = entry.substr(slash + 1);
  if (b.empty() || b.size() > 3 || b.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  int n = std::stoi(b);
  if (n > max_bits) return false;
  *bits = v4 ? n + 96 : n;
  return true;
}

bool PrefixMatch(const unsigned char a[16], const unsigned char b[16], int bits) {
  int full = bits / 8;
  if (std::memcmp(a, b, static_cast<size_t>(full)) != 0) return false;
  int rest = bits % 8;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

}  // namespace

Status ValidateAllowedClients(const std::vector<std::string>& allowed) {
  for (size_t i = 0; i < allowed.size(); ++i) {
    const std::string& e = allowed[i];
    if (e == "*") continue;
    unsigned char net[16];
    int bits = 0;
    if (!ParseEntry(e, net, &bits)) {
      return InvalidArgumentError("allowed_clients[" + std::to_string(i) + "]: '" + e +
                                  "' is not '*', an IP address or a CIDR (e.g. 10.0.0.0/24)");
    }
  }
  return Status::Ok();
}

Status ValidateAllowedIdentities(const std::vector<std::string>& allowed) {
  for (size_t i = 0; i < allowed.size(); ++i) {
    const std::string& e = allowed[i];
    auto bad = [&](const std::string& why) {
      return InvalidArgumentError("allowed_identities[" + std::to_string(i) + "]: '" +
                                  e.substr(0, 80) + "' " + why);
    };
    size_t prefix = 0;
    for (const char* p : {"CN=", "DNS:", "URI:"}) {
      if (e.rfind(p, 0) == 0) prefix = std::strlen(p);
    }
    if (prefix == 0) {
      return bad("is not CN=NAME, DNS:NAME or URI:URI (a certificate's subject CN or SAN)");
    }
    if (e.size() == prefix) return bad("names nothing after its prefix");
    if (e.size() > 1024) return bad("is longer than 1024 bytes");
    for (unsigned char c : e) {
      if (c < 0x20 || c == 0x7f) return bad("has a control character");
    }
  }
  return Status::Ok();
}

bool AccessAllowed(const std::vector<std::string>& allowed_clients,
                   const std::vector<std::string>& allowed_identities, const ClientInfo& client) {
  if (allowed_identities.empty()) return ClientAllowed(allowed_clients, client.peer_address);
  bool identity_ok = false;
  for (const std::string& id : client.identities) {
    for (const std::string& a : allowed_identities) identity_ok = identity_ok || id == a;
  }
  if (!identity_ok) return false;
  return allowed_clients.empty() || ClientAllowed(allowed_clients, client.peer_address);
}

bool ClientAllowed(const std::vector<std::string>& allowed, const std::string& client_ip) {
  unsigned char ip[16];
  bool v4 = false;
  bool have_ip = ParseIp(client_ip, ip, &v4);
  for (const std::string& e : allowed) {
    if (e == "*") return true;
    unsigned char net[16];
    int bits = 0;
    if (have_ip && ParseEntry(e, net, &bits) && PrefixMatch(ip, net, bits)) return true;
  }
  return false;
}

}  // namespace strata::storage
