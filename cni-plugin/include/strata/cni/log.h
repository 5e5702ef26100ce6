#pragma once

#include <string_view>

namespace strata::cni {

// Warnings on stderr (the spec keeps stdout for results). The plugin does not use spdlog: a CNI
// plugin is a process per call, and not loading spdlog/fmt shortens every call's start-up.
void LogWarning(std::string_view message);

}  // namespace strata::cni
