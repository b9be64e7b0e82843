#include "injector/proxy_fault.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/quantity.h"
#include "common/status.h"
#include "injector/fault_registry.h"

namespace chaosdrill::injector {
namespace {

// Start time of a process in clock ticks since boot (/proc/PID/stat field 22), which
// tells a live owner from a recycled pid. nullopt when the process does not exist.
std::optional<uint64_t> ProcessStartTicks(int64_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  if (!in) return std::nullopt;
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string stat = buffer.str();
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat).substr(paren + 1), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); field 22 is fields[19].
  uint64_t ticks = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &ticks)) return std::nullopt;
  return ticks;
}

}  // namespace

ProxyFault::ProxyFault(std::string kind, ProxyAddress listen, ProxyAddress upstream,
                       std::shared_ptr<const ProxyEffect> effect, ProxyManager* manager)
    : kind_(std::move(kind)),
      listen_(std::move(listen)),
      upstream_(std::move(upstream)),
      effect_(std::move(effect)),
      manager_(manager) {}

absl::Status ProxyFault::Inject() {
  if (rule_id_) return absl::OkStatus();
  auto id = manager_->Add(listen_, upstream_, effect_);
  if (!id.ok()) return Annotate(id.status(), absl::StrCat("injecting ", Describe()));
  rule_id_ = *id;
  LogInfo("proxy", absl::StrCat("injected ", Describe()));
  return absl::OkStatus();
}

absl::Status ProxyFault::Revert() {
  if (!rule_id_) return absl::OkStatus();
  RETURN_IF_ERROR(
      Annotate(manager_->Remove(listen_, *rule_id_), absl::StrCat("reverting ", Describe())));
  // Verify: the rule is gone, and with the last rule gone nothing of ours listens.
  if (manager_->RuleCount(listen_) == 0 && manager_->Listening(listen_)) {
    return absl::InternalError(absl::StrCat("reverting ", Describe(),
                                            ": the proxy still listens on ", listen_.ToString()));
  }
  rule_id_.reset();
  LogInfo("proxy", absl::StrCat("reverted ", Describe()));
  return absl::OkStatus();
}

nlohmann::json ProxyFault::RevertRecord() const {
  nlohmann::json record = {
      {"kind", kind_},
      {"listen", listen_.text},
      {"listen_address", listen_.ToString()},
      {"upstream", upstream_.text},
      {"effect", effect_->Describe()},
      {"owner_pid", static_cast<int64_t>(getpid())},
      {"owner_start_ticks", ProcessStartTicks(getpid()).value_or(0)},
      {"note", "userspace proxy inside the owner process; once the owner is gone nothing is left"},
  };
  if (rule_id_) record["rule_id"] = *rule_id_;
  return record;
}

std::string ProxyFault::Describe() const {
  return absl::StrCat(kind_, " ", effect_->Describe(), " on ", listen_.text, " -> ",
                      upstream_.text);
}

absl::Status RevertProxyFaultFromRecord(const nlohmann::json& record) {
  std::string listen_text;
  int64_t owner_pid = 0;
  uint64_t owner_ticks = 0;
  std::optional<uint64_t> rule_id;
  try {
    listen_text = record.at("listen_address").get<std::string>();
    owner_pid = record.at("owner_pid").get<int64_t>();
    owner_ticks = record.at("owner_start_ticks").get<uint64_t>();
    if (record.contains("rule_id")) rule_id = record.at("rule_id").get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("proxy fault revert record ", record.dump(), ": ", e.what()));
  }
  const std::string what = absl::StrCat("proxy fault on ", listen_text);
  if (owner_pid == static_cast<int64_t>(getpid()) &&
      ProcessStartTicks(getpid()).value_or(0) == owner_ticks) {
    if (!rule_id) return absl::OkStatus();  // journaled but never applied
    ASSIGN_OR_RETURN(ProxyAddress listen, ParseProxyAddress("listen_address", listen_text));
    return Annotate(ProxyManager::Global().Remove(listen, *rule_id),
                    absl::StrCat("reverting ", what));
  }
  std::optional<uint64_t> ticks = ProcessStartTicks(owner_pid);
  if (ticks && *ticks == owner_ticks) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " is held by live process ", owner_pid,
                     "; revert it there, or stop that process (SIGTERM reverts its faults)"));
  }
  LogInfo("proxy", absl::StrCat(what, ": owner process ", owner_pid,
                                " is gone, and its proxy with it; nothing to undo"));
  return absl::OkStatus();
}

