#include "ood/core/pipeline.hpp"

#include <cerrno>
#include <fstream>
#include <functional>
#include <sstream>
#include <system_error>
#include <unordered_set>

#include "ood/core/suggest.hpp"
#include "ood/core/transform_presets.hpp"

namespace ood::core {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

std::string join_diagnostics(const std::string& source, const std::vector<Diagnostic>& diags) {
  std::ostringstream out;
  out << source << ": invalid pipeline (" << diags.size() << (diags.size() == 1 ? " error" : " errors")
      << ")";
  for (const auto& d : diags) out << "\n  " << d.to_string();
  return out.str();
}

// Section layouts, declared with the same ParamSpec as plugin parameters so they are
// validated (and their errors worded) the same way.
std::vector<ParamSpec> evaluate_specs() {
  return {
      ParamSpec::integer("batch_size", "samples per batch").default_value(128).min(1),
      ParamSpec::integer("workers", "loader threads preparing batches while the model runs")
          .default_value(2)
          .min(0)
          .max(64),
      ParamSpec::integer("max_samples", "use only the first N samples of every set (0 = all)")
          .default_value(0)
          .min(0),
      ParamSpec::boolean("save_scores", "write every sample's scores to scores.csv")
          .default_value(false),
  };
}

std::vector<ParamSpec> train_specs() {
  return {
      ParamSpec::component("data", Kind::Dataset, "training data"),
      ParamSpec::component_list("transforms", Kind::Augmentation,
                                "augmentations applied to training samples, in order")
          .default_json("[]"),
      ParamSpec::component("loss", Kind::Loss, "training criterion")
          .default_json(R"({"plugin": "cross-entropy"})"),
      ParamSpec::integer("epochs", "passes over the training data").default_value(1).min(1),
      ParamSpec::integer("batch_size", "samples per batch").default_value(128).min(1),
      ParamSpec::integer("max_batches", "stop each epoch after N batches (0 = all)")
          .default_value(0)
          .min(0),
      ParamSpec::integer("workers", "loader threads").default_value(2).min(0).max(64),
      ParamSpec::real("lr", "initial learning rate").default_value(0.1).min(0.0, true),
      ParamSpec::real("momentum", "SGD momentum").default_value(0.9).min(0.0).max(1.0, true),
      ParamSpec::real("weight_decay", "L2 penalty").default_value(5e-4).min(0.0),
      ParamSpec::boolean("nesterov", "Nesterov momentum").default_value(true),
      ParamSpec::choice("schedule", {"cosine", "step", "constant"},
                        "learning-rate schedule: cosine annealing per batch, step decay per "
                        "epoch, or constant")
          .default_value("cosine"),
      ParamSpec::integer("step_size", "epochs between decays (step schedule)").default_value(1).min(1),
      ParamSpec::real("gamma", "decay factor (step schedule)").default_value(0.1).min(0.0, true),
      ParamSpec::path("checkpoint", "where the trained state dict is written (default: <out>/model.pt); "
                                    "the training state goes beside it as <name>.train.pt")
          .optional(),
      ParamSpec::choice("optimizer", {"sgd", "adam", "adamw"}, "optimiser").default_value("sgd"),
      ParamSpec::list("betas", ParamType::Float, "Adam/AdamW coefficients of the running averages")
          .default_value(std::vector<double>{0.9, 0.999})
          .items(2, 2)
          .min(0.0)
          .max(1.0, true),
      ParamSpec::integer("warmup_epochs", "epochs of linear learning-rate warm-up before the schedule")
          .default_value(0)
          .min(0),
      ParamSpec::component("outliers", Kind::Dataset,
                           "auxiliary OOD data mixed into every batch with label -1 (outlier exposure)")
          .optional(),
      ParamSpec::component_list("outlier_transforms", Kind::Augmentation, "augmentations of the outliers, in order")
          .default_json("[]"),
      ParamSpec::integer("outlier_batch_size", "outliers added to every batch (0: batch_size)").default_value(0).min(0),
      ParamSpec::integer("checkpoint_every", "write the training state every N epochs (0: after the last only)")
          .default_value(0)
          .min(0),
      ParamSpec::path("resume", "a training state (<name>.train.pt) to continue from").optional(),
  };
}

std::vector<ParamSpec> data_specs() {
  return {
      ParamSpec::component("fit", Kind::Dataset, "data detectors are fitted on").optional(),
      ParamSpec::component("in", Kind::Dataset, "in-distribution test data").optional(),
      ParamSpec::component_list("transforms", Kind::Augmentation,
                                "transforms applied to every evaluation set, in order")
          .default_json("[]"),
  };
}

std::vector<ParamSpec> top_specs() {
  return {
      ParamSpec::integer("seed", "seed of every random stream").default_value(0).min(0),
      ParamSpec::string("device", "cpu, cuda or cuda:N").default_value("cpu"),
      ParamSpec::component("model", Kind::Model, "the network").optional(),
  };
}

const std::vector<std::string> kSections = {"seed", "device", "model", "train",
                                            "data", "detectors", "evaluate"};

bool valid_result_name(const std::string& name) {
  if (name.empty() || name[0] == '_' || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

ComponentSpec to_spec(const json& component, const std::string& pointer) {
  ComponentSpec spec;
  spec.plugin = component.at("plugin").get<std::string>();
  spec.params = Params::from_json_text(component.at("params").dump(), pointer + "/params");
  spec.pointer = pointer;
  return spec;
}

std::vector<ComponentSpec> to_specs(const json& list, const std::string& pointer) {
  std::vector<ComponentSpec> out;
  for (std::size_t i = 0; i < list.size(); ++i)
    out.push_back(to_spec(list[i], pointer_append(pointer, std::to_string(i))));
  return out;
}

// "null counts as absent", for the sections too: {"model": null} is no model.
bool present(const json& object, const char* key) {
  return object.is_object() && object.contains(key) && !object[key].is_null();
}

// The pointer of the first value nested deeper than kMaxJsonDepth, found without
// recursion (documents built by code or --set are not checked by the parser).
std::optional<std::string> too_deep(const json& document) {
  struct Node {
    const json* value;
    std::string pointer;
    std::size_t depth;
  };
  std::vector<Node> todo{{&document, "", 1}};
  while (!todo.empty()) {
    Node node = std::move(todo.back());
    todo.pop_back();
    if (!node.value->is_structured()) continue;
    if (node.depth > kMaxJsonDepth) return node.pointer;
    if (node.value->is_object()) {
      for (auto it = node.value->begin(); it != node.value->end(); ++it)
        todo.push_back({&*it, pointer_append(node.pointer, it.key()), node.depth + 1});
    } else {
      for (std::size_t i = 0; i < node.value->size(); ++i)
        todo.push_back({&(*node.value)[i], pointer_append(node.pointer, std::to_string(i)), node.depth + 1});
    }
  }
  return std::nullopt;
}

}  // namespace

PipelineError::PipelineError(const std::string& source, std::vector<Diagnostic> diagnostics)
    : InvalidArgument(join_diagnostics(source, diagnostics)), diagnostics_(std::move(diagnostics)) {}

namespace {

// "file:line:column" of byte `offset` in `text`, which editors understand.
std::string location(const std::string& text, std::size_t offset, const std::string& source) {
  std::size_t line = 1, column = 1;
  const std::size_t end = std::min(offset, text.size());
  for (std::size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return source + ":" + std::to_string(line) + ":" + std::to_string(column);
}

// Thrown by the parser callback to stop parsing a document nested too deeply.
struct TooDeep {
  std::string pointer;
};

// Follows the parser's events to know the JSON pointer of the value being read, so
// that duplicate keys and excessive nesting are reported where they are.
class PointerTracker {
 public:
  // Returns false to make nlohmann drop nothing: every value is kept.
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    using E = json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        enter_element();
        frames_.push_back(Frame{event == E::array_start, -1, {}, {}});
        if (frames_.size() > kMaxJsonDepth) throw TooDeep{pointer()};
        break;
      case E::object_end:
      case E::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
      case E::key: {
        Frame& f = frames_.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second) duplicates_.push_back(pointer());
        break;
      }
      case E::value:
        enter_element();
        break;
    }
    return true;
  }
  const std::vector<std::string>& duplicates() const { return duplicates_; }

 private:
  struct Frame {
    bool array;
    std::int64_t index;
    std::string key;
    std::unordered_set<std::string> keys;
  };
  void enter_element() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }
  std::string pointer() const {
    std::string out;
    for (const Frame& f : frames_) {
      // A container without a member yet: the pointer is the container's own.
      if (f.array ? f.index < 0 : f.keys.empty()) break;
      out = pointer_append(out, f.array ? std::to_string(f.index) : f.key);
    }
    return out;
  }
  std::vector<Frame> frames_;
  std::vector<std::string> duplicates_;
};

