// ResNet, compatible with torchvision.models.resnet.ResNet (torchvision 0.14): same
// module names, parameter order, initialisation and forward, so a torchvision
// `model.state_dict()` (resnet18 ... resnet152, resnext50_32x4d, wide_resnet50_2, the
// IMAGENET1K_V1/V2 weights) loads unchanged and strictly.
//
// He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
// torchvision's variant ("ResNet v1.5") puts the stride of a bottleneck block on its 3x3
// convolution. Stem conv1 7x7/2 -> bn1 -> relu -> maxpool 3x3/2; layer1..layer4 with
// 64, 128, 256, 512 planes (x4 outputs for bottleneck blocks), strides 1, 2, 2, 2;
// adaptive average pool to 1x1 -> flatten -> fc.
#include <torch/nn.h>

#include <map>
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

nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                std::int64_t groups = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).groups(groups).bias(false));
}

// torchvision's BasicBlock (two 3x3 convolutions, expansion 1) and Bottleneck (1x1,
// 3x3 with the stride and the groups, 1x1; expansion 4) in one module type, so that a
// layer is a plain Sequential. Submodules are registered in torchvision's order, which
// fixes the order of the state dict.
struct BlockImpl : nn::Module {
  BlockImpl(bool bottleneck, std::int64_t inplanes, std::int64_t planes, std::int64_t stride, std::int64_t groups,
            std::int64_t width_per_group)
      : bottleneck(bottleneck) {
    const std::int64_t expansion = bottleneck ? 4 : 1;
    if (bottleneck) {
      // int(planes * (base_width / 64.)) * groups, as torchvision computes it.
      const std::int64_t width = static_cast<std::int64_t>(planes * (width_per_group / 64.0)) * groups;
      conv1 = register_module("conv1", conv(inplanes, width, 1, 1, 0));
      bn1 = register_module("bn1", nn::BatchNorm2d(width));
      conv2 = register_module("conv2", conv(width, width, 3, stride, 1, groups));
      bn2 = register_module("bn2", nn::BatchNorm2d(width));
      conv3 = register_module("conv3", conv(width, planes * expansion, 1, 1, 0));
      bn3 = register_module("bn3", nn::BatchNorm2d(planes * expansion));
    } else {
      conv1 = register_module("conv1", conv(inplanes, planes, 3, stride, 1));
      bn1 = register_module("bn1", nn::BatchNorm2d(planes));
      conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1));
      bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    }
    if (stride != 1 || inplanes != planes * expansion) {
      downsample = nn::Sequential(conv(inplanes, planes * expansion, 1, stride, 0), nn::BatchNorm2d(planes * expansion));
      register_module("downsample", downsample);
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = torch::relu(bn1(conv1(x)));
    out = bn2(conv2(out));
    if (bottleneck) out = bn3(conv3(torch::relu(out)));
    return torch::relu(out + (downsample ? downsample->forward(x) : x));
  }

  bool bottleneck;
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Block);

struct ResNetConfig {
  std::int64_t depth, num_classes, groups, width_per_group;
};

// Blocks per layer and block type of each depth (torchvision's resnet18 ... resnet152).
struct DepthSpec {
  std::array<std::int64_t, 4> blocks;
  bool bottleneck;
};
const std::map<std::int64_t, DepthSpec> kDepths = {
    {18, {{2, 2, 2, 2}, false}},  {34, {{3, 4, 6, 3}, false}},   {50, {{3, 4, 6, 3}, true}},
    {101, {{3, 4, 23, 3}, true}}, {152, {{3, 8, 36, 3}, true}},
};

struct ResNetNetImpl : nn::Module {
  explicit ResNetNetImpl(const ResNetConfig& c) {
    const DepthSpec& spec = kDepths.at(c.depth);
    channels = 512 * (spec.bottleneck ? 4 : 1);
    conv1 = register_module("conv1", conv(3, 64, 7, 2, 3));
    bn1 = register_module("bn1", nn::BatchNorm2d(64));
    std::int64_t inplanes = 64;
    const std::int64_t planes[4] = {64, 128, 256, 512};
    for (int l = 0; l < 4; ++l) {
      for (std::int64_t b = 0; b < spec.blocks[l]; ++b) {
        const std::int64_t stride = (l > 0 && b == 0) ? 2 : 1;
        layers[l]->push_back(Block(spec.bottleneck, inplanes, planes[l], stride, c.groups, c.width_per_group));
        inplanes = planes[l] * (spec.bottleneck ? 4 : 1);
      }
      register_module("layer" + std::to_string(l + 1), layers[l]);
    }
    fc = register_module("fc", nn::Linear(channels, c.num_classes));
    // torchvision's initialisation: He-normal (fan_out) convolutions, unit batch norm;
    // fc keeps nn.Linear's default, as in torchvision.
    torch::NoGradGuard no_grad;
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* cv = m->as<nn::Conv2d>()) {
        const auto& k = cv->options.kernel_size();
        const double fan_out = static_cast<double>((*k)[0] * (*k)[1] * cv->options.out_channels());
        cv->weight.normal_(0.0, std::sqrt(2.0 / fan_out));
      } else if (auto* bn = m->as<nn::BatchNorm2d>()) {
        bn->weight.fill_(1.0);
        bn->bias.zero_();
      }
    }
  }

  torch::Tensor stem(const torch::Tensor& x) {
    return torch::max_pool2d(torch::relu(bn1(conv1(x))), /*kernel_size=*/3, /*stride=*/2, /*padding=*/1);
  }
  torch::Tensor before_pool(const torch::Tensor& x) {
    torch::Tensor y = stem(x);
    for (auto& layer : layers) y = layer->forward(y);
    return y;
  }
  // AdaptiveAvgPool2d((1, 1)) + flatten(1).
  static torch::Tensor pool(const torch::Tensor& fmap) {
    return torch::adaptive_avg_pool2d(fmap, {1, 1}).flatten(1);
  }

  std::int64_t channels;
  nn::Conv2d conv1{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  std::array<nn::Sequential, 4> layers;
  nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNetNet);

