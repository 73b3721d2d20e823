#pragma once
// The parameters every downloadable dataset shares, so that they read and default the
// same way in every plugin (pytorch-ood's `root` and `download` arguments).
#include <filesystem>
#include <string>

#include "ood/context.hpp"
#include "ood/export.hpp"
#include "ood/params.hpp"

namespace ood::data {

/// `root` (path, optional): `doc` says what it holds, e.g. "folder holding
/// cifar-10-batches-py/ (or where to download it)"; the default is appended. Default:
/// the context's data root ($OOD_DATA_DIR, else $XDG_CACHE_HOME/ood/data, else
/// ~/.cache/ood/data).
OOD_SDK_API ParamSpec root_param(const std::string& doc);

/// `download` (bool, default false): download, verify and extract missing data.
OOD_SDK_API ParamSpec download_param();

/// The `root` parameter, or `context.data_root()` when it is not given.
OOD_SDK_API std::filesystem::path dataset_root(const Params& params, const Context& context);

}  // namespace ood::data
