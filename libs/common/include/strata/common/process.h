#pragma once

namespace strata {

// Makes a write to a socket or pipe whose peer has gone return EPIPE instead of killing the
// process with SIGPIPE. Every daemon and every test tool that writes to sockets calls it first
// thing in main(): a peer that disconnects (an NBD client, a test cutting a path, a CO that
// restarts) is an error to handle, never a reason for the process to die. Sockets written by
// Strata's own code also pass MSG_NOSIGNAL; this covers libraries and plain write(2) calls.
// REQUIRES: called before any thread is started (the disposition is process-wide).
void IgnoreSigpipe();

}  // namespace strata
