#include "reports/report_writer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "reports/html_writer.h"
#include "reports/junit_writer.h"
#include "reports/markdown_writer.h"
#include "reports/run_record_json.h"

namespace chaosdrill::reports {

bool IsReportFormat(absl::string_view f) {
  return f == "json" || f == "json-compact" || f == "html" || f == "junit" || f == "markdown" ||
         f == "md";
}

std::string ReportExtension(absl::string_view f) {
  if (f == "html") return "html";
  if (f == "junit") return "xml";
  if (f == "markdown" || f == "md") return "md";
  return "json";
}

absl::StatusOr<std::string> RenderReport(const RunRecord& record, absl::string_view format,
                                         const std::string& report_path) {
  if (format == "json" || format == "json-compact") {
    return ToJson(record).dump(format == "json" ? 2 : -1, ' ', false,
                               nlohmann::json::error_handler_t::replace) +
           "\n";
  }
  if (format == "html") return RenderHtml(record);
  if (format == "junit") return RenderJunit(record, report_path);
  if (format == "markdown" || format == "md") {
    std::string links;
    if (!report_path.empty()) links = absl::StrCat("[Full report](", report_path, ")");
    return RenderMarkdown(record, links);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown report format '", format, "' (expected json, json-compact, html, junit, markdown)"));
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view content) {
  std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return ErrnoStatus(absl::StrCat("writing ", tmp));
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out.flush()) return ErrnoStatus(absl::StrCat("writing ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("renaming ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> WriteReports(const RunRecord& record,
                                                      const std::vector<std::string>& formats,
                                                      const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("creating report directory ", dir, ": ", ec.message()));
  }
  std::string base = absl::StrCat(dir, dir.empty() || dir.back() == '/' ? "" : "/", record.run_id);
  std::string html_path = absl::StrCat(base, ".html");
  bool has_html = std::find(formats.begin(), formats.end(), "html") != formats.end();
  std::vector<std::string> paths;
  for (const std::string& format : formats) {
    if (!IsReportFormat(format)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown report format '", format, "'"));
    }
    std::string path = absl::StrCat(base, ".", ReportExtension(format));
    if (std::find(paths.begin(), paths.end(), path) != paths.end()) continue;
    // JUnit and Markdown point at the HTML report when there is one, else the JSON.
    std::string link = has_html ? html_path : absl::StrCat(base, ".json");
    absl::StatusOr<std::string> text = RenderReport(record, format, link);
    if (!text.ok()) return text.status();
    RETURN_IF_ERROR(WriteFileAtomically(path, *text));
    paths.push_back(path);
  }
  return paths;
}

}  // namespace chaosdrill::reports
