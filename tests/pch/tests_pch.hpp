// Precompiled header of the multi-file test programs (tests/meson.build, `cpp_pch`):
// the third-party headers nearly every test includes. Parsing them is most of a test
// file's compile time (LibTorch's ATen alone about 5 CPU seconds); precompiled once per
// program, they cut a clean build's test compiles by about half. Only external, stable
// headers belong here: the project's own headers change too often to be worth it, and
// every test still includes what it uses, so it compiles without this header as well.
// No include guard: the compiler reads it as the main file of its own compile.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>