namespace {

ParamSpec ListenParam() {
  return {.name = "listen",
          .type = ParamType::kString,
          .required = true,
          .doc = "host:port the proxy listens on; point clients here"};
}
ParamSpec UpstreamParam() {
  return {.name = "upstream",
          .type = ParamType::kString,
          .required = true,
          .doc = "host:port the proxy forwards to (name resolved once, at creation)"};
}
ParamSpec ProbabilityParam() {
  return {.name = "probability",
          .type = ParamType::kRatio,
          .default_value = "1",
          .doc = "share of connections affected (toxicity), rolled once per connection"};
}
ParamSpec DirectionParam(absl::string_view default_value) {
  return {.name = "direction",
          .type = ParamType::kEnum,
          .default_value = std::string(default_value),
          .doc = "upstream (client->upstream), downstream (upstream->client) or both",
          .choices = {"upstream", "downstream", "both"}};
}

FaultKindInfo KindInfo(std::string kind, std::string summary, std::vector<ParamSpec> params) {
  FaultKindInfo info{.kind = std::move(kind), .summary = std::move(summary)};
  info.params = {ListenParam(), UpstreamParam()};
  for (ParamSpec& p : params) info.params.push_back(std::move(p));
  info.params.push_back(ProbabilityParam());
  return info;
}

// The parameters of one spec after the generic checks, with the kind's defaults filled.
class Params {
 public:
  Params(const FaultKindInfo& info, const FaultSpec& spec) : info_(info), spec_(spec) {}

  absl::Status Check() const {
    if (!spec_.kind.empty() && spec_.kind != info_.kind) {
      return absl::InvalidArgumentError(
          absl::StrCat(info_.kind, ": spec is for kind \"", spec_.kind, "\""));
    }
    for (const auto& [name, value] : spec_.params) {
      const ParamSpec* p = info_.Find(name);
      if (p == nullptr) {
        std::vector<std::string> known;
        for (const ParamSpec& q : info_.params) known.push_back(q.name);
        return Field(name,
                     absl::StrCat("unknown parameter (known: ", absl::StrJoin(known, ", "), ")"));
      }
      if (absl::Status s = ValidateParamValue(*p, value); !s.ok()) {
        return Field(name, s.message());
      }
    }
    for (const ParamSpec& p : info_.params) {
      if (p.required && !spec_.Get(p.name)) return Field(p.name, "is required");
    }
    return absl::OkStatus();
  }

  std::string Get(absl::string_view name) const {
    if (auto v = spec_.Get(name)) return *v;
    const ParamSpec* p = info_.Find(name);
    return p == nullptr ? std::string() : p->default_value;
  }

  absl::Status Field(absl::string_view name, absl::string_view why) const {
    return absl::InvalidArgumentError(absl::StrCat(info_.kind, ": ", name, ": ", why));
  }
  template <typename T>
  absl::StatusOr<T> Parsed(absl::string_view name,
                           absl::StatusOr<T> (*parse)(absl::string_view)) const {
    auto v = parse(Get(name));
    if (!v.ok()) return Field(name, v.status().message());
    return *v;
  }

