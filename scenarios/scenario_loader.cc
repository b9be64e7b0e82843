#include "scenarios/scenario_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "scenarios/field_reader.h"
#include "scenarios/scenario_validator.h"
#include "scenarios/yaml_tree.h"

namespace chaosdrill::scenarios {
namespace {

ScenarioLoadResult FileError(absl::string_view file, std::string message) {
  ScenarioLoadResult result;
  result.errors.push_back(ValidationError{std::string(file), {1, 1}, "(file)", std::move(message)});
  return result;
}

std::string MiB(uint64_t bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

}  // namespace

ScenarioLoadResult LoadScenario(absl::string_view content, absl::string_view file,
                                const FaultCatalog& catalog) {
  if (content.size() > kMaxScenarioBytes) {
    return FileError(
        file, absl::StrCat("the file is ", MiB(content.size()), "; expected a scenario of at most ",
                           MiB(kMaxScenarioBytes)));
  }
  YamlParseResult yaml = ParseYamlTree(content);
  if (yaml.problem) {
    ScenarioLoadResult result;
    SourceLocation loc =
        yaml.problem->location.known() ? yaml.problem->location : SourceLocation{1, 1};
    result.errors.push_back(
        ValidationError{std::string(file), loc, "(yaml)", yaml.problem->message});
    return result;
  }
  ValidationErrors errors{std::string(file)};
  std::map<std::string, SourceLocation> locations;
  FieldReader reader(errors, locations);
  auto scenario =
      std::make_shared<Scenario>(ParseScenarioTree(*yaml.document->root(), catalog, reader));
  scenario->locations = std::move(locations);
  scenario->file = std::string(file);
  ValidateScenario(*scenario, errors);
  ScenarioLoadResult result;
  result.errors = errors.Take();
  if (result.errors.empty()) result.scenario = std::move(scenario);
  return result;
}

ScenarioLoadResult LoadScenarioFile(const std::string& path, const FaultCatalog& catalog) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return FileError(path, absl::StrCat("cannot open: ", std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return FileError(path, absl::StrCat("cannot stat: ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return FileError(path,
                     "expected a regular file (a scenario YAML), found a directory or "
                     "special file");
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxScenarioBytes) {
    ::close(fd);
    return FileError(
        path, absl::StrCat("the file is ", MiB(st.st_size), "; expected a scenario of at most ",
                           MiB(kMaxScenarioBytes)));
  }
  // Read at most one byte past the limit, in case the file grows while we read.
  std::string content;
  content.resize(kMaxScenarioBytes + 1);
  size_t got = 0;
  while (got < content.size()) {
    ssize_t n = ::read(fd, content.data() + got, content.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return FileError(path, absl::StrCat("cannot read: ", std::strerror(err)));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  content.resize(got);
  return LoadScenario(content, path, catalog);
}

}  // namespace chaosdrill::scenarios
