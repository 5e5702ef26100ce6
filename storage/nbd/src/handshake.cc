#include "handshake.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <string_view>
#include <vector>

#include "admission.h"
#include "errors.h"
#include "socket_util.h"
#include "strata/nbd/protocol.h"
#include "tls.h"

namespace strata::nbd {

uint16_t TransmissionFlags(const storage::Volume& volume, bool structured_replies) {
  uint16_t flags = kFlagHasFlags | kFlagSendFlush | kFlagCanMultiConn;
  if (volume.read_only()) {
    flags |= kFlagReadOnly;
  } else {
    flags |= kFlagSendFua | kFlagSendTrim | kFlagSendWriteZeroes;
  }
  if (structured_replies) flags |= kFlagSendDf;
  return flags;
}

namespace {

std::string_view OptionName(uint32_t opt) {
  switch (opt) {
    case kOptExportName:
      return "NBD_OPT_EXPORT_NAME";
    case kOptAbort:
      return "NBD_OPT_ABORT";
    case kOptList:
      return "NBD_OPT_LIST";
    case kOptStartTls:
      return "NBD_OPT_STARTTLS";
    case kOptInfo:
      return "NBD_OPT_INFO";
    case kOptGo:
      return "NBD_OPT_GO";
    case kOptStructuredReply:
      return "NBD_OPT_STRUCTURED_REPLY";
    default:
      return "option";
  }
}

class Handshake {
 public:
  Handshake(int fd, std::unique_ptr<Transport>* io, storage::ClientInfo* client,
            const HandshakeConfig& config)
      : fd_(fd), io_(io), client_(*client), config_(config) {}
  ~Handshake() {
    // A slot taken for an export whose GO did not complete goes back.
    if (!slot_.empty()) config_.admission->ReleaseExport(slot_);
  }

  Result<Negotiated> Run();

 private:
  Status SendReply(uint32_t opt, uint32_t type, std::string_view data);
  // An error reply whose data is a message for the user (at most 4096 bytes).
  Status SendError(uint32_t opt, uint32_t type, std::string_view message) {
    return SendReply(opt, type, message.substr(0, kMaxStringBytes));
  }

  // NBD_OPT_INFO / NBD_OPT_GO. Sets *done when GO succeeded.
  Status HandleInfoOrGo(uint32_t opt, const std::string& data, bool* done);
  Status HandleList(const std::string& data);
  Result<Negotiated> HandleExportName(const std::string& name);
  // NBD_OPT_STARTTLS. A non-OK result ends the session (after the ACK there is no
  // way back to plaintext).
  Status HandleStartTls(const std::string& data);
  uint32_t PreferredBlockSize(const storage::Volume& volume) const;

