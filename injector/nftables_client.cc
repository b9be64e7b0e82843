#include "injector/nftables_client.h"

#include <nftables/libnftables.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace chaosdrill::injector {
namespace {

struct CtxDeleter {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};
using CtxPtr = std::unique_ptr<nft_ctx, CtxDeleter>;

absl::StatusOr<CtxPtr> NewContext() {
  CtxPtr ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (ctx == nullptr) return absl::ResourceExhaustedError("creating a libnftables context");
  nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
  if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0) {
    return absl::InternalError("libnftables: cannot buffer output");
  }
  return ctx;
}

// Runs `cmd` (JSON if it starts with '{', nft syntax otherwise); on failure returns the
// error buffer's text.
absl::StatusOr<std::string> RunText(nft_ctx* ctx, const std::string& cmd, std::string* err_text) {
  int rc = nft_run_cmd_from_buffer(ctx, cmd.c_str());
  const char* out = nft_ctx_get_output_buffer(ctx);
  const char* err = nft_ctx_get_error_buffer(ctx);
  if (rc != 0) {
    *err_text = err != nullptr && *err != '\0' ? err : "libnftables failed without a message";
    return absl::UnknownError(*err_text);
  }
  return std::string(out != nullptr ? out : "");
}

class RealNftablesClient : public NftablesClient {
 public:
  absl::Status Run(const nlohmann::json& commands) override {
    absl::StatusOr<CtxPtr> ctx = NewContext();
    if (!ctx.ok()) return ctx.status();
    std::string err;
    absl::StatusOr<std::string> out = RunText(ctx->get(), commands.dump(), &err);
    if (!out.ok()) return NftStatus("running nftables commands", err);
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<nlohmann::json>> ListTable(absl::string_view family,
                                                          absl::string_view name) override {
    absl::StatusOr<CtxPtr> ctx = NewContext();
    if (!ctx.ok()) return ctx.status();
    std::string err;
    absl::StatusOr<std::string> out =
        RunText(ctx->get(), absl::StrCat("list table ", family, " ", name), &err);
    const std::string context = absl::StrCat("listing table ", family, " ", name);
    if (!out.ok()) {
      absl::Status st = NftStatus(context, err);
      if (absl::IsNotFound(st)) return std::optional<nlohmann::json>();
      return st;
    }
    nlohmann::json parsed = nlohmann::json::parse(*out, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.contains("nftables")) {
      return absl::InternalError(absl::StrCat(context, ": unexpected output: ", *out));
    }
    return std::optional<nlohmann::json>(std::move(parsed));
  }
};

}  // namespace

absl::Status NftStatus(absl::string_view context, absl::string_view error_text) {
  std::string first;
  for (absl::string_view line : absl::StrSplit(error_text, '\n', absl::SkipWhitespace())) {
    first = std::string(absl::StripAsciiWhitespace(line));
    if (absl::StartsWith(first, "Error:")) break;
  }
  absl::StatusCode code = absl::StatusCode::kInternal;
  if (absl::StrContains(error_text, "Operation not permitted") ||
      absl::StrContains(error_text, "Permission denied")) {
    code = absl::StatusCode::kPermissionDenied;
  } else if (absl::StrContains(error_text, "No such file or directory")) {
    code = absl::StatusCode::kNotFound;
  } else if (absl::StrContains(error_text, "Device or resource busy")) {
    code = absl::StatusCode::kFailedPrecondition;
  } else if (absl::StrContains(error_text, "File exists")) {
    code = absl::StatusCode::kAlreadyExists;
  } else if (absl::StrContains(error_text, "Cannot allocate memory")) {
    code = absl::StatusCode::kResourceExhausted;
  } else if (absl::StrContains(error_text, "syntax error") ||
             absl::StrContains(error_text, "Invalid argument") ||
             absl::StrContains(error_text, "Could not parse") ||
             absl::StrContains(error_text, "JSON")) {
    code = absl::StatusCode::kInvalidArgument;
  } else if (absl::StrContains(error_text, "Protocol not supported") ||
             absl::StrContains(error_text, "Operation not supported")) {
    code = absl::StatusCode::kUnimplemented;
  }
  if (code == absl::StatusCode::kPermissionDenied) {
    absl::StrAppend(&first, " (nftables needs root: CAP_NET_ADMIN)");
  }
  return absl::Status(code, absl::StrCat(context, ": ", first));
}

std::unique_ptr<NftablesClient> NewRealNftablesClient() {
  return std::make_unique<RealNftablesClient>();
}

}  // namespace chaosdrill::injector
