#pragma once
// Logging for plugins, routed to the host's logger (level and format set by `ood
// --log-level`). Plugins need no logging library of their own.
#include <string_view>

#include "ood/export.hpp"

namespace ood::log {

OOD_SDK_API void debug(std::string_view message);
OOD_SDK_API void info(std::string_view message);
OOD_SDK_API void warn(std::string_view message);
OOD_SDK_API void error(std::string_view message);

}  // namespace ood::log
