// Test Envs that change one thing: ForwardingEnv passes every call to another Env and
// hands each File it opens to Wrap, where a test puts its own File around it;
// ForwardingFile passes every call to the File it wraps, so such a File overrides only
// what it watches or holds.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "strata/common/env.h"

namespace strata::storage {

class ForwardingFile : public File {
 public:
  explicit ForwardingFile(std::unique_ptr<File> inner) : inner_(std::move(inner)) {}
  Status ReadAt(uint64_t offset, std::span<char> out) override {
    return inner_->ReadAt(offset, out);
  }
  Status WriteAt(uint64_t offset, std::span<const char> data) override {
    return inner_->WriteAt(offset, data);
  }
  Status WriteAtV(uint64_t offset, std::span<const std::span<const char>> pieces) override {
    return inner_->WriteAtV(offset, pieces);
  }
  Status Sync() override { return inner_->Sync(); }
  Result<uint64_t> Size() override { return inner_->Size(); }
  Status Truncate(uint64_t size) override { return inner_->Truncate(size); }
  const char* MapForRead(uint64_t length) override { return inner_->MapForRead(length); }
  char* MapShared(uint64_t length) override { return inner_->MapShared(length); }
  bool InMemory() override { return inner_->InMemory(); }

 private:
  std::unique_ptr<File> inner_;
};

class ForwardingEnv : public Env {
 public:
  // `inner` is only used once a call comes, so it may be a member of the derived class.
  explicit ForwardingEnv(Env* inner) : inner_(inner) {}
  Status CreateDirectories(const std::string& path) override {
    return inner_->CreateDirectories(path);
  }
  Result<PathInfo> Stat(const std::string& path) override { return inner_->Stat(path); }
  Result<std::string> ReadFile(const std::string& path) override { return inner_->ReadFile(path); }
  Status WriteFileAtomically(const std::string& path, std::string_view contents) override {
    return inner_->WriteFileAtomically(path, contents);
  }
  Result<uint64_t> FileSystemCapacity(const std::string& path) override {
    return inner_->FileSystemCapacity(path);
  }
  Result<std::unique_ptr<File>> OpenFile(const std::string& path, bool create) override {
    auto f = inner_->OpenFile(path, create);
    if (!f.ok()) return f.status();
    return Wrap(path, std::move(*f));
  }
  Status RemoveFile(const std::string& path) override { return inner_->RemoveFile(path); }
  uint64_t RandomU64() override { return inner_->RandomU64(); }

 protected:
  // The File OpenFile returns for `path`: `f` itself unless a test wraps it.
  virtual std::unique_ptr<File> Wrap(const std::string& /*path*/, std::unique_ptr<File> f) {
    return f;
  }

 private:
  Env* const inner_;
};

}  // namespace strata::storage
