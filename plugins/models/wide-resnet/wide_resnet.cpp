// WideResNet, compatible with pytorch_ood.model.WideResNet: same module names (so its
// state dicts load unchanged), same parameter names, same forward.
//
// Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016. Pre-activation basic
// blocks; n = (depth - 4) / 6 blocks per group; channels 16, 16w, 32w, 64w; strides
// 1, 2, 2; head relu(bn1(.)) -> average pool -> fc.
//
// One deliberate generalisation: pytorch-ood pools with a fixed 8x8 kernel, which is
// only valid for 32x32 inputs; ood pools over the whole final feature map, which is
// the same computation for 32x32 inputs and also works for other sizes.
#include <torch/nn.h>

#include <set>
#include <sstream>

#include "ood/checks.hpp"
#include "ood/download/weights.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/log.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"

namespace {

namespace nn = torch::nn;

struct BasicBlockImpl : nn::Module {
  BasicBlockImpl(std::int64_t in, std::int64_t out, std::int64_t stride, double drop_rate)
      : equal_in_out(in == out), drop_rate(drop_rate) {
    bn1 = register_module("bn1", nn::BatchNorm2d(in));
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
    bn2 = register_module("bn2", nn::BatchNorm2d(out));
    conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).stride(1).padding(1).bias(false)));
    if (!equal_in_out)
      shortcut = register_module("convShortcut",
                                 nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)));
  }

  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor out;
    if (equal_in_out) {
      out = torch::relu(bn2(conv1(torch::relu(bn1(x)))));
    } else {
      // The shortcut sees the pre-activated input (as in pytorch-ood).
      x = torch::relu(bn1(x));
      out = torch::relu(bn2(conv1(x)));
    }
    if (drop_rate > 0) out = torch::dropout(out, drop_rate, is_training() || mc_dropout);
    out = conv2(out);
    return (equal_in_out ? x : shortcut(x)) + out;
  }

  bool equal_in_out;
  double drop_rate;
  bool mc_dropout = false;
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, shortcut{nullptr};
};
TORCH_MODULE(BasicBlock);

struct NetworkBlockImpl : nn::Module {
  NetworkBlockImpl(std::int64_t blocks, std::int64_t in, std::int64_t out, std::int64_t stride, double drop_rate) {
    for (std::int64_t i = 0; i < blocks; ++i)
      layer->push_back(BasicBlock(i == 0 ? in : out, out, i == 0 ? stride : 1, drop_rate));
    register_module("layer", layer);
  }
  torch::Tensor forward(torch::Tensor x) { return layer->forward(x); }
  nn::Sequential layer;
};
TORCH_MODULE(NetworkBlock);

struct WideResNetConfig {
  std::int64_t num_classes, depth, widen_factor, in_channels;
  double drop_rate;
};

struct WideResNetNetImpl : nn::Module {
  explicit WideResNetNetImpl(const WideResNetConfig& c) : channels(64 * c.widen_factor) {
    const std::int64_t n = (c.depth - 4) / 6;
    const std::int64_t ch[4] = {16, 16 * c.widen_factor, 32 * c.widen_factor, 64 * c.widen_factor};
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(c.in_channels, ch[0], 3).stride(1).padding(1).bias(false)));
    block1 = register_module("block1", NetworkBlock(n, ch[0], ch[1], 1, c.drop_rate));
    block2 = register_module("block2", NetworkBlock(n, ch[1], ch[2], 2, c.drop_rate));
    block3 = register_module("block3", NetworkBlock(n, ch[2], ch[3], 2, c.drop_rate));
    bn1 = register_module("bn1", nn::BatchNorm2d(ch[3]));
    fc = register_module("fc", nn::Linear(ch[3], c.num_classes));
    // pytorch-ood's initialisation: He-normal convolutions, unit batch norm, zero fc bias.
    torch::NoGradGuard no_grad;
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* conv = m->as<nn::Conv2d>()) {
        const auto& k = conv->options.kernel_size();
        const double fan = static_cast<double>((*k)[0] * (*k)[1] * conv->options.out_channels());
        conv->weight.normal_(0.0, std::sqrt(2.0 / fan));
      } else if (auto* bn = m->as<nn::BatchNorm2d>()) {
        bn->weight.fill_(1.0);
        bn->bias.zero_();
      } else if (auto* linear = m->as<nn::Linear>()) {
        linear->bias.zero_();
      }
    }
  }

  torch::Tensor before_pool(const torch::Tensor& x) {
    return torch::relu(bn1(block3(block2(block1(conv1(x))))));
  }
  torch::Tensor pool(const torch::Tensor& fmap) {
    return torch::avg_pool2d(fmap, {fmap.size(2), fmap.size(3)}).view({-1, channels});
  }

  std::int64_t channels;
  nn::Conv2d conv1{nullptr};
  NetworkBlock block1{nullptr}, block2{nullptr}, block3{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  nn::Linear fc{nullptr};
};
TORCH_MODULE(WideResNetNet);

