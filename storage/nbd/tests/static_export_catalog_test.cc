#include "strata/nbd/testing/static_export_catalog.h"

#include <gtest/gtest.h>

#include "strata/nbd/testing/mem_volume.h"

namespace strata::nbd {
namespace {

storage::ClientInfo Client(std::string ip) { return {std::move(ip), "127.0.0.1:10809"}; }

TEST(NbdStaticExportCatalogTest, OpenEnforcesTheAccessList) {
  StaticExportCatalog cat;
  auto v = std::make_shared<MemVolume>(4096);
  cat.Add("open", v);
  cat.Add("closed", v, {"10.0.0.1", "::1"}, "restricted");
  EXPECT_TRUE(cat.Open("open", Client("192.168.1.1")).ok());
  EXPECT_TRUE(cat.Open("closed", Client("::1")).ok());
  auto denied = cat.Open("closed", Client("127.0.0.1"));
  EXPECT_EQ(denied.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(cat.Open("nope", Client("::1")).status().code(), StatusCode::kNotFound);
}

TEST(NbdStaticExportCatalogTest, ListShowsWhatTheClientMayOpen) {
  StaticExportCatalog cat;
  cat.Add("b", std::make_shared<MemVolume>(8192), {}, "bee");
  cat.Add("a", std::make_shared<MemVolume>(4096), {"10.0.0.1"});
  auto all = cat.List(Client("10.0.0.1"));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "a");
  EXPECT_EQ(all[1].name, "b");
  EXPECT_EQ(all[1].description, "bee");
  EXPECT_EQ(all[1].size_bytes, 8192u);
  EXPECT_EQ(cat.List(Client("10.0.0.2")).size(), 1u);
}

TEST(NbdStaticExportCatalogTest, UnavailableAndRemoved) {
  StaticExportCatalog cat;
  cat.Add("x", std::make_shared<MemVolume>(4096));
  cat.SetUnavailable("x", true);
  EXPECT_EQ(cat.Open("x", Client("1.2.3.4")).status().code(), StatusCode::kUnavailable);
  cat.SetUnavailable("x", false);
  EXPECT_TRUE(cat.Open("x", Client("1.2.3.4")).ok());
  cat.Remove("x");
  EXPECT_EQ(cat.Open("x", Client("1.2.3.4")).status().code(), StatusCode::kNotFound);
  cat.Remove("x");  // removing what is gone is fine
}

}  // namespace
}  // namespace strata::nbd
