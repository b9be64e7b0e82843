#include "reports/gpu_info.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/version.h"

namespace chaosdrill::reports {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const std::string& path, size_t limit = 64 * 1024) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::string text(limit, '\0');
  in.read(text.data(), static_cast<std::streamsize>(limit));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

// Sorted entries of a directory; empty when it does not exist.
std::vector<fs::path> List(const std::string& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// "550.54.15" from /sys/module/nvidia/version, else from the NVRM line of
// /proc/driver/nvidia/version ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15
// Tue Mar ..."): the first token that looks like a dotted version.
std::string DriverVersion(const std::string& root) {
  std::string v(absl::StripAsciiWhitespace(Slurp(root + "/sys/module/nvidia/version", 256)));
  if (!v.empty()) return v;
  std::string text = Slurp(root + "/proc/driver/nvidia/version", 4096);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, "NVRM version:")) continue;
    for (absl::string_view token : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      if (token.size() >= 3 && absl::ascii_isdigit(token[0]) &&
          token.find('.') != absl::string_view::npos &&
          std::all_of(token.begin(), token.end(),
                      [](char c) { return absl::ascii_isdigit(c) || c == '.'; })) {
        return std::string(token);
      }
    }
  }
  return "";
}

// Models from /proc/driver/nvidia/gpus/<bus>/information ("Model: \t\t NVIDIA H200").
std::vector<std::string> DriverModels(const std::string& root) {
  std::vector<std::string> models;
  for (const fs::path& gpu : List(root + "/proc/driver/nvidia/gpus")) {
    std::string text = Slurp((gpu / "information").string(), 16 * 1024);
    std::string model = "NVIDIA GPU";
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (absl::StartsWith(line, "Model:")) {
        std::string m(absl::StripAsciiWhitespace(line.substr(6)));
        if (!m.empty()) model = m;
        break;
      }
    }
    models.push_back(model);
  }
  return models;
}

// NVIDIA display controllers (class 0x03xxxx) on the PCI bus: "NVIDIA GPU [10de:2335]".
std::vector<std::string> PciModels(const std::string& root) {
  std::vector<std::string> models;
  for (const fs::path& dev : List(root + "/sys/bus/pci/devices")) {
    std::string vendor(absl::StripAsciiWhitespace(Slurp((dev / "vendor").string(), 64)));
    std::string cls(absl::StripAsciiWhitespace(Slurp((dev / "class").string(), 64)));
    if (vendor != "0x10de" || !absl::StartsWith(cls, "0x03")) continue;
    std::string device(absl::StripAsciiWhitespace(Slurp((dev / "device").string(), 64)));
    if (absl::StartsWith(device, "0x")) device = device.substr(2);
    models.push_back(absl::StrCat("NVIDIA GPU [10de:", device, "]"));
  }
  return models;
}

// "8 x A" for eight of the same, "A, B" for different ones, in first-seen order.
std::string Summarise(const std::vector<std::string>& models) {
  std::vector<std::pair<std::string, int>> counts;
  for (const std::string& m : models) {
    auto it =
        std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == m; });
    if (it == counts.end()) {
      counts.push_back({m, 1});
    } else {
      ++it->second;
    }
  }
  std::vector<std::string> parts;
  for (const auto& [model, n] : counts) {
    parts.push_back(n > 1 ? absl::StrCat(n, " x ", model) : model);
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace

std::string DescribeGpus(const std::string& root) {
  std::vector<std::string> models = DriverModels(root);
  std::string driver = DriverVersion(root);
  if (models.empty()) models = PciModels(root);
  if (models.empty()) return "none";
  return absl::StrCat(Summarise(models), driver.empty() ? " (no NVIDIA driver loaded)"
                                                        : absl::StrCat(" (driver ", driver, ")"));
}

std::string GpuEnvironment() {
  std::string gpus = DescribeGpus();
  if (!kHaveCuda && gpus != "none") absl::StrAppend(&gpus, "; chaosdrill built without CUDA");
  return gpus;
}

}  // namespace chaosdrill::reports