// The text nlohmann quotes in "number overflow parsing '1e999'", located in the
// document (its first occurrence as a whole token), for a file:line:column.
std::size_t find_token(const std::string& text, const std::string& token) {
  for (std::size_t pos = text.find(token); pos != std::string::npos; pos = text.find(token, pos + 1)) {
    const auto boundary = [](char c) { return !(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+'); };
    const bool start_ok = pos == 0 || boundary(text[pos - 1]);
    const bool end_ok = pos + token.size() >= text.size() || boundary(text[pos + token.size()]);
    if (start_ok && end_ok) return pos;
  }
  return std::string::npos;
}

}  // namespace

json parse_json_text(const std::string& text, const std::string& source) {
  PointerTracker tracker;
  json document;
  try {
    document = json::parse(text, std::ref(tracker), true, /*ignore_comments=*/true);
  } catch (const TooDeep& deep) {
    throw InvalidArgument(source + ": " + (deep.pointer.empty() ? "/" : deep.pointer) +
                          ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                          " levels (the limit for pipelines)");
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    const auto pos = what.find("syntax error");
    if (pos != std::string::npos) what = what.substr(pos);
    throw InvalidArgument(location(text, e.byte ? e.byte - 1 : 0, source) + ": not valid JSON: " + what);
  } catch (const json::out_of_range& e) {
    // 406: "number overflow parsing '1e999'": a number beyond the range of a double.
    std::string what = e.what();
    const auto q1 = what.find('\''), q2 = what.rfind('\'');
    std::string where = source;
    if (q1 != std::string::npos && q2 > q1) {
      const std::string token = what.substr(q1 + 1, q2 - q1 - 1);
      if (const auto at = find_token(text, token); at != std::string::npos) where = location(text, at, source);
      throw InvalidArgument(where + ": not valid JSON: the number " + token +
                            " is out of range (beyond +-1.8e308)");
    }
    throw InvalidArgument(where + ": not valid JSON: " + what);
  } catch (const json::exception& e) {
    throw InvalidArgument(source + ": not valid JSON: " + e.what());
  }
  if (!tracker.duplicates().empty()) {
    std::vector<Diagnostic> diags;
    for (const auto& ptr : tracker.duplicates())
      diags.push_back({ptr, "duplicate key (a later value would silently replace the earlier one)"});
    throw PipelineError(source, diags);
  }
  return document;
}

json parse_pipeline_text(const std::string& text, const std::string& source) {
  return parse_json_text(text, source);
}

json read_pipeline_file(const fs::path& file) {
  const std::string name = file.string();
  if (name.empty()) throw InvalidArgument("the pipeline file name is empty");
  std::error_code ec;
  const auto status = fs::status(file, ec);
  if (!fs::exists(status)) throw InvalidArgument(name + ": no such pipeline file");
  if (fs::is_directory(status)) throw InvalidArgument(name + ": is a directory, not a pipeline file");
  if (!fs::is_regular_file(status))
    throw InvalidArgument(name + ": not a regular file (a FIFO, socket or device cannot be a pipeline file)");
  if (fs::file_size(file, ec) > kMaxPipelineBytes)
    throw InvalidArgument(name + ": larger than " + std::to_string(kMaxPipelineBytes >> 20) +
                          " MiB; not a pipeline file");
  errno = 0;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const int error = errno;
    throw InvalidArgument(name + ": cannot open pipeline file: " +
                          (error ? std::error_code(error, std::generic_category()).message()
                                 : std::string("unknown reason")));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InvalidArgument(name + ": cannot read pipeline file");
  return parse_json_text(text.str(), name);
}

void apply_override(json& document, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw InvalidArgument("--set '" + assignment + "': expected PATH=VALUE, e.g. evaluate.batch_size=64");
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  json value;
  if (json::accept(text)) {
    value = parse_json_text(text, "--set '" + assignment + "'");  // limits and duplicates
  } else {
    value = text;  // a bare word is a string: --set data.in.params.split=test
  }
  std::vector<std::string> tokens;
  if (path[0] == '/') {
    try {
      json::json_pointer ptr(path);
      (void)ptr;
    } catch (const json::exception& e) {
      throw InvalidArgument("--set '" + assignment + "': bad JSON pointer: " + e.what());
    }
    std::size_t start = 1;
    while (start <= path.size()) {
      std::size_t end = path.find('/', start);
      if (end == std::string::npos) end = path.size();
      std::string token = path.substr(start, end - start);
      std::string unescaped;
      for (std::size_t i = 0; i < token.size(); ++i) {
        if (token[i] == '~' && i + 1 < token.size()) {
          unescaped += token[i + 1] == '1' ? '/' : '~';
          ++i;
        } else {
          unescaped += token[i];
        }
      }
      tokens.push_back(unescaped);
      start = end + 1;
    }
  } else {
    std::size_t start = 0;
    while (start <= path.size()) {
      std::size_t end = path.find('.', start);
      if (end == std::string::npos) end = path.size();
      tokens.push_back(path.substr(start, end - start));
      start = end + 1;
    }
  }
  json* node = &document;
  std::string where;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    if (t.empty()) throw InvalidArgument("--set '" + assignment + "': empty path component");
    const bool last = i + 1 == tokens.size();
    if (node->is_array()) {
      std::size_t index = 0;
      try {
        std::size_t used = 0;
        index = std::stoul(t, &used);
        if (used != t.size()) throw std::invalid_argument(t);
      } catch (const std::exception&) {
        throw InvalidArgument("--set '" + assignment + "': " + (where.empty() ? "/" : where) +
                              " is a list; '" + t + "' is not an index");
      }
      if (index >= node->size())
        throw InvalidArgument("--set '" + assignment + "': " + where + " has " +
                              std::to_string(node->size()) + " items; index " + t + " is out of range");
      node = &(*node)[index];
    } else {
      if (node->is_null()) *node = json::object();
      if (!node->is_object())
        throw InvalidArgument("--set '" + assignment + "': " + (where.empty() ? "/" : where) +
                              " is a " + json_type_name(*node) + ", not an object");
      node = &(*node)[t];
    }
    where = pointer_append(where, t);
    if (last) *node = value;
  }
}