 private:
  const FaultKindInfo& info_;
  const FaultSpec& spec_;
};

// The shared part of every proxy.* factory; subclasses parse their own parameters into
// the effect.
class ProxyFactoryBase : public FaultFactory {
 public:
  explicit ProxyFactoryBase(FaultKindInfo info) : info_(std::move(info)) {}
  const FaultKindInfo& info() const override { return info_; }
  PreflightResult Preflight() const override { return {.available = true}; }

  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override {
    Params params(info_, spec);
    RETURN_IF_ERROR(params.Check());
    auto listen = ParseProxyAddress("listen", params.Get("listen"));
    if (!listen.ok()) return params.Field("listen", listen.status().message());
    auto upstream = ParseProxyAddress("upstream", params.Get("upstream"));
    if (!upstream.ok()) return params.Field("upstream", upstream.status().message());
    if (listen->ToString() == upstream->ToString()) {
      return params.Field("upstream", "must differ from listen (the proxy would loop)");
    }
    auto effect = std::make_shared<ProxyEffect>();
    ASSIGN_OR_RETURN(effect->probability, params.Parsed<double>("probability", &ParseRatio));
    if (info_.Find("direction") != nullptr) {
      auto direction = ParseProxyDirection(params.Get("direction"));
      if (!direction.ok()) return params.Field("direction", direction.status().message());
      effect->direction = *direction;
    }
    RETURN_IF_ERROR(ParseEffect(params, *effect));
    return std::make_unique<ProxyFault>(info_.kind, *std::move(listen), *std::move(upstream),
                                        std::move(effect), &ProxyManager::Global());
  }

  absl::Status RevertFromRecord(const nlohmann::json& record) const override {
    return RevertProxyFaultFromRecord(record);
  }

 protected:
  virtual absl::Status ParseEffect(const Params& params, ProxyEffect& effect) const = 0;

 private:
  const FaultKindInfo info_;
};

}  // namespace

class ProxyLatencyFactory final : public ProxyFactoryBase {
 public:
  ProxyLatencyFactory()
      : ProxyFactoryBase(
            KindInfo("proxy.latency", "delay the bytes through a TCP proxy by a fixed latency",
                     {{.name = "latency",
                       .type = ParamType::kDuration,
                       .required = true,
                       .doc = "added to every chunk in each covered direction (0 = pass-through)"},
                      DirectionParam("downstream")})) {}

 protected:
  absl::Status ParseEffect(const Params& params, ProxyEffect& effect) const override {
    effect.type = ProxyEffect::Type::kLatency;
    ASSIGN_OR_RETURN(effect.latency, params.Parsed<absl::Duration>("latency", &ParseDuration));
    return absl::OkStatus();
  }
};

class ProxyJitterFactory final : public ProxyFactoryBase {
 public:
  ProxyJitterFactory()
      : ProxyFactoryBase(
            KindInfo("proxy.jitter", "delay the bytes through a TCP proxy by latency +- jitter",
                     {{.name = "jitter",
                       .type = ParamType::kDuration,
                       .required = true,
                       .doc = "each chunk's delay is latency + uniform(-jitter, +jitter), >= 0; "
                              "order is kept"},
                      {.name = "latency",
                       .type = ParamType::kDuration,
                       .default_value = "0",
                       .doc = "base delay"},
                      DirectionParam("downstream")})) {}

 protected:
  absl::Status ParseEffect(const Params& params, ProxyEffect& effect) const override {
    effect.type = ProxyEffect::Type::kLatency;
    ASSIGN_OR_RETURN(effect.latency, params.Parsed<absl::Duration>("latency", &ParseDuration));
    ASSIGN_OR_RETURN(effect.jitter, params.Parsed<absl::Duration>("jitter", &ParseDuration));
    if (effect.jitter <= absl::ZeroDuration()) return params.Field("jitter", "must be above 0");
    return absl::OkStatus();
  }
};

class ProxyBandwidthFactory final : public ProxyFactoryBase {
 public:
  ProxyBandwidthFactory()
      : ProxyFactoryBase(
            KindInfo("proxy.bandwidth", "limit each connection's throughput through a TCP proxy",
                     {{.name = "rate",
                       .type = ParamType::kString,
                       .required = true,
                       .doc = "per connection and direction: bytes/s (1000000, 1MB/s, 512KiB/s) or "
                              "bits/s (8Mbit, 500kbit)"},
                      DirectionParam("both")})) {}

 protected:
  absl::Status ParseEffect(const Params& params, ProxyEffect& effect) const override {
    effect.type = ProxyEffect::Type::kBandwidth;
    ASSIGN_OR_RETURN(effect.bytes_per_second, params.Parsed<double>("rate", &ParseByteRate));
    return absl::OkStatus();
  }
};

