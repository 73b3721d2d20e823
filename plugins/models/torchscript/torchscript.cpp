// torchscript: any network exported with torch.jit (script or trace), as an ood model.
//
// The module's methods give the views; none is special-cased for one architecture:
//   logits                  forward(x)
//   features                features(x); else pool(features_before_pool(x))
//   head                    head(f); else the linear submodule named by `linear_head`
//   linear_head             that submodule's weight and bias (a torch.nn.Linear)
//   feature map             features_before_pool(x)
//   pool                    pool(map); else, when the module has forward_from_before_pool,
//                           the mean over H and W of an [N, C, H, W] map (global average
//                           pooling, the last step of ResNets, WRNs, DenseNets). The first
//                           such pooling checks head(mean(map)) against
//                           forward_from_before_pool(map), so a network that pools
//                           otherwise is refused instead of mis-scored.
// A view whose methods are missing throws ood::NotSupported naming the methods.
#include <torch/script.h>

#include <set>
#include <sstream>

#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/log.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"

namespace {

// What a module must export for a view (the error of a call and of a pipeline check).
constexpr const char* kFeaturesNeed =
    "a method 'features' (or 'features_before_pool' with 'pool' or 'forward_from_before_pool')";
constexpr const char* kPoolNeed =
    "a method 'pool' (or 'forward_from_before_pool', which confirms global average pooling)";

// What a LibTorch error says, without its backtrace: an error inside the TorchScript
// interpreter ends with the Python-style line ("RuntimeError: Given groups=1, ..."),
// other errors start with their message.
std::string torch_message(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  std::string what = c10_error ? c10_error->what_without_backtrace() : e.what();
  if (what.find("The following operation failed in the TorchScript interpreter") != std::string::npos) {
    while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
    return what.substr(what.find_last_of('\n') + 1);
  }
  return what.substr(0, what.find('\n'));
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Python class of a scripted or traced submodule, without TorchScript's
// "__torch__." prefix and "___torch_mangle_N." parts: "torch.nn.modules.linear.Linear".
std::string python_class(const torch::jit::Module& m) {
  std::string name = m.type()->name() ? m.type()->name()->qualifiedName() : "?";
  if (name.rfind("__torch__.", 0) == 0) name = name.substr(10);
  for (auto pos = name.find("___torch_mangle_"); pos != std::string::npos; pos = name.find("___torch_mangle_")) {
    const auto dot = name.find('.', pos);
    name.erase(pos, dot == std::string::npos ? std::string::npos : dot - pos + 1);
  }
  return name;
}

class TorchScriptModel final : public ood::Model {
 public:
  TorchScriptModel(std::filesystem::path file, std::optional<std::string> linear_head_name,
                   const std::string& pointer)
      : file_(std::move(file)) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file_, ec))
      throw ood::FileError(file_.string() + ": no such file (a TorchScript module, saved with torch.jit.save)");
    try {
      module_ = torch::jit::load(file_.string(), at::kCPU);
    } catch (const std::exception& e) {
      throw ood::FileError(file_.string() + ": not a readable TorchScript module (write it with torch.jit.save of a "
                                            "scripted or traced module; a state dict is not one): " +
                           torch_message(e));
    }
    module_.eval();
    for (const char* name : {"forward", "features", "head", "features_before_pool", "forward_from_before_pool", "pool"})
      find_view_method(name);
    if (!methods_.count("forward"))
      throw ood::FileError(file_.string() + ": the TorchScript module has no forward method");
    find_linear_head(linear_head_name.value_or("fc"), linear_head_name.has_value(), pointer);
    ood::log::info("torchscript: " + file_.string() + ": " + describe_views());
  }

  at::Tensor logits(const at::Tensor& inputs) override { return call("forward", inputs, "inputs"); }

  at::Tensor features(const at::Tensor& inputs) override {
    if (methods_.count("features")) return call("features", inputs, "inputs");
    if (map_poolable()) return pool(features_before_pool(inputs));
    throw missing("features", kFeaturesNeed);
  }

  at::Tensor head(const at::Tensor& features) override {
    if (methods_.count("head")) return call("head", features, "features");
    if (linear_) {
      if (features.dim() != 2 || features.size(1) != linear_weight().size(1))
        throw ood::ShapeError("torchscript: head (submodule '" + linear_name_ + "') expects features [N, " +
                              std::to_string(linear_weight().size(1)) + "], got " + ood::describe_tensor(features));
      return run(*linear_, "forward", "submodule '" + linear_name_ + "'", features);
    }
    throw missing("head", "a method 'head' or a torch.nn.Linear submodule '" + linear_name_ + "' (param linear_head)");
  }

  std::optional<ood::LinearHead> linear_head() override {
    if (!linear_) return std::nullopt;
    at::Tensor bias = linear_->attr("bias").isTensor()
                          ? linear_->attr("bias").toTensor()
                          : at::zeros({linear_weight().size(0)}, linear_weight().options());  // bias=False
    return ood::LinearHead{linear_weight(), bias};
  }

  bool has_features() const override { return methods_.count("features") || map_poolable(); }
  bool logits_from_features() const override {
    return has_features() && (methods_.count("head") || linear_);
  }
  at::Tensor logits_from_feature_map(const at::Tensor& feature_map) override {
    if (methods_.count("forward_from_before_pool")) return call("forward_from_before_pool", feature_map, "feature map");
    return head(pool(feature_map));
  }

  bool has_feature_map() const override { return map_poolable() && (methods_.count("head") || linear_); }

  std::string missing_view(View view) const override {
    const std::string head_needs =
        "a method 'head' or a torch.nn.Linear submodule '" + linear_name_ + "' (param linear_head)";
    switch (view) {
      case View::Features:
        return missing("features", kFeaturesNeed).what();
      case View::LinearHead:
        return missing("linear last layer", "a torch.nn.Linear submodule '" + linear_name_ + "' (param linear_head)")
            .what();
      case View::FeatureMap:
        if (!methods_.count("features_before_pool"))
          return missing("feature map before pooling", "a method 'features_before_pool'").what();
        if (!map_poolable()) return missing("pooling of the feature map", kPoolNeed).what();
        return missing("path from the feature map to the logits", head_needs).what();
    }
    return {};
  }

  at::Tensor features_before_pool(const at::Tensor& inputs) override {
    if (!methods_.count("features_before_pool"))
      throw missing("feature map before pooling", "a method 'features_before_pool'");
    return call("features_before_pool", inputs, "inputs");
  }

  at::Tensor pool(const at::Tensor& feature_map) override {
    if (methods_.count("pool")) return call("pool", feature_map, "feature map");
    if (!methods_.count("forward_from_before_pool"))
      throw missing("pooling of the feature map", kPoolNeed);
    if (feature_map.dim() != 4)
      throw ood::ShapeError("torchscript: " + file_.string() +
                            " has no method 'pool', and the feature map is not [N, C, H, W] for global average "
                            "pooling: " + ood::describe_tensor(feature_map) + "; export a 'pool' method");
    at::Tensor pooled = feature_map.mean({2, 3});
    if (!pool_checked_) check_mean_pool(feature_map, pooled);
    return pooled;
  }

  void set_mode(ood::ModelMode mode) override {
    mode_ = mode;
    module_.train(mode == ood::ModelMode::Train);
    if (mode != ood::ModelMode::McDropout) return;
    // Dropout on, batch norm in eval mode: only torch.nn.Dropout* submodules train. A
    // traced module has dropout compiled out (it was traced in one mode).
    int dropouts = 0;
    for (const auto& child : module_.named_modules()) {
      const std::string cls = python_class(child.value);
      if (cls.rfind("torch.nn.modules.dropout.", 0) == 0) {
        torch::jit::Module m = child.value;
        m.train(true);
        ++dropouts;
      }
    }
    if (dropouts == 0)
      ood::log::warn("torchscript: " + file_.string() +
                     " has no torch.nn.Dropout submodule: MC-dropout passes are all the same (a traced module "
                     "keeps the dropout behaviour of the mode it was traced in)");
  }
  ood::ModelMode mode() const override { return mode_; }

  void to(at::Device device) override {
    module_.to(device);
    device_ = device;
  }
  at::Device device() const override { return device_; }

  std::vector<at::Tensor> parameters() override {
    std::vector<at::Tensor> out;
    for (const auto& p : module_.parameters(/*recurse=*/true))
      if (p.requires_grad()) out.push_back(p);
    return out;
  }

  // PyTorch's state_dict order: each module's parameters, then its buffers, modules in
  // pre-order.
  ood::TensorDict state_dict() const override {
    ood::TensorDict out;
    for (const auto& item : module_.named_modules()) {
      const std::string prefix = item.name.empty() ? "" : item.name + ".";
      for (const auto& p : item.value.named_parameters(false)) out.set(prefix + p.name, p.value);
      for (const auto& b : item.value.named_buffers(false)) out.set(prefix + b.name, b.value);
    }
    return out;
  }

  void load_state_dict(const ood::TensorDict& state) override {
    const ood::TensorDict own = state_dict();
    std::vector<std::string> missing_keys, unexpected, wrong_shape;
    for (const auto& [name, tensor] : own) {
      if (!state.contains(name)) missing_keys.push_back(name);
      else if (!state.at(name).sizes().equals(tensor.sizes()))
        wrong_shape.push_back(name + " (file " + ood::describe_tensor(state.at(name)) + ", model " +
                              ood::describe_tensor(tensor) + ")");
    }
    for (const auto& [name, tensor] : state)
      if (!own.contains(name)) unexpected.push_back(name);
    if (!missing_keys.empty() || !unexpected.empty() || !wrong_shape.empty()) {
      std::ostringstream msg;
      msg << "state dict does not fit the TorchScript module " << file_.string();
      auto list = [&](const char* what, const std::vector<std::string>& names) {
        if (names.empty()) return;
        msg << "; " << names.size() << " " << what << ": ";
        for (std::size_t i = 0; i < names.size() && i < 4; ++i) msg << (i ? ", " : "") << names[i];
        if (names.size() > 4) msg << ", ...";
      };
      list("missing", missing_keys);
      list("unexpected", unexpected);
      list("with another shape", wrong_shape);
      throw ood::InvalidArgument(msg.str());
    }
    torch::NoGradGuard no_grad;
    for (const auto& [name, tensor] : own) const_cast<at::Tensor&>(tensor).copy_(state.at(name));
  }

  ood::ModelInfo info() const override {
    // Sizes are known only through the linear head (0 = unknown); the input shape is
    // not recorded in a TorchScript module.
    if (!linear_) return {0, 0, {}};
    return {linear_weight().size(0), linear_weight().size(1), {}};
  }

 private:
  // A view method takes one tensor (plus self) and returns a tensor.
  void find_view_method(const std::string& name) {
    const auto method = module_.find_method(name);
    if (!method) return;
    const auto& args = method->function().getSchema().arguments();
    if (args.size() != 2)
      throw ood::FileError(file_.string() + ": method '" + name + "' takes " + std::to_string(args.size() - 1) +
                           " arguments; ood calls it with one tensor");
    methods_.insert(name);
  }

  void find_linear_head(const std::string& name, bool explicit_name, const std::string& pointer) {
    linear_name_ = name;
    std::vector<std::string> children;
    for (const auto& item : module_.named_modules()) {
      if (item.name.empty()) continue;
      children.push_back(item.name);
      if (item.name != name) continue;
      const std::string cls = python_class(item.value);
      if (cls.rfind("torch.nn.modules.linear.", 0) == 0 && ends_with(cls, ".Linear")) {
        linear_ = item.value;
        return;
      }
      if (explicit_name)
        throw ood::InvalidArgument(pointer + ": submodule '" + name + "' of " + file_.string() + " is a " + cls +
                                   ", not a torch.nn.Linear");
      ood::log::info("torchscript: " + file_.string() + ": submodule '" + name + "' is a " + cls +
                     ", not a torch.nn.Linear: no linear head");
      return;
    }
    if (explicit_name) {
      std::string list;
      for (std::size_t i = 0; i < children.size() && i < 12; ++i) list += (i ? ", " : "") + children[i];
      if (children.size() > 12) list += ", ...";
      throw ood::InvalidArgument(pointer + ": " + file_.string() + " has no submodule '" + name + "'" +
                                 (children.empty() ? " (it has no submodules)" : " (its submodules: " + list + ")"));
    }
  }

  at::Tensor linear_weight() const { return linear_->attr("weight").toTensor(); }

  // The feature map can be pooled: by the module's own method, or by the mean that
  // forward_from_before_pool confirms.
  bool map_poolable() const {
    return methods_.count("features_before_pool") &&
           (methods_.count("pool") || methods_.count("forward_from_before_pool"));
  }

  std::string describe_views() const {
    auto has = [&](const char* m) { return methods_.count(m) > 0; };
    std::ostringstream s;
    s << "logits (forward)";
    if (has("features")) s << ", features (features)";
    else if (map_poolable()) s << ", features (pooled features_before_pool)";
    if (has("head")) s << ", head (head)";
    else if (linear_) s << ", head (submodule " << linear_name_ << ")";
    if (linear_) s << ", linear head (" << linear_name_ << ")";
    if (has_feature_map())
      s << ", feature map (features_before_pool, " << (has("pool") ? "pool" : "mean over H and W") << ")";
    std::vector<std::string> missing_methods;
    for (const char* m : {"features", "head", "features_before_pool", "forward_from_before_pool", "pool"})
      if (!has(m)) missing_methods.push_back(m);
    if (!missing_methods.empty()) {
      s << "; methods it does not have:";
      for (const auto& m : missing_methods) s << " " << m;
    }
    if (!linear_) s << "; no torch.nn.Linear submodule '" << linear_name_ << "'";
    return s.str();
  }

  ood::NotSupported missing(const std::string& view, const std::string& needs) const {
    return ood::NotSupported("torchscript: " + file_.string() + " gives no " + view + ": it needs " + needs +
                             ", which the module does not have (export it with @torch.jit.export or "
                             "torch.jit.trace_module; see `ood describe torchscript`)");
  }

  at::Tensor call(const std::string& method, const at::Tensor& x, const char* what) {
    return run(module_, method, "method '" + method + "'", x, what);
  }

  at::Tensor run(torch::jit::Module& m, const std::string& method, const std::string& who, const at::Tensor& x,
                 const char* what = "features") const {
    c10::IValue out;
    try {
      out = m.get_method(method)({x});
    } catch (const std::exception& e) {
      // The interpreter rethrows errors of the network's ops as std::runtime_error.
      throw ood::ShapeError("torchscript: " + file_.string() + ": " + who + " failed on " + what + " " +
                            ood::describe_tensor(x) + ": " + torch_message(e));
    }
    if (!out.isTensor())
      throw ood::ShapeError("torchscript: " + file_.string() + ": " + who + " returned a " + out.tagKind() +
                            ", expected one tensor");
    return out.toTensor();
  }

  // The mean-pool fallback is an assumption about the network; forward_from_before_pool
  // is the module's own word on what follows the map, so the first map checks it (the
  // identity holds for any map, also one ASH has shaped).
  void check_mean_pool(const at::Tensor& map, const at::Tensor& pooled) {
    at::NoGradGuard no_grad;
    const at::Tensor expected = call("forward_from_before_pool", map, "feature map");
    const at::Tensor got = head(pooled);
    if (!got.sizes().equals(expected.sizes()) || !at::allclose(got, expected, 1e-3, 1e-4))
      throw ood::NotSupported("torchscript: " + file_.string() +
                              ": head(mean of features_before_pool over H and W) differs from "
                              "forward_from_before_pool (max |difference| " +
                              (got.sizes().equals(expected.sizes())
                                   ? std::to_string((got - expected).abs().max().item<double>())
                                   : "n/a, shapes " + ood::describe_tensor(got) + " and " +
                                         ood::describe_tensor(expected)) +
                              "): the network does not end in global average pooling; export a 'pool' method");
    pool_checked_ = true;
  }

  std::filesystem::path file_;
  torch::jit::Module module_;
  std::set<std::string> methods_;
  std::optional<torch::jit::Module> linear_;
  std::string linear_name_;
  bool pool_checked_ = false;
  ood::ModelMode mode_ = ood::ModelMode::Eval;
  at::Device device_ = at::kCPU;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Model;
  info.name = "torchscript";
  info.summary = "any network exported with TorchScript (torch.jit.script or torch.jit.trace)";
  info.doc =
      "Loads a torch.jit module. forward(x) gives the logits; the module's methods, where\n"
      "it has them, give the other views:\n"
      "  features(x)                   penultimate features [N, D]\n"
      "  head(features)                logits from features (else the `linear_head` submodule)\n"
      "  features_before_pool(x)       feature map before global pooling (ASH)\n"
      "  pool(map)                     features from a map\n"
      "  forward_from_before_pool(map) logits from a map: without `pool`, the features of a\n"
      "                                map are its mean over H and W, checked once against it\n"
      "The torch.nn.Linear submodule named by `linear_head` (default fc) gives the head's\n"
      "weights (DICE, ViM, ReAct). A view whose method is missing is an error naming it.\n"
      "Export (model: an nn.Module in eval mode, x: one example batch):\n"
      "  traced = torch.jit.trace_module(model.eval(), {\"forward\": x, \"features\": x,\n"
      "      \"features_before_pool\": x, \"forward_from_before_pool\": model.features_before_pool(x)})\n"
      "  traced.save(\"model.pt\")\n"
      "or decorate the extra methods with @torch.jit.export and save torch.jit.script(model).\n"
      "Tracing fixes control flow (and dropout) at the traced mode; scripting keeps it.";
  info.params = {
      ood::ParamSpec::path("path", "TorchScript file (torch.jit.save)"),
      ood::ParamSpec::string("linear_head", "name of the torch.nn.Linear submodule that gives the logits "
                                            "(default fc; an error if given and absent)")
          .optional(),
      ood::ParamSpec::path("weights", "PyTorch state-dict file loaded over the module's own parameters").optional(),
  };
  registrar.add_model(info, [](const ood::Params& p, ood::Context&) -> std::shared_ptr<ood::Model> {
    auto model = std::make_shared<TorchScriptModel>(
        p.get_path("path"), p.has("linear_head") ? std::optional(p.get_string("linear_head")) : std::nullopt,
        p.pointer("linear_head"));
    if (p.has("weights")) {
      const std::filesystem::path file = p.get_path("weights");
      try {
        model->load_state_dict(ood::io::load_state_dict(file));
      } catch (const ood::InvalidArgument& e) {
        throw ood::InvalidArgument(p.pointer("weights") + ": " + file.string() + ": " + e.what());
      }
    }
    return model;
  });
}

}  // namespace

OOD_PLUGIN("torchscript", "TorchScript models (torch.jit)", register_components)
