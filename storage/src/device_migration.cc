#include "strata/storage/device_migration.h"

namespace strata::storage {
namespace {

// One pass. `hash_range_bytes`: the full pass also hashes what it reads, for the
// verification (Engine::ExportPass).
Status Copy(Engine* engine, const std::string& name, RemoteDevice* remote, uint32_t bs,
            bool all_blocks, uint64_t hash_range_bytes, const std::atomic<bool>* cancel) {
  STRATA_ASSIGN_OR_RETURN(auto writer, remote->OpenWriter(name, bs));
  auto pass = engine->ExportPass(
      name, all_blocks,
      [&](uint64_t lba, const char* block) {
        if (cancel && cancel->load()) return Status(StatusCode::kCancelled, "cancelled");
        return writer->Put(lba, block);
      },
      hash_range_bytes, [&](size_t bytes) { return writer->ReadBuffer(bytes); },
      writer->TakesMapped() ? Engine::MappedSink([&](std::shared_ptr<Engine::MappedRun> run) {
        if (cancel && cancel->load()) return Status(StatusCode::kCancelled, "cancelled");
        return writer->PutMapped(std::move(run));
      })
                            : Engine::MappedSink());
  Status finish = writer->Finish();
  if (!pass.ok()) return pass.status();
  return finish;
}

}  // namespace

Status BeginLunMoveToDevice(Engine* engine, const std::string& name,
                            const std::string& target_address) {
  STRATA_ASSIGN_OR_RETURN(LunInfo lun, engine->GetLun(name));
  if (!lun.moved_to.empty()) {
    return FailedPreconditionError("LUN '" + name + "' already moved to " + lun.moved_to);
  }
  return engine->StartExport(name, target_address);
}

Status RunLunMoveToDevice(Engine* engine, const std::string& name, RemoteDevice* remote,
                          const DeviceMoveOptions& options, const std::atomic<bool>* cancel) {
  // From here on, a failure must undo: the source stays authoritative, and a
  // partial copy we created on the target goes away.
  bool created = false;
  auto fail = [&](const Status& s) {
    engine->AbortExport(name, s);
    if (created) (void)remote->DeleteLun(name);
    return s;
  };
  auto lun = engine->GetLun(name);
  if (!lun.ok()) return fail(lun.status());
  auto existing = remote->LunWwn(name);
  if (!existing.ok()) return fail(existing.status());
  if (*existing && **existing != lun->wwn) {
    return fail(AlreadyExistsError("device " + remote->address() + " already has a LUN '" + name +
                                   "' (WWN " + **existing + ")"));
  }
  if (*existing) {
    Status s = remote->DeleteLun(name);
    if (!s.ok()) return fail(s.WithContext("remove leftover"));
  }

  LunSpec spec;
  spec.name = lun->name;
  spec.size_bytes = lun->size_bytes;
  spec.tier = options.target_tier;
  spec.dedup = lun->dedup;
  spec.owner = lun->owner;
  spec.allowed_clients = lun->allowed_clients;
  spec.allowed_identities = lun->allowed_identities;
  spec.wwn = lun->wwn;
  spec.metadata = lun->metadata;
  Status s = remote->CreateLun(spec);
  if (!s.ok()) return fail(s.WithContext("create on " + remote->address()));
  created = true;

  auto vol = engine->OpenVolume(name);
  if (!vol.ok()) return fail(vol.status());
  const uint32_t bs = (*vol)->block_size();

  s = Copy(engine, name, remote, bs, /*all_blocks=*/true,
           options.verify ? options.verify_range_bytes : 0, cancel);
  for (int pass = 1; s.ok() && pass < options.max_passes; ++pass) {
    if (engine->ExportDirtyBlocks(name) <= options.switch_threshold_blocks) break;
    s = Copy(engine, name, remote, bs, /*all_blocks=*/false, 0, cancel);
  }
  if (!s.ok()) return fail(s);
  if (cancel && cancel->load()) return fail(Status(StatusCode::kCancelled, "cancelled"));

  auto writer = remote->OpenWriter(name, bs);
  if (!writer.ok()) return fail(writer.status());
  s = engine->CompleteExport(
      name, remote->OpenVolume(name),
      [&](uint64_t lba, const char* block) { return (*writer)->Put(lba, block); },
      [&]() -> Status {
        STRATA_RETURN_IF_ERROR((*writer)->Finish());
        return remote->Flush(name);
      },
      options.verify
          ? Engine::RangeChecksums([&](uint64_t range_bytes, uint64_t offset, uint64_t length) {
              return remote->LunChecksums(name, range_bytes, offset, length);
            })
          : Engine::RangeChecksums(),
      options.verify_range_bytes, [&]() { return remote->AcceptLun(name, lun->wwn); });
  if (!s.ok()) return fail(s);
  return Status::Ok();
}

Status MoveLunToDevice(Engine* engine, const std::string& name, RemoteDevice* remote,
                       const DeviceMoveOptions& options, const std::atomic<bool>* cancel) {
  STRATA_RETURN_IF_ERROR(BeginLunMoveToDevice(engine, name, remote->address()));
  return RunLunMoveToDevice(engine, name, remote, options, cancel);
}

}  // namespace strata::storage
