#include "ood/data/dataset_params.hpp"

namespace ood::data {

ParamSpec root_param(const std::string& doc) {
  return ParamSpec::path("root", doc + "; default: $OOD_DATA_DIR, else ~/.cache/ood/data").optional();
}

ParamSpec download_param() {
  return ParamSpec::boolean("download", "download, verify and extract the data when it is missing")
      .default_value(false);
}

std::filesystem::path dataset_root(const Params& params, const Context& context) {
  return params.has("root") ? params.get_path("root") : context.data_root();
}

}  // namespace ood::data
