#include "strata/kube/store.h"

#include <gtest/gtest.h>

namespace strata::kube {
namespace {

Json Obj(const std::string& name, const std::string& rv, const std::string& ns = "") {
  Json o = {{"metadata", {{"name", name}, {"resourceVersion", rv}}}};
  if (!ns.empty()) o["metadata"]["namespace"] = ns;
  return o;
}

TEST(StoreTest, KeysAreNamespaceSlashName) {
  EXPECT_EQ(ObjectKey(Obj("a", "1")), "a");
  EXPECT_EQ(ObjectKey(Obj("a", "1", "ns")), "ns/a");
  EXPECT_EQ(SplitKey("ns/a"), std::make_pair(std::string("ns"), std::string("a")));
  EXPECT_EQ(SplitKey("a"), std::make_pair(std::string(""), std::string("a")));
}

TEST(StoreTest, UpsertReportsAddThenUpdateAndIgnoresSameVersion) {
  Store s;
  auto d = s.Upsert(Obj("a", "1"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->type, StoreDelta::Type::kAdded);
  EXPECT_FALSE(s.Upsert(Obj("a", "1"))) << "a replayed event changes nothing";
  d = s.Upsert(Obj("a", "2"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->type, StoreDelta::Type::kUpdated);
  EXPECT_EQ(ResourceVersionOf(d->old_object), "1");
  EXPECT_EQ(ResourceVersionOf(*s.Get("a")), "2");
}

TEST(StoreTest, RemoveReportsLastState) {
  Store s;
  (void)s.Upsert(Obj("a", "3"));
  auto d = s.Remove(Obj("a", "4"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->type, StoreDelta::Type::kDeleted);
  EXPECT_EQ(ResourceVersionOf(d->old_object), "3");
  EXPECT_FALSE(s.Get("a"));
  EXPECT_FALSE(s.Remove(Obj("a", "4"))) << "deleting twice is quiet";
}

TEST(StoreTest, ReplaceReportsTheDifferenceOfARelist) {
  Store s;
  (void)s.Upsert(Obj("keep", "1"));
  (void)s.Upsert(Obj("change", "1"));
  (void)s.Upsert(Obj("gone", "1"));
  auto deltas = s.Replace({Obj("keep", "1"), Obj("change", "5"), Obj("new", "6")});
  std::map<std::string, StoreDelta::Type> by_name;
  for (const auto& d : deltas) {
    const Json& o = d.type == StoreDelta::Type::kDeleted ? d.old_object : d.object;
    by_name[ObjectKey(o)] = d.type;
  }
  EXPECT_EQ(by_name.size(), 3u);
  EXPECT_EQ(by_name["change"], StoreDelta::Type::kUpdated);
  EXPECT_EQ(by_name["gone"], StoreDelta::Type::kDeleted);
  EXPECT_EQ(by_name["new"], StoreDelta::Type::kAdded);
  EXPECT_EQ(s.Keys(), (std::vector<std::string>{"change", "keep", "new"}));
}

}  // namespace
}  // namespace strata::kube
