#include "ood/core/results.hpp"

#include <ATen/ATen.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "ood/error.hpp"

namespace ood::core {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

void write_file_atomically(const fs::path& file, const std::string& content) {
  std::error_code ec;
  if (file.has_parent_path()) {
    fs::create_directories(file.parent_path(), ec);
    if (ec) throw FileError(file.parent_path().string() + ": cannot create directory: " + ec.message());
  }
  const fs::path tmp = file.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw FileError(file.string() + ": cannot write (cannot create " + tmp.string() + ")");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) {
      out.close();
      fs::remove(tmp, ec);
      throw FileError(file.string() + ": write failed (disk full?)");
    }
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw FileError(file.string() + ": cannot move the finished file into place");
  }
}

json metrics_json(const EvaluationResult& result, const json& meta) {
  json doc = json::object();
  for (std::size_t o = 0; o < result.out.size(); ++o) {
    json set = json::object();
    for (std::size_t d = 0; d < result.detectors.size(); ++d) {
      const OODMetricValues& m = result.metrics[o][d];
      set[result.detectors[d]] = json{{"AUROC", m.auroc},
                                      {"AUPR-IN", m.aupr_in},
                                      {"AUPR-OUT", m.aupr_out},
                                      {"FPR95TPR", m.fpr95tpr}};
    }
    doc[result.out[o].name] = set;
  }
  doc["_meta"] = meta;
  return doc;
}

namespace {
std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", 100.0 * fraction);
  return buf;
}
}  // namespace

std::string metrics_markdown(const EvaluationResult& result) {
  std::ostringstream out;
  out << "| Detector | OOD set | AUROC | AUPR-IN | AUPR-OUT | FPR95TPR |\n";
  out << "|---|---|---:|---:|---:|---:|\n";
  for (std::size_t d = 0; d < result.detectors.size(); ++d) {
    OODMetricValues sum{0, 0, 0, 0};
    for (std::size_t o = 0; o < result.out.size(); ++o) {
      const OODMetricValues& m = result.metrics[o][d];
      out << "| " << result.detectors[d] << " | " << result.out[o].name << " | " << percent(m.auroc)
          << " | " << percent(m.aupr_in) << " | " << percent(m.aupr_out) << " | "
          << percent(m.fpr95tpr) << " |\n";
      sum.auroc += m.auroc;
      sum.aupr_in += m.aupr_in;
      sum.aupr_out += m.aupr_out;
      sum.fpr95tpr += m.fpr95tpr;
    }
    if (result.out.size() > 1) {
      const double n = static_cast<double>(result.out.size());
      out << "| " << result.detectors[d] << " | *mean* | " << percent(sum.auroc / n) << " | "
          << percent(sum.aupr_in / n) << " | " << percent(sum.aupr_out / n) << " | "
          << percent(sum.fpr95tpr / n) << " |\n";
    }
  }
  return out.str();
}

std::string scores_csv(const EvaluationResult& result) {
  std::ostringstream out;
  out << "dataset,index,label";
  for (const auto& d : result.detectors) out << "," << d;
  out << "\n";
  auto write_set = [&](const SetScores& set) {
    const std::int64_t n = set.labels.size(0);
    const auto labels = set.labels.contiguous();
    const auto indices = set.indices.contiguous();
    std::vector<at::Tensor> scores;
    std::vector<int> digits;
    for (const auto& s : set.scores) {
      digits.push_back(s.scalar_type() == at::kDouble ? 17 : 9);
      scores.push_back(s.to(at::kDouble).contiguous());
    }
    char buf[40];
    for (std::int64_t i = 0; i < n; ++i) {
      out << set.name << "," << indices.data_ptr<std::int64_t>()[i] << ","
          << labels.data_ptr<std::int64_t>()[i];
      for (std::size_t d = 0; d < scores.size(); ++d) {
        std::snprintf(buf, sizeof buf, "%.*g", digits[d], scores[d].data_ptr<double>()[i]);
        out << "," << buf;
      }
      out << "\n";
    }
  };
  write_set(result.in);
  for (const auto& o : result.out) write_set(o);
  return out.str();
}

}  // namespace ood::core