  const int fd_;
  std::unique_ptr<Transport>* const io_;
  storage::ClientInfo& client_;
  const HandshakeConfig& config_;
  bool tls_ = false;  // NBD_OPT_STARTTLS succeeded: *io_ is the TLS session
  bool no_zeroes_ = false;
  bool structured_replies_ = false;
  Negotiated result_;
  std::string slot_;  // export whose admission slot this handshake holds
};

Status Handshake::SendReply(uint32_t opt, uint32_t type, std::string_view data) {
  char header[20];
  PutBe64(header, kOptReplyMagic);
  PutBe32(header + 8, opt);
  PutBe32(header + 12, type);
  PutBe32(header + 16, static_cast<uint32_t>(data.size()));
  iovec iov[2] = {{header, sizeof(header)}, {const_cast<char*>(data.data()), data.size()}};
  return (*io_)->SendAll(iov, data.empty() ? 1 : 2);
}

uint32_t Handshake::PreferredBlockSize(const storage::Volume& volume) const {
  // The spec: a power of two, at least 512, and no more than the maximum.
  uint32_t bs = volume.block_size() == 0 ? 4096 : std::bit_ceil(volume.block_size());
  return std::clamp<uint32_t>(bs, 512, std::max<uint32_t>(512, config_.max_payload_bytes));
}

Result<Negotiated> Handshake::Run() {
  char greeting[18];
  PutBe64(greeting, kNbdMagic);
  PutBe64(greeting + 8, kOptsMagic);
  PutBe16(greeting + 16, kFlagFixedNewstyle | kFlagNoZeroes);
  STRATA_RETURN_IF_ERROR((*io_)->SendAll(greeting, sizeof(greeting)));

  char cflags_buf[4];
  STRATA_RETURN_IF_ERROR((*io_)->RecvAll(cflags_buf, sizeof(cflags_buf)));
  uint32_t cflags = GetBe32(cflags_buf);
  if ((cflags & ~(kClientFlagFixedNewstyle | kClientFlagNoZeroes)) != 0) {
    char hex[16];
    std::snprintf(hex, sizeof(hex), "0x%08x", cflags);
    return InvalidArgumentError(std::string("client flags ") + hex +
                                " set bits this server did not offer");
  }
  if ((cflags & kClientFlagFixedNewstyle) == 0) {
    // Only fixed newstyle is served: a plain newstyle client could only send
    // NBD_OPT_EXPORT_NAME, and could not be told why anything failed.
    return FailedPreconditionError("client does not speak fixed newstyle negotiation");
  }
  no_zeroes_ = (cflags & kClientFlagNoZeroes) != 0;

  while (true) {
    if (std::chrono::steady_clock::now() > config_.deadline) {
      return Status(StatusCode::kDeadlineExceeded, "handshake not finished in time");
    }
    char hdr[16];
    STRATA_RETURN_IF_ERROR((*io_)->RecvAll(hdr, sizeof(hdr)));
    if (GetBe64(hdr) != kOptsMagic) {
      return InvalidArgumentError("option without the IHAVEOPT magic");
    }
    uint32_t opt = GetBe32(hdr + 8);
    uint32_t len = GetBe32(hdr + 12);
    if (len > config_.max_option_bytes) {
      // Skipping up to 4 GiB is not worth it: refuse and drop (a client sending
      // that much option data is not one we can serve).
      if (opt != kOptExportName) {
        (void)SendError(opt, kRepErrTooBig,
                        "option data of " + std::to_string(len) + " bytes exceeds the limit of " +
                            std::to_string(config_.max_option_bytes));
      }
      return ResourceExhaustedError("option " + std::to_string(opt) + " has " +
                                    std::to_string(len) + " bytes of data, over the limit");
    }
    std::string data(len, '\0');
    STRATA_RETURN_IF_ERROR((*io_)->RecvAll(data.data(), len));

    if (config_.stopping->load(std::memory_order_relaxed) && opt != kOptAbort) {
      if (opt == kOptExportName) return UnavailableError("server is shutting down");
      STRATA_RETURN_IF_ERROR(SendError(opt, kRepErrShutdown, "server is shutting down"));
      continue;
    }

    if (config_.tls_mode == NbdTlsMode::kRequire && !tls_ && opt != kOptStartTls &&
        opt != kOptAbort) {
      // FORCEDTLS: nothing but STARTTLS and ABORT before TLS; EXPORT_NAME cannot
      // be answered with an error, so it ends the session.
      if (opt == kOptExportName) {
        return PermissionDeniedError(
            "NBD_OPT_EXPORT_NAME before NBD_OPT_STARTTLS: TLS is required");
      }
      STRATA_RETURN_IF_ERROR(SendError(
          opt, kRepErrTlsReqd,
          std::string(OptionName(opt)) + ": this server requires TLS (NBD_OPT_STARTTLS) first"));
      continue;
    }

    switch (opt) {
      case kOptExportName:
        return HandleExportName(data);
      case kOptAbort:
        // The spec: reply ACK; the client may already have closed, so errors are moot.
        (void)SendReply(opt, kRepAck, {});
        return Status(StatusCode::kCancelled, "client aborted the handshake");
      case kOptList:
        STRATA_RETURN_IF_ERROR(HandleList(data));
        break;
      case kOptStartTls:
        STRATA_RETURN_IF_ERROR(HandleStartTls(data));
        break;
      case kOptInfo:
      case kOptGo: {
        bool done = false;
        STRATA_RETURN_IF_ERROR(HandleInfoOrGo(opt, data, &done));
        if (done) return std::move(result_);
        break;
      }
      case kOptStructuredReply:
        if (!data.empty()) {
          STRATA_RETURN_IF_ERROR(
              SendError(opt, kRepErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data"));
        } else if (structured_replies_) {
          STRATA_RETURN_IF_ERROR(
              SendError(opt, kRepErrInvalid, "structured replies are already negotiated"));
        } else {
          structured_replies_ = true;
          STRATA_RETURN_IF_ERROR(SendReply(opt, kRepAck, {}));
        }
        break;
      default:
        // Including NBD_OPT_LIST_META_CONTEXT / SET_META_CONTEXT: no block status.
        STRATA_RETURN_IF_ERROR(
            SendError(opt, kRepErrUnsup, "option " + std::to_string(opt) + " is not supported"));
        break;
    }
  }
}

Status Handshake::HandleStartTls(const std::string& data) {
  if (!data.empty())
    return SendError(kOptStartTls, kRepErrInvalid, "NBD_OPT_STARTTLS takes no data");
  if (tls_) return SendError(kOptStartTls, kRepErrInvalid, "TLS is already negotiated");
  if (config_.tls_mode == NbdTlsMode::kOff || config_.tls == nullptr) {
    return SendError(kOptStartTls, kRepErrPolicy, "TLS is not offered by this server");
  }
  std::shared_ptr<SSL_CTX> ctx = config_.tls->Current();
  STRATA_RETURN_IF_ERROR(SendReply(kOptStartTls, kRepAck, {}));
  std::vector<std::string> identities;
  STRATA_ASSIGN_OR_RETURN(
      std::unique_ptr<Transport> tls,
      AcceptTls(fd_, std::move(ctx), config_.deadline, config_.send_timeout, &identities));
  // The rest of the handshake keeps its deadline.
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      config_.deadline - std::chrono::steady_clock::now());
  STRATA_RETURN_IF_ERROR(tls->SetReceiveTimeout(std::max(left, std::chrono::milliseconds(1))));
  *io_ = std::move(tls);
  tls_ = true;
  client_.identities = std::move(identities);
  // Options before TLS were open to tampering: start over.
  structured_replies_ = false;
  return Status::Ok();
}

Result<Negotiated> Handshake::HandleExportName(const std::string& name) {
  // NBD_OPT_EXPORT_NAME cannot be answered with an error: a refusal is a disconnect.
  if (name.size() > kMaxStringBytes) {
    return InvalidArgumentError("export name longer than 4096 bytes");
  }
  auto volume = config_.catalog->Open(name, client_);
  if (!volume.ok()) return volume.status().WithContext("export '" + name + "'");
  if (config_.admission != nullptr) {
    std::string why;
    if (!config_.admission->AdmitExport(name, &why)) return ResourceExhaustedError(why);
    slot_ = name;
  }
  result_.volume = std::move(volume).value();
  result_.export_name = name;
  result_.size_bytes = result_.volume->size_bytes();
  result_.structured_replies = structured_replies_;
  result_.transmission_flags = TransmissionFlags(*result_.volume, structured_replies_);
  std::string reply = Be64(result_.size_bytes) + Be16(result_.transmission_flags);
  if (!no_zeroes_) reply.append(124, '\0');
  STRATA_RETURN_IF_ERROR((*io_)->SendAll(reply.data(), reply.size()));
  result_.holds_export_slot = !slot_.empty();
  slot_.clear();
  return std::move(result_);
}

Status Handshake::HandleList(const std::string& data) {
  if (!data.empty()) return SendError(kOptList, kRepErrInvalid, "NBD_OPT_LIST takes no data");
  for (const storage::ExportInfo& e : config_.catalog->List(client_)) {
    if (e.name.size() > kMaxStringBytes) continue;
    std::string payload = Be32(static_cast<uint32_t>(e.name.size())) + e.name;
    payload.append(e.description.substr(0, kMaxStringBytes));
    STRATA_RETURN_IF_ERROR(SendReply(kOptList, kRepServer, payload));
  }
  return SendReply(kOptList, kRepAck, {});
}

Status Handshake::HandleInfoOrGo(uint32_t opt, const std::string& data, bool* done) {
  // Data: u32 name length, name, u16 number of requests, u16 x n requests.
  if (data.size() < 6) {
    return SendError(opt, kRepErrInvalid, std::string(OptionName(opt)) + ": data too short");
  }
  uint32_t name_len = GetBe32(data.data());
  if (name_len > data.size() - 6) {
    return SendError(opt, kRepErrInvalid,
                     std::string(OptionName(opt)) + ": name length exceeds the option data");
  }
  if (name_len > kMaxStringBytes) {
    return SendError(opt, kRepErrInvalid,
                     std::string(OptionName(opt)) + ": export name longer than 4096 bytes");
  }
  std::string name = data.substr(4, name_len);
  uint16_t nreq = GetBe16(data.data() + 4 + name_len);
  if (data.size() != 4 + name_len + 2 + size_t{nreq} * 2) {
    return SendError(opt, kRepErrInvalid,
                     std::string(OptionName(opt)) +
                         ": information request count does not match the option length");
  }
  bool want_name = false;
  bool want_description = false;
  for (uint16_t i = 0; i < nreq; ++i) {
    uint16_t req = GetBe16(data.data() + 4 + name_len + 2 + 2 * i);
    if (req == kInfoName) want_name = true;
    if (req == kInfoDescription) want_description = true;
    // NBD_INFO_BLOCK_SIZE is always sent; unknown requests are ignored (spec).
  }

  auto opened = config_.catalog->Open(name, client_);
  if (!opened.ok()) {
    return SendError(opt, OptionErrorFromStatus(opened.status()),
                     "export '" + name + "': " + opened.status().message());
  }
  std::shared_ptr<storage::Volume> volume = std::move(opened).value();
  if (opt == kOptGo && config_.admission != nullptr) {
    std::string why;
    if (!config_.admission->AdmitExport(name, &why)) {
      return SendError(opt, kRepErrPolicy, why);
    }
    slot_ = name;
  }
  uint64_t size = volume->size_bytes();
  uint16_t flags = TransmissionFlags(*volume, structured_replies_);

  std::string info = Be16(kInfoExport) + Be64(size) + Be16(flags);
  STRATA_RETURN_IF_ERROR(SendReply(opt, kRepInfo, info));
  // Block sizes: any byte range works (minimum 1); the volume's block is preferred;
  // the maximum is the largest payload we accept.
  std::string bs = Be16(kInfoBlockSize) + Be32(1) + Be32(PreferredBlockSize(*volume)) +
                   Be32(config_.max_payload_bytes);
  STRATA_RETURN_IF_ERROR(SendReply(opt, kRepInfo, bs));
  if (want_name) {
    STRATA_RETURN_IF_ERROR(SendReply(opt, kRepInfo, Be16(kInfoName) + name));
  }
  if (want_description) {
    for (const storage::ExportInfo& e : config_.catalog->List(client_)) {
      if (e.name == name && !e.description.empty()) {
        STRATA_RETURN_IF_ERROR(SendReply(
            opt, kRepInfo, Be16(kInfoDescription) + e.description.substr(0, kMaxStringBytes)));
        break;
      }
    }
  }
  STRATA_RETURN_IF_ERROR(SendReply(opt, kRepAck, {}));
  if (opt == kOptGo) {
    result_.volume = std::move(volume);
    result_.export_name = std::move(name);
    result_.size_bytes = size;
    result_.transmission_flags = flags;
    result_.structured_replies = structured_replies_;
    result_.holds_export_slot = !slot_.empty();
    slot_.clear();
    *done = true;
  }
  return Status::Ok();
}

}  // namespace

Result<Negotiated> RunHandshake(int fd, std::unique_ptr<Transport>* io, storage::ClientInfo* client,
                                const HandshakeConfig& config) {
  Handshake h(fd, io, client, config);
  return h.Run();
}

}  // namespace strata::nbd