std::string describe(const ResNetConfig& c) {
  std::ostringstream s;
  s << "ResNet(depth=" << c.depth << ", num_classes=" << c.num_classes;
  if (c.groups != 1 || c.width_per_group != 64) s << ", groups=" << c.groups << ", width_per_group=" << c.width_per_group;
  s << ")";
  return s.str();
}

class ResNetModel final : public ood::Model {
 public:
  explicit ResNetModel(const ResNetConfig& config) : config_(config), net_(config) { net_->eval(); }

  at::Tensor features(const at::Tensor& inputs) override {
    check_inputs(inputs);
    return ResNetNetImpl::pool(net_->before_pool(inputs));
  }
  at::Tensor head(const at::Tensor& features) override {
    if (features.dim() != 2 || features.size(1) != net_->channels)
      throw ood::ShapeError("resnet: head expects features [N, " + std::to_string(net_->channels) + "], got " +
                            ood::describe_tensor(features));
    return net_->fc(features);
  }
  std::optional<ood::LinearHead> linear_head() override { return ood::LinearHead{net_->fc->weight, net_->fc->bias}; }

  bool has_feature_map() const override { return true; }
  at::Tensor features_before_pool(const at::Tensor& inputs) override {
    check_inputs(inputs);
    return net_->before_pool(inputs);
  }
  at::Tensor pool(const at::Tensor& feature_map) override {
    if (feature_map.dim() != 4 || feature_map.size(1) != net_->channels)
      throw ood::ShapeError("resnet: pool expects a feature map [N, " + std::to_string(net_->channels) +
                            ", H, W], got " + ood::describe_tensor(feature_map));
    return ResNetNetImpl::pool(feature_map);
  }

  // torchvision's module names; each is the output of that module (conv1: before bn1).
  std::vector<std::string> layer_names() const override { return {"conv1", "layer1", "layer2", "layer3", "layer4"}; }
  ood::TensorDict intermediate(const at::Tensor& inputs, const std::vector<std::string>& layers) override {
    check_inputs(inputs);
    const auto known = layer_names();
    std::size_t deepest = 0;
    for (const auto& l : layers) {
      const auto it = std::find(known.begin(), known.end(), l);
      if (it == known.end())
        throw ood::InvalidArgument("resnet: no layer '" + l + "' (conv1, layer1, layer2, layer3, layer4)");
      deepest = std::max<std::size_t>(deepest, it - known.begin());
    }
    // One partial forward, stopping after the deepest layer asked for.
    ood::TensorDict all;
    at::Tensor x = net_->conv1(inputs);
    all.set("conv1", x);
    x = torch::max_pool2d(torch::relu(net_->bn1(x)), 3, 2, 1);
    for (std::size_t l = 1; l <= deepest; ++l) {
      x = net_->layers[l - 1]->forward(x);
      all.set(known[l], x);
    }
    ood::TensorDict out;
    for (const auto& l : layers) out.set(l, all.at(l));
    return out;
  }