Pipeline parse_pipeline(const json& original, const Registry& registry, const std::string& source) {
  std::vector<Diagnostic> diags;
  SchemaValidator validator(registry);
  Pipeline plan;
  plan.source = source;
  if (!original.is_object()) {
    diags.push_back({"", "a pipeline is a JSON object, got a " + json_type_name(original)});
    throw PipelineError(source, diags);
  }
  // Before anything copies or walks the document recursively.
  if (auto deep = too_deep(original)) {
    diags.push_back({*deep, "JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                                " levels (the limit for pipelines)"});
    throw PipelineError(source, diags);
  }
  // Presets become the transforms they stand for before validation, so that the
  // components are checked, built and recorded like any written by hand.
  json with_presets;
  const json& document = expand_transform_presets(original, with_presets, diags);
  json normalized = json::object();

  for (auto it = document.begin(); it != document.end(); ++it)
    if (std::find(kSections.begin(), kSections.end(), it.key()) == kSections.end())
      diags.push_back({pointer_append("", it.key()),
                       "unknown section '" + it.key() + "'" + did_you_mean(it.key(), kSections)});

  // seed, device, model
  json top = json::object();
  for (const char* key : {"seed", "device", "model"})
    if (present(document, key)) top[key] = document[key];
  if (auto t = validator.params(top_specs(), "the pipeline", {}, top, "", diags)) {
    plan.seed = (*t)["seed"].get<std::uint64_t>();
    plan.device = (*t)["device"].get<std::string>();
    if (t->contains("model")) plan.model = to_spec((*t)["model"], "/model");
    normalized.update(*t);
  }

  // train
  if (present(document, "train")) {
    if (auto t = validator.params(train_specs(), "section 'train'", {}, document["train"], "/train", diags)) {
      TrainPlan tp;
      tp.data = to_spec((*t)["data"], "/train/data");
      tp.transforms = to_specs((*t)["transforms"], "/train/transforms");
      tp.loss = to_spec((*t)["loss"], "/train/loss");
      tp.epochs = (*t)["epochs"];
      tp.batch_size = (*t)["batch_size"];
      tp.max_batches = (*t)["max_batches"];
      tp.workers = (*t)["workers"];
      tp.lr = (*t)["lr"];
      tp.momentum = (*t)["momentum"];
      tp.weight_decay = (*t)["weight_decay"];
      tp.nesterov = (*t)["nesterov"];
      tp.schedule = (*t)["schedule"];
      tp.step_size = (*t)["step_size"];
      tp.gamma = (*t)["gamma"];
      if (t->contains("checkpoint")) tp.checkpoint = (*t)["checkpoint"].get<std::string>();
      tp.optimizer = (*t)["optimizer"];
      tp.betas = (*t)["betas"].get<std::vector<double>>();
      tp.warmup_epochs = (*t)["warmup_epochs"];
      if (t->contains("outliers")) tp.outliers = to_spec((*t)["outliers"], "/train/outliers");
      tp.outlier_transforms = to_specs((*t)["outlier_transforms"], "/train/outlier_transforms");
      tp.outlier_batch_size = (*t)["outlier_batch_size"];
      tp.checkpoint_every = (*t)["checkpoint_every"];
      if (t->contains("resume")) tp.resume = (*t)["resume"].get<std::string>();
      if (tp.warmup_epochs >= tp.epochs)
        diags.push_back({"/train/warmup_epochs", "the warm-up (" + std::to_string(tp.warmup_epochs) +
                                                     " epochs) must be shorter than training (" +
                                                     std::to_string(tp.epochs) + " epochs)"});
      plan.train = std::move(tp);
      normalized["train"] = *t;
    }
  }

  // data: fit / in / transforms through the schema, out (a map) by hand
  if (present(document, "data")) {
    const json& data = document["data"];
    if (!data.is_object()) {
      diags.push_back({"/data", "expected an object with 'in', 'out', 'fit', 'transforms', got a " +
                                    json_type_name(data)});
    } else {
      json rest = data;
      rest.erase("out");
      auto d = validator.params(data_specs(), "section 'data'", {}, rest, "/data", diags);
      if (d) {
        if (d->contains("fit")) plan.fit_data = to_spec((*d)["fit"], "/data/fit");
        if (d->contains("in")) plan.in_data = to_spec((*d)["in"], "/data/in");
        plan.transforms = to_specs((*d)["transforms"], "/data/transforms");
        normalized["data"] = *d;
      }
      if (present(data, "out")) {
        const json& out = data["out"];
        if (!out.is_object()) {
          diags.push_back({"/data/out", "expected an object mapping OOD set names to dataset components, got a " +
                                            json_type_name(out)});
        } else if (out.empty()) {
          diags.push_back({"/data/out", "no OOD set: name at least one, e.g. {\"noise\": {\"plugin\": "
                                        "\"uniform-noise\"}}"});
        } else {
          json out_norm = json::object();
          for (auto it = out.begin(); it != out.end(); ++it) {
            const std::string ptr = pointer_append("/data/out", it.key());
            if (!valid_result_name(it.key())) {
              diags.push_back({ptr, "invalid OOD set name '" + it.key() +
                                        "' (letters, digits, '-', '_', '.'; not starting with '_')"});
              continue;
            }
            if (auto c = validator.component(*it, Kind::Dataset, ptr, diags)) {
              plan.out_data.emplace_back(it.key(), to_spec(*c, ptr));
              out_norm[it.key()] = *c;
            }
          }
          if (d) normalized["data"]["out"] = out_norm;
        }
      }
    }
  }

  // detectors: a map of names to components with evaluation options
  if (present(document, "detectors")) {
    const json& dets = document["detectors"];
    if (!dets.is_object()) {
      diags.push_back({"/detectors", "expected an object mapping detector names to detectors, got a " +
                                         json_type_name(dets)});
    } else if (dets.empty()) {
      // An empty map is a mistake, not "no detectors": leaving the section out says that.
      diags.push_back({"/detectors", "no detector: name at least one, e.g. {\"msp\": {\"plugin\": "
                                     "\"max-softmax\"}}, or leave \"detectors\" out"});
    } else {
      json det_norm = json::object();
      for (auto it = dets.begin(); it != dets.end(); ++it) {
        const std::string ptr = pointer_append("/detectors", it.key());
        if (!valid_result_name(it.key())) {
          diags.push_back({ptr, "invalid detector name '" + it.key() +
                                    "' (letters, digits, '-', '_', '.'; not starting with '_')"});
          continue;
        }
        if (!it->is_object()) {
          diags.push_back({ptr, "expected a detector {\"plugin\": ..., \"params\": {...}}, got a " +
                                    json_type_name(*it)});
          continue;
        }
        json component = json::object();
        DetectorPlan dp;
        dp.name = it.key();
        bool ok = true;
        for (auto f = it->begin(); f != it->end(); ++f) {
          const std::string fptr = pointer_append(ptr, f.key());
          if (f.key() == "plugin" || f.key() == "params") {
            component[f.key()] = *f;
          } else if (f.key() == "fit") {
            if (!f->is_string() || f->get<std::string>() != "fit") {
              diags.push_back({fptr, "expected \"fit\" (the data set under /data/fit), got " + f->dump()});
              ok = false;
            } else {
              dp.fit_set = "fit";
              if (!present(document, "data") || !present(document["data"], "fit")) {
                diags.push_back({fptr, "refers to /data/fit, which the pipeline does not define"});
                ok = false;
              }
            }
          } else if (f.key() == "load_state" || f.key() == "save_state") {
            if (!f->is_string() || f->get<std::string>().empty()) {
              diags.push_back({fptr, "expected a file path, got " + f->dump()});
              ok = false;
            } else if (f->get<std::string>().find('\0') != std::string::npos) {
              diags.push_back({fptr, "a path cannot contain a NUL character (\\u0000)"});
              ok = false;
            } else if (f.key() == "load_state") {
              dp.load_state = f->get<std::string>();
            } else {
              dp.save_state = f->get<std::string>();
            }
          } else {
            diags.push_back({fptr, "unknown key '" + f.key() + "' in a detector" +
                                       did_you_mean(f.key(), {"plugin", "params", "fit", "load_state",
                                                              "save_state"})});
            ok = false;
          }
        }
        auto c = validator.component(component, Kind::Detector, ptr, diags);
        if (c && ok) {
          dp.spec = to_spec(*c, ptr);
          json n = *c;
          if (!dp.fit_set.empty()) n["fit"] = dp.fit_set;
          if (!dp.load_state.empty()) n["load_state"] = dp.load_state.string();
          if (!dp.save_state.empty()) n["save_state"] = dp.save_state.string();
          det_norm[it.key()] = n;
          plan.detectors.push_back(std::move(dp));
        }
      }
      normalized["detectors"] = det_norm;
    }
  }

  // evaluate
  {
    const json eval = present(document, "evaluate") ? document["evaluate"] : json::object();
    if (auto e = validator.params(evaluate_specs(), "section 'evaluate'", {}, eval, "/evaluate", diags)) {
      plan.evaluate.batch_size = (*e)["batch_size"];
      plan.evaluate.workers = (*e)["workers"];
      plan.evaluate.max_samples = (*e)["max_samples"];
      plan.evaluate.save_scores = (*e)["save_scores"];
      normalized["evaluate"] = *e;
    }
  }

  // What the sections need from each other.
  const bool has_detectors = present(document, "detectors");
  if (has_detectors) {
    if (!present(document, "model")) diags.push_back({"", "detectors need a model: add \"model\""});
    if (!present(document, "data") || !present(document["data"], "in"))
      diags.push_back({"/data", "detectors need in-distribution data: add \"in\""});
    if (!present(document, "data") || !present(document["data"], "out"))
      diags.push_back({"/data", "detectors need at least one OOD set: add \"out\""});
  }
  if (present(document, "train") && !present(document, "model"))
    diags.push_back({"", "training needs a model: add \"model\""});
  // Training data must not be evaluation data: an outlier set that is also a test OOD
  // set (or training data that is also the ID test set) would make the metrics lie.
  if (normalized.contains("train") && normalized.contains("data") && normalized["data"].is_object()) {
    const json& t = normalized["train"];
    const json& d = normalized["data"];
    auto same = [](const json& a, const json& b) { return !a.is_null() && a == b; };
    if (t.contains("outliers") && d.contains("out") && d["out"].is_object())
      for (const auto& [name, set] : d["out"].items())
        if (same(t["outliers"], set))
          diags.push_back({"/train/outliers", "the training outliers are the test OOD set /data/out/" + name +
                                                  ": the evaluation would measure memorised outliers"});
    if (t.contains("data") && d.contains("in") && same(t["data"], d["in"]))
      diags.push_back({"/train/data", "the training data is the in-distribution test set /data/in"});
  }
  if (!has_detectors && !present(document, "train"))
    diags.push_back({"", "nothing to do: add \"detectors\" (with \"data\") or \"train\""});
  if (document.contains("device") && document["device"].is_string()) {
    const std::string device = document["device"].get<std::string>();
    if (device != "cpu" && device.rfind("cuda", 0) != 0)
      diags.push_back({"/device", "expected cpu, cuda or cuda:N, got \"" + device + "\""});
  }

  if (!diags.empty()) throw PipelineError(source, diags);
  plan.normalized = std::move(normalized);
  return plan;
}

}  // namespace ood::core