class WideResNetModel final : public ood::Model {
 public:
  explicit WideResNetModel(const WideResNetConfig& config) : config_(config), net_(config) { net_->eval(); }

  at::Tensor features(const at::Tensor& inputs) override {
    check_inputs(inputs);
    return net_->pool(net_->before_pool(inputs));
  }
  at::Tensor head(const at::Tensor& features) override {
    if (features.dim() != 2 || features.size(1) != net_->channels)
      throw ood::ShapeError("wide-resnet: head expects features [N, " + std::to_string(net_->channels) +
                            "], got " + ood::describe_tensor(features));
    return net_->fc(features);
  }
  std::optional<ood::LinearHead> linear_head() override {
    return ood::LinearHead{net_->fc->weight, net_->fc->bias};
  }
  bool has_feature_map() const override { return true; }
  at::Tensor features_before_pool(const at::Tensor& inputs) override {
    check_inputs(inputs);
    return net_->before_pool(inputs);
  }
  at::Tensor pool(const at::Tensor& feature_map) override {
    if (feature_map.dim() != 4 || feature_map.size(1) != net_->channels)
      throw ood::ShapeError("wide-resnet: pool expects a feature map [N, " + std::to_string(net_->channels) +
                            ", H, W], got " + ood::describe_tensor(feature_map));
    return net_->pool(feature_map);
  }
  // PyTorch module names of pytorch-ood's WideResNet; before_pool is relu(bn1(block3)).
  std::vector<std::string> layer_names() const override {
    return {"conv1", "block1", "block2", "block3", "before_pool"};
  }
  ood::TensorDict intermediate(const at::Tensor& inputs, const std::vector<std::string>& layers) override {
    check_inputs(inputs);
    const auto known = layer_names();
    for (const auto& l : layers)
      if (std::find(known.begin(), known.end(), l) == known.end())
        throw ood::InvalidArgument("wide-resnet: no layer '" + l + "' (conv1, block1, block2, block3, before_pool)");
    // Stop after the deepest layer asked for.
    std::size_t deepest = 0;
    for (const auto& l : layers)
      deepest = std::max<std::size_t>(deepest, std::find(known.begin(), known.end(), l) - known.begin());
    ood::TensorDict all;
    at::Tensor x = net_->conv1(inputs);
    all.set("conv1", x);
    if (deepest >= 1) x = net_->block1(x), all.set("block1", x);
    if (deepest >= 2) x = net_->block2(x), all.set("block2", x);
    if (deepest >= 3) x = net_->block3(x), all.set("block3", x);
    if (deepest >= 4) all.set("before_pool", torch::relu(net_->bn1(x)));
    ood::TensorDict out;
    for (const auto& l : layers) out.set(l, all.at(l));
    return out;
  }

  void set_mode(ood::ModelMode mode) override {
    mode_ = mode;
    if (mode == ood::ModelMode::Train) net_->train();
    else net_->eval();
    for (auto& m : net_->modules(false))
      if (auto* block = m->as<BasicBlockImpl>()) block->mc_dropout = mode == ood::ModelMode::McDropout;
  }
  ood::ModelMode mode() const override { return mode_; }
  void to(at::Device device) override { net_->to(device); }
  at::Device device() const override { return net_->fc->weight.device(); }
  std::vector<at::Tensor> parameters() override { return net_->parameters(); }

  // PyTorch's order: each module's own parameters, then its buffers, modules in
  // registration order (pre-order).
  ood::TensorDict state_dict() const override {
    ood::TensorDict out;
    for (const auto& item : net_->named_modules()) {
      const std::string prefix = item.key().empty() ? "" : item.key() + ".";
      for (const auto& p : item.value()->named_parameters(false)) out.set(prefix + p.key(), p.value());
      for (const auto& b : item.value()->named_buffers(false)) out.set(prefix + b.key(), b.value());
    }
    return out;
  }

  void load_state_dict(const ood::TensorDict& given) override {
    std::ostringstream model;
    model << "WideResNet(depth=" << config_.depth << ", widen_factor=" << config_.widen_factor
          << ", num_classes=" << config_.num_classes << ", in_channels=" << config_.in_channels << ")";
    ood::io::load_state_dict_strict(state_dict(), normalise_keys(given), model.str());
  }

