// A view of another dataset that keeps only some classes, optionally renumbered
// 0..k-1 in the given order, or marked as OOD (label -1) -- e.g. to hold classes out
// of training and evaluate them as outliers.
#include <ATen/ATen.h>

#include <map>
#include <set>

#include "ood/context.hpp"
#include "ood/dataset.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

class ClassFilter final : public ood::Dataset {
 public:
  ClassFilter(std::shared_ptr<ood::Dataset> base, const std::vector<std::int64_t>& classes, bool mark_ood,
              bool remap)
      : base_(std::move(base)), mark_ood_(mark_ood) {
    std::map<std::int64_t, std::int64_t> position;
    for (std::size_t i = 0; i < classes.size(); ++i) position.emplace(classes[i], static_cast<std::int64_t>(i));
    const at::Tensor all = base_->labels().to(at::kLong).contiguous();
    const auto* labels = all.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < all.numel(); ++i) {
      auto it = position.find(labels[i]);
      if (it == position.end()) continue;
      indices_.push_back(i);
      labels_.push_back(mark_ood ? -1 : remap ? it->second : labels[i]);
    }
    const auto base_info = base_->info();
    info_ = base_info;
    if (mark_ood) {
      info_.classes.clear();
    } else if (remap && !base_info.classes.empty()) {
      info_.classes.clear();
      for (std::int64_t c : classes)
        info_.classes.push_back(c >= 0 && c < static_cast<std::int64_t>(base_info.classes.size())
                                    ? base_info.classes[static_cast<std::size_t>(c)]
                                    : std::to_string(c));
    }
  }

  std::int64_t size() const override { return static_cast<std::int64_t>(indices_.size()); }
  ood::Sample get(std::int64_t index) const override {
    if (index < 0 || index >= size())
      throw ood::InvalidArgument("class-filter: index " + std::to_string(index) + " out of range");
    ood::Sample s = base_->get(indices_[static_cast<std::size_t>(index)]);
    s.target = at::scalar_tensor(labels_[static_cast<std::size_t>(index)], at::kLong);
    return s;
  }
  ood::DatasetInfo info() const override { return info_; }
  at::Tensor labels() const override { return at::tensor(labels_, at::kLong); }

 private:
  std::shared_ptr<ood::Dataset> base_;
  bool mark_ood_;
  std::vector<std::int64_t> indices_;
  std::vector<std::int64_t> labels_;
  ood::DatasetInfo info_;
};

void check_params(const ood::Params& p) {
  const auto classes = p.get_int_list("classes");
  if (std::set<std::int64_t>(classes.begin(), classes.end()).size() != classes.size())
    throw ood::InvalidArgument(p.pointer("classes") + ": classes must not repeat");
  if (p.get_bool("mark_ood") && p.get_bool("remap"))
    throw ood::InvalidArgument(p.pointer("remap") + ": remap and mark_ood exclude each other");
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "class-filter";
  info.summary = "keeps chosen classes of another dataset, optionally renumbered or marked OOD";
  info.doc =
      "Keeps the samples of `dataset` whose label is in `classes` (in the base dataset's order).\n"
      "mark_ood: every kept sample gets label -1 (evaluate held-out classes as outliers).\n"
      "remap: labels become the class's position in `classes` (0..k-1).";
  info.params = {
      ood::ParamSpec::component("dataset", ood::Kind::Dataset, "the dataset to filter"),
      ood::ParamSpec::list("classes", ood::ParamType::Int, "labels to keep").items(1),
      ood::ParamSpec::boolean("mark_ood", "give every kept sample the OOD label -1").default_value(false),
      ood::ParamSpec::boolean("remap", "renumber kept classes 0..k-1 in the order given").default_value(false),
  };
  info.check = check_params;
  registrar.add_dataset(info, [](const ood::Params& p, ood::Context& ctx) {
    check_params(p);
    return std::make_shared<ClassFilter>(ctx.make_dataset(p.get_component("dataset")), p.get_int_list("classes"),
                                         p.get_bool("mark_ood"), p.get_bool("remap"));
  });
}

}  // namespace

OOD_PLUGIN("class-filter", "Class filter dataset wrapper", register_components)
