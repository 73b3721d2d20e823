#include "ood/log.hpp"

#include <spdlog/spdlog.h>

namespace ood::log {

// spdlog's default logger lives in libspdlog, shared by the host and every plugin,
// so plugin messages follow the host's level and format.
void debug(std::string_view message) { spdlog::debug("{}", message); }
void info(std::string_view message) { spdlog::info("{}", message); }
void warn(std::string_view message) { spdlog::warn("{}", message); }
void error(std::string_view message) { spdlog::error("{}", message); }

}  // namespace ood::log