  // ResNet has no dropout: McDropout behaves as Eval (batch norm on running statistics).
  void set_mode(ood::ModelMode mode) override {
    mode_ = mode;
    if (mode == ood::ModelMode::Train) net_->train();
    else net_->eval();
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

  // Strict, as torch's load_state_dict(strict=True): every entry must exist with the
  // same shape; a floating entry of another dtype (a half-precision checkpoint) is
  // converted, as PyTorch's copy_ does.
  void load_state_dict(const ood::TensorDict& given) override {
    ood::io::load_state_dict_strict(state_dict(), strip_data_parallel(given), describe(config_));
  }

  ood::ModelInfo info() const override { return {config_.num_classes, net_->channels, {3, -1, -1}}; }

 private:
  void check_inputs(const at::Tensor& x) const {
    if (x.dim() != 4 || x.size(1) != 3 || !at::isFloatingType(x.scalar_type()))
      throw ood::ShapeError("resnet: inputs must be a floating tensor [N, 3, H, W], got " + ood::describe_tensor(x));
  }

  // A model saved from torch.nn.DataParallel has every key prefixed with "module.".
  static ood::TensorDict strip_data_parallel(const ood::TensorDict& in) {
    bool all_prefixed = !in.empty();
    for (const auto& [name, t] : in) all_prefixed = all_prefixed && name.rfind("module.", 0) == 0;
    if (!all_prefixed) return in;
    ood::log::info("resnet: the state dict was saved from DataParallel; its 'module.' prefix is removed");
    ood::TensorDict out;
    for (const auto& [name, tensor] : in) out.set(name.substr(7), tensor);
    return out;
  }

  ResNetConfig config_;
  ResNetNet net_;
  ood::ModelMode mode_ = ood::ModelMode::Eval;
};

void check_params(const ood::Params& p) {
  const std::int64_t depth = p.get_int("depth");
  if (!kDepths.count(depth))
    throw ood::InvalidArgument(p.pointer("depth") + ": depth must be 18, 34, 50, 101 or 152, got " +
                               std::to_string(depth));
  // torchvision's BasicBlock raises for anything but groups=1, width_per_group=64.
  if (!kDepths.at(depth).bottleneck && (p.get_int("groups") != 1 || p.get_int("width_per_group") != 64))
    throw ood::InvalidArgument(p.pointer(p.get_int("groups") != 1 ? "groups" : "width_per_group") +
                               ": depths 18 and 34 (basic blocks) support only groups 1 and width_per_group 64");
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Model;
  info.name = "resnet";
  info.summary = "ResNet-18/34/50/101/152, compatible with torchvision's ResNet and its state dicts";
  info.paper = "He, Zhang, Ren & Sun, Deep Residual Learning for Image Recognition, CVPR";
  info.year = 2016;
  info.doc =
      "Module names, parameter order, initialisation and forward follow\n"
      "torchvision.models.resnet (0.14), so `torch.save(model.state_dict(), f)` of\n"
      "torchvision's resnet18 ... resnet152 (and resnext50_32x4d: depth 50, groups 32,\n"
      "width_per_group 4; wide_resnet50_2: depth 50, width_per_group 128) loads strictly,\n"
      "with or without a DataParallel 'module.' prefix.\n"
      "Views: features = layer4 output averaged over H and W [N, 512 (18, 34) or 2048];\n"
      "head = fc; feature map before pooling = layer4 output.\n"
      "Intermediate layers (module names): conv1 (before bn1), layer1, layer2, layer3, layer4.\n"
      "No dropout: MC-dropout mode is the same as eval mode.";
  info.params = {
      ood::ParamSpec::integer("depth", "18, 34 (basic blocks), 50, 101 or 152 (bottleneck blocks)").default_value(50),
      ood::ParamSpec::integer("num_classes", "number of classes (outputs of fc)").default_value(1000).min(1),
      ood::ParamSpec::integer("groups", "groups of the bottleneck 3x3 convolutions (ResNeXt)").default_value(1).min(1),
      ood::ParamSpec::integer("width_per_group", "bottleneck width per group (64: ResNet)").default_value(64).min(1),
      ood::ParamSpec::path("weights", "PyTorch state-dict file (torch.save of model.state_dict()) or a name "
                                      "from `ood weights list` (resnet50-imagenet1k-v2, ...)")
          .optional(),
  };
  info.check = check_params;
  registrar.add_model(info, [](const ood::Params& p, ood::Context&) -> std::shared_ptr<ood::Model> {
    check_params(p);
    const ResNetConfig config{p.get_int("depth"), p.get_int("num_classes"), p.get_int("groups"),
                              p.get_int("width_per_group")};
    auto model = std::make_shared<ResNetModel>(config);
    if (p.has("weights")) {
      // A file, or a name from the weights store (resnet50-imagenet1k-v2, ...).
      ood::download::WeightsEntry entry;
      const std::filesystem::path file =
          ood::download::resolve_weights(p.get_path("weights").string(), "resnet", p.pointer("weights"), &entry);
      try {
        model->load_state_dict(ood::io::load_state_dict(file));
      } catch (const ood::InvalidArgument& e) {
        throw ood::InvalidArgument(p.pointer("weights") + ": " + file.string() + ": " + e.what() +
                                   (entry.name.empty() ? "" : "; weights '" + entry.name + "' fit " + entry.model_params));
      }
      ood::log::debug("resnet: loaded weights from " + file.string());
    }
    return model;
  });
}

}  // namespace

OOD_PLUGIN("resnet", "ResNet models (torchvision compatible)", register_components)