  ood::ModelInfo info() const override {
    return {config_.num_classes, net_->channels, {config_.in_channels, -1, -1}};
  }

 private:
  void check_inputs(const at::Tensor& x) const {
    if (x.dim() != 4 || x.size(1) != config_.in_channels || !at::isFloatingType(x.scalar_type()))
      throw ood::ShapeError("wide-resnet: inputs must be a floating tensor [N, " +
                            std::to_string(config_.in_channels) + ", H, W], got " + ood::describe_tensor(x));
  }

  // As pytorch-ood does for its published weights: drop a DataParallel "module."
  // prefix and accept the PixMix checkpoints' "conv_shortcut" spelling.
  static ood::TensorDict normalise_keys(const ood::TensorDict& in) {
    const bool data_parallel = !in.empty() && in.entries().back().first.rfind("module.", 0) == 0;
    ood::TensorDict out;
    for (const auto& [name, tensor] : in) {
      std::string key = name;
      if (data_parallel && key.rfind("module.", 0) == 0) key = key.substr(7);
      if (const auto pos = key.find("conv_shortcut"); pos != std::string::npos)
        key.replace(pos, 13, "convShortcut");
      out.set(key, tensor);
    }
    return out;
  }

  WideResNetConfig config_;
  WideResNetNet net_;
  ood::ModelMode mode_ = ood::ModelMode::Eval;
};

void check_params(const ood::Params& p) {
  const std::int64_t depth = p.get_int("depth");
  if ((depth - 4) % 6 != 0)
    throw ood::InvalidArgument(p.pointer("depth") + ": depth must be 6n + 4 (10, 16, 22, 28, 40, ...), got " +
                               std::to_string(depth));
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Model;
  info.name = "wide-resnet";
  info.summary = "WideResNet, compatible with pytorch-ood's WideResNet and its state dicts";
  info.paper = "Zagoruyko & Komodakis, Wide Residual Networks, BMVC";
  info.year = 2016;
  info.doc =
      "Module names, parameters and forward follow pytorch_ood.model.WideResNet, so its\n"
      "state dicts (zip or legacy format, with or without a DataParallel 'module.' prefix)\n"
      "load unchanged. Views: features = relu(bn1(.)) pooled over the final feature map\n"
      "(pytorch-ood: a fixed 8x8 pool, the same for 32x32 inputs); head = fc.\n"
      "Intermediate layers (module names): conv1, block1, block2, block3, before_pool.\n"
      "Feature map before pooling: relu(bn1(block3(.))), [N, 64w, H/4, W/4].";
  info.params = {
      ood::ParamSpec::integer("num_classes", "number of classes (outputs of fc)").min(1),
      ood::ParamSpec::integer("depth", "total depth, 6n + 4").default_value(40).min(10),
      ood::ParamSpec::integer("widen_factor", "channel multiplier w").default_value(2).min(1),
      ood::ParamSpec::real("drop_rate", "dropout probability inside blocks (training, MC dropout)")
          .default_value(0.3)
          .min(0.0)
          .max(1.0, true),
      ood::ParamSpec::integer("in_channels", "input channels").default_value(3).min(1),
      ood::ParamSpec::path("weights", "PyTorch state-dict file (torch.save of model.state_dict()) or a name "
                                      "from `ood weights list` (cifar10-pt, ...)")
          .optional(),
  };
  info.check = check_params;
  registrar.add_model(info, [](const ood::Params& p, ood::Context&) -> std::shared_ptr<ood::Model> {
    check_params(p);
    WideResNetConfig config{p.get_int("num_classes"), p.get_int("depth"), p.get_int("widen_factor"),
                            p.get_int("in_channels"), p.get_float("drop_rate")};
    auto model = std::make_shared<WideResNetModel>(config);
    if (p.has("weights")) {
      // A file, or a name from the weights store (pytorch-ood's names: cifar10-pt, ...).
      ood::download::WeightsEntry entry;
      const std::filesystem::path file = ood::download::resolve_weights(p.get_path("weights").string(), "wide-resnet",
                                                                        p.pointer("weights"), &entry);
      try {
        model->load_state_dict(ood::io::load_state_dict(file));
      } catch (const ood::InvalidArgument& e) {
        throw ood::InvalidArgument(p.pointer("weights") + ": " + file.string() + ": " + e.what() +
                                   (entry.name.empty() ? "" : "; weights '" + entry.name + "' fit " + entry.model_params));
      }
      ood::log::debug("wide-resnet: loaded weights from " + file.string());
    }
    return model;
  });
}

}  // namespace

OOD_PLUGIN("wide-resnet", "WideResNet model (pytorch-ood compatible)", register_components)
