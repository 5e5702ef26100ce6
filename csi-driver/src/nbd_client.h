#pragma once

// The userspace half of the node plugin's kernel NBD attach: dial a portal and run the
// fixed-newstyle handshake up to NBD_OPT_GO, leaving a socket in the transmission phase
// for the kernel's nbd driver (NBD_CMD_CONNECT / NBD_CMD_RECONFIGURE take it over).
// Wire constants are storage/nbd's (strata/nbd/protocol.h).

#include <chrono>
#include <cstdint>
#include <string>

#include "strata/common/fd.h"
#include "strata/common/result.h"
#include "strata/csi/node_host.h"

namespace strata::csi {

// What NBD_REP_INFO / NBD_INFO_EXPORT announced.
struct NbdExportInfo {
  uint64_t size = 0;   // bytes
  uint16_t flags = 0;  // transmission flags
};

// How long dialling and each handshake read or write may take.
inline constexpr std::chrono::seconds kNbdHandshakeTimeout{10};

// A TCP connection to `portal` ("HOST:PORT", "[V6]:PORT", parsed with ParseHostPort),
// TCP_NODELAY, with send/receive timeouts of kNbdHandshakeTimeout. INVALID_ARGUMENT
// naming the portal when it is not HOST:PORT.
Result<Fd> DialNbdPortal(const std::string& portal);

// Fixed newstyle handshake on `fd` ending in NBD_OPT_GO for `export_name` (no
// information requests). NOT_FOUND when the server refuses the export (unknown, or no
// access); UNAVAILABLE for a server that is not fixed newstyle or breaks the protocol.
//
// With `tls.require`: NBD_OPT_STARTTLS first, the TLS handshake (nbd_tls_client.h; `host`
// must match the device's certificate), NBD_OPT_GO over TLS, then kernel TLS confirmed on
// both directions; FAILED_PRECONDITION when the device does not offer TLS or kTLS is not
// on. Without: FAILED_PRECONDITION when the device requires TLS (NBD_REP_ERR_TLS_REQD).
Result<NbdExportInfo> NbdHandshake(int fd, const std::string& export_name,
                                   const std::string& host = "", const NbdClientTls& tls = {});

// DialNbdPortal + NbdHandshake, the socket then without timeouts (the kernel keeps its
// own, NBD_ATTR_TIMEOUT).
Result<Fd> OpenNbdExport(const std::string& portal, const std::string& export_name,
                         const NbdClientTls& tls, NbdExportInfo* info);

}  // namespace strata::csi