class ProxyResetFactory final : public ProxyFactoryBase {
 public:
  ProxyResetFactory()
      : ProxyFactoryBase(KindInfo(
            "proxy.reset", "reset (RST) connections through a TCP proxy",
            {{.name = "target",
              .type = ParamType::kEnum,
              .default_value = "all",
              .doc = "new (accepted while the fault is active), existing (open when it was "
                     "applied) or all",
              .choices = {"new", "existing", "all"}},
             {.name = "after",
              .type = ParamType::kSize,
              .default_value = "0",
              .doc = "reset once the connection has forwarded this many bytes (both "
                     "directions) since it first saw the fault"}})) {}

 protected:
  absl::Status ParseEffect(const Params& params, ProxyEffect& effect) const override {
    effect.type = ProxyEffect::Type::kReset;
    std::string target = params.Get("target");
    effect.reset_target = target == "new"        ? ProxyEffect::ResetTarget::kNew
                          : target == "existing" ? ProxyEffect::ResetTarget::kExisting
                                                 : ProxyEffect::ResetTarget::kAll;
    ASSIGN_OR_RETURN(effect.reset_after_bytes, params.Parsed<uint64_t>("after", &ParseSize));
    return absl::OkStatus();
  }
};

class ProxyBlackholeFactory final : public ProxyFactoryBase {
 public:
  ProxyBlackholeFactory()
      : ProxyFactoryBase(KindInfo(
            "proxy.blackhole",
            "accept and hold connections through a TCP proxy, forwarding nothing (a hung peer)",
            {DirectionParam("both"),
             {.name = "timeout",
              .type = ParamType::kDuration,
              .default_value = "0",
              .doc = "close (FIN) a held connection after this long; 0 = hold until reverted"}})) {}

 protected:
  absl::Status ParseEffect(const Params& params, ProxyEffect& effect) const override {
    effect.type = ProxyEffect::Type::kBlackhole;
    ASSIGN_OR_RETURN(effect.blackhole_timeout,
                     params.Parsed<absl::Duration>("timeout", &ParseDuration));
    return absl::OkStatus();
  }
};

class ProxySlicerFactory final : public ProxyFactoryBase {
 public:
  ProxySlicerFactory()
      : ProxyFactoryBase(KindInfo(
            "proxy.slicer", "deliver the bytes through a TCP proxy in small, spaced slices",
            {{.name = "size",
              .type = ParamType::kSize,
              .default_value = "64",
              .doc = "average slice size in bytes (at least 1)"},
             {.name = "variation",
              .type = ParamType::kSize,
              .default_value = "0",
              .doc = "each slice is size +- uniform(variation) bytes, at least 1"},
             {.name = "delay",
              .type = ParamType::kDuration,
              .default_value = "1ms",
              .doc = "pause between slices"},
             DirectionParam("downstream")})) {}

 protected:
  absl::Status ParseEffect(const Params& params, ProxyEffect& effect) const override {
    effect.type = ProxyEffect::Type::kSlicer;
    ASSIGN_OR_RETURN(effect.slice_size, params.Parsed<uint64_t>("size", &ParseSize));
    ASSIGN_OR_RETURN(effect.slice_variation, params.Parsed<uint64_t>("variation", &ParseSize));
    ASSIGN_OR_RETURN(effect.slice_delay, params.Parsed<absl::Duration>("delay", &ParseDuration));
    if (effect.slice_size == 0) return params.Field("size", "must be at least 1 byte");
    return absl::OkStatus();
  }
};

CHAOSDRILL_REGISTER_FAULT(ProxyLatencyFactory)
CHAOSDRILL_REGISTER_FAULT(ProxyJitterFactory)
CHAOSDRILL_REGISTER_FAULT(ProxyBandwidthFactory)
CHAOSDRILL_REGISTER_FAULT(ProxyResetFactory)
CHAOSDRILL_REGISTER_FAULT(ProxyBlackholeFactory)
CHAOSDRILL_REGISTER_FAULT(ProxySlicerFactory)

}  // namespace chaosdrill::injector
