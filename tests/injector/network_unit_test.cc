// Unit tests of network.netem, network.bandwidth and network.partition against the
// recording fakes: validation (one case per invalid parameter), what is sent to the
// kernel, ownership (only our qdisc / chains are ever removed), verification and
// rollback, revert records. The real kernel is exercised in network_kernel_test.cc.
#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "injector/bandwidth_fault.h"
#include "injector/fault_registry.h"
#include "injector/netem_fault.h"
#include "injector/netlink_qdisc_fault.h"
#include "injector/partition_fault.h"
#include "tests/injector/network_fakes.h"

namespace chaosdrill::injector {
namespace {

using testing::FakeNetlinkClient;
using testing::FakeNftablesClient;

FaultSpec Spec(const std::string& kind, std::map<std::string, std::string> params) {
  FaultSpec spec;
  spec.kind = kind;
  spec.params = std::move(params);
  return spec;
}

bool Has(const std::vector<std::string>& calls, const std::string& call) {
  return std::find(calls.begin(), calls.end(), call) != calls.end();
}

TEST_CASE("tc handles and link rates parse the way tc writes them", "[network]") {
  CHECK(*ParseTcHandle("root") == kTcRoot);
  CHECK(*ParseTcHandle("cd00:") == 0xcd000000u);
  CHECK(*ParseTcHandle("1:2") == 0x00010002u);
  CHECK(TcHandleToString(0xcd010000u) == "cd01:");
  CHECK(TcHandleToString(0x00010002u) == "1:2");
  for (const char* bad : {"", "1", ":2", "12345:", "x:1", "1:g"}) {
    INFO(bad);
    CHECK(absl::IsInvalidArgument(ParseTcHandle(bad).status()));
  }
  CHECK(*ParseLinkRate("8mbit") == 1'000'000u);
  CHECK(*ParseLinkRate("8Mbit") == 1'000'000u);
  CHECK(*ParseLinkRate("100kbit") == 12'500u);
  CHECK(*ParseLinkRate("1gbit") == 125'000'000u);
  CHECK(*ParseLinkRate("10mbps") == 10'000'000u);
  CHECK(LinkRateToString(1'000'000) == "8mbit");
  for (const char* bad : {"", "8", "fast", "-1mbit", "0mbit", "8 furlongs", "nanmbit"}) {
    INFO(bad);
    CHECK(absl::IsInvalidArgument(ParseLinkRate(bad).status()));
  }
}

TEST_CASE("NlStatus maps libnl errors to codes a caller acts on", "[network]") {
  CHECK(absl::IsNotFound(NlStatus("x", -12 /*NLE_OBJ_NOTFOUND*/)));
  CHECK(absl::IsPermissionDenied(NlStatus("x", -28 /*NLE_PERM*/)));
  CHECK(absl::IsResourceExhausted(NlStatus("x", -5 /*NLE_NOMEM*/)));
  CHECK(absl::IsAlreadyExists(NlStatus("x", -6 /*NLE_EXIST*/)));
  CHECK(absl::IsInvalidArgument(NlStatus("x", -7 /*NLE_INVAL*/)));
  CHECK(NlStatus("x", 0).ok());
  absl::Status st = NlStatus("adding tbf to veth0", -28);
  CHECK(absl::StartsWith(st.message(), "adding tbf to veth0: "));
}

TEST_CASE("NftStatus maps libnftables error text to codes", "[network]") {
  CHECK(absl::IsPermissionDenied(
      NftStatus("x", "Error: Could not process rule: Operation not permitted\n")));
  CHECK(absl::IsNotFound(NftStatus("x", "Error: No such file or directory\nlist table x")));
  CHECK(absl::IsFailedPrecondition(NftStatus("x", "Error: Device or resource busy")));
  CHECK(absl::IsInvalidArgument(NftStatus("x", "Error: syntax error, unexpected junk")));
  absl::Status st = NftStatus("applying partition", "Error: Operation not permitted");
  CHECK(absl::StrContains(st.message(), "needs root"));
}

TEST_CASE("network kinds are registered", "[network]") {
  RegisterBuiltinFaults();
  for (const char* kind : {"network.netem", "network.bandwidth", "network.partition"}) {
    INFO(kind);
    CHECK(FaultRegistry::Global().Find(kind).ok());
  }
}

TEST_CASE("netem rejects each invalid parameter, naming it", "[network]") {
  struct Case {
    std::map<std::string, std::string> params;
    const char* field;
  };
  const Case cases[] = {
      {{{"delay", "100ms"}}, "interface"},
      {{{"interface", "veth0"}, {"delay", "soon"}}, "delay"},
      {{{"interface", "veth0"}, {"delay", "2m"}}, "delay"},
      {{{"interface", "veth0"}, {"loss", "150%"}}, "loss"},
      {{{"interface", "veth0"}, {"duplicate", "-1%"}}, "duplicate"},
      {{{"interface", "veth0"}, {"reorder", "10%"}}, "reorder"},
      {{{"interface", "veth0"}, {"jitter", "10ms"}}, "jitter"},
      {{{"interface", "veth0"}, {"delay", "10ms"}, {"rate", "fast"}}, "rate"},
      {{{"interface", "veth0"}, {"delay", "10ms"}, {"parent", "x"}}, "parent"},
      {{{"interface", "veth0"}, {"delay", "10ms"}, {"limit", "0"}}, "limit"},
      {{{"interface", "veth0"}, {"delay", "10ms"}, {"bogus", "1"}}, "bogus"},
      {{{"interface", "a/b"}, {"delay", "10ms"}}, "interface"},
      {{{"interface", "averyveryverylongname"}, {"delay", "10ms"}}, "interface"},
      {{{"interface", "veth0"}}, "nothing to do"},
  };
  for (const Case& c : cases) {
    FakeNetlinkClient::State state;
    absl::StatusOr<FaultPtr> f = NetemFactory::CreateWithClient(
        Spec("network.netem", c.params), std::make_unique<FakeNetlinkClient>(&state));
    INFO(c.field << " -> " << f.status());
    CHECK(absl::IsInvalidArgument(f.status()));
    CHECK(absl::StrContains(f.status().message(), c.field));
    CHECK(state.calls.empty());
  }
}

TEST_CASE("netem inject adds our qdisc at cd00: with the options, revert removes it", "[network]") {
  FakeNetlinkClient::State state;
  auto f = NetemFactory::CreateWithClient(Spec("network.netem", {{"interface", "veth0"},
                                                                 {"delay", "100ms"},
                                                                 {"jitter", "10ms"},
                                                                 {"correlation", "25%"},
                                                                 {"loss", "1%"},
                                                                 {"rate", "8mbit"}}),
                                          std::make_unique<FakeNetlinkClient>(&state));
  REQUIRE(f.ok());
  CHECK((*f)->Describe() == "netem delay 100ms jitter 10ms loss 1% rate 8mbit on veth0");
  CHECK((*f)->RevertRecord() == nlohmann::json{{"kind", "network.netem"},
                                               {"qdisc", "netem"},
                                               {"interface", "veth0"},
                                               {"parent", "root"},
                                               {"handle", "cd00:"}});
  REQUIRE((*f)->Inject().ok());
  CHECK(Has(state.calls, "add netem 7 root cd00:"));
  const auto& o = std::get<NetemOptions>(state.last_add->options);
  CHECK(o.delay_us == 100'000);
  CHECK(o.jitter_us == 10'000);
  CHECK(o.correlation == Approx(0.25));
  CHECK(o.loss == Approx(0.01));
  CHECK(o.rate_bytes_per_s == 1'000'000);
  REQUIRE(state.qdiscs.size() == 1);
  REQUIRE((*f)->Revert().ok());
  CHECK(state.qdiscs.empty());
  CHECK(Has(state.calls, "delete 7 root cd00:"));
  state.calls.clear();
  CHECK((*f)->Revert().ok());  // idempotent: nothing of ours, nothing deleted
  for (const std::string& c : state.calls) CHECK_FALSE(absl::StartsWith(c, "delete"));
}

TEST_CASE("netem refuses to replace a root qdisc somebody else configured", "[network]") {
  FakeNetlinkClient::State state;
  state.qdiscs.push_back({.ifindex = 7, .kind = "htb", .handle = 0x00010000, .parent = kTcRoot});
  auto f = NetemFactory::CreateWithClient(
      Spec("network.netem", {{"interface", "veth0"}, {"delay", "50ms"}}),
      std::make_unique<FakeNetlinkClient>(&state));
  REQUIRE(f.ok());
  absl::Status st = (*f)->Inject();
  INFO(st);
  CHECK(absl::IsFailedPrecondition(st));
  CHECK(absl::StrContains(st.message(), "applying netem to veth0"));
  CHECK(absl::StrContains(st.message(), "htb 1:"));
  for (const std::string& c : state.calls) CHECK_FALSE(absl::StartsWith(c, "add"));
  CHECK(state.qdiscs.size() == 1);
}

TEST_CASE("netem attaches under a given parent class and leaves the root alone", "[network]") {
  FakeNetlinkClient::State state;
  state.qdiscs.push_back({.ifindex = 7, .kind = "htb", .handle = 0x00010000, .parent = kTcRoot});
  auto f = NetemFactory::CreateWithClient(
      Spec("network.netem", {{"interface", "veth0"}, {"delay", "50ms"}, {"parent", "1:2"}}),
      std::make_unique<FakeNetlinkClient>(&state));
  REQUIRE(f.ok());
  REQUIRE((*f)->Inject().ok());
  CHECK(Has(state.calls, "add netem 7 1:2 cd00:"));
  REQUIRE((*f)->Revert().ok());
  REQUIRE(state.qdiscs.size() == 1);
  CHECK(state.qdiscs[0].kind == "htb");
}

TEST_CASE("revert deletes only a qdisc with our handle and our kind", "[network]") {
  FakeNetlinkClient::State state;
  // Somebody else's qdiscs: a tbf at another handle, and (pathologically) an htb at ours.
  state.qdiscs.push_back({.ifindex = 7, .kind = "tbf", .handle = 0x00050000, .parent = kTcRoot});
  state.interfaces["veth1"] = 8;
  state.qdiscs.push_back({.ifindex = 8, .kind = "htb", .handle = kNetemHandle, .parent = kTcRoot});
  FakeNetlinkClient client(&state);
  for (const char* ifname : {"veth0", "veth1"}) {
    nlohmann::json record = {{"kind", "network.netem"},
                             {"qdisc", "netem"},
                             {"interface", ifname},
                             {"parent", "root"},
                             {"handle", "cd00:"}};
    CHECK(NetemFactory::RevertFromRecordWithClient(record, client).ok());
  }
  CHECK(state.qdiscs.size() == 2);
  for (const std::string& c : state.calls) CHECK_FALSE(absl::StartsWith(c, "delete"));
}

TEST_CASE("revert of a qdisc on an interface that is gone is OK", "[network]") {
  FakeNetlinkClient::State state;
  FakeNetlinkClient client(&state);
  nlohmann::json record = {{"kind", "network.bandwidth"},
                           {"qdisc", "tbf"},
                           {"interface", "gone0"},
                           {"parent", "root"},
                           {"handle", "cd01:"}};
  CHECK(BandwidthFactory::RevertFromRecordWithClient(record, client).ok());
}

TEST_CASE("revert records of the wrong kind or shape are refused", "[network]") {
  FakeNetlinkClient::State state;
  FakeNetlinkClient client(&state);
  CHECK(absl::IsInvalidArgument(
      NetemFactory::RevertFromRecordWithClient({{"kind", "network.netem"}}, client)));
  CHECK(absl::IsInvalidArgument(
      NetemFactory::RevertFromRecordWithClient({{"kind", "network.bandwidth"},
                                                {"qdisc", "tbf"},
                                                {"interface", "veth0"},
                                                {"parent", "root"},
                                                {"handle", "cd01:"}},
                                               client)));
  CHECK(state.calls.empty());
}

TEST_CASE("unknown interface is NotFound naming it, and nothing is added", "[network]") {
  FakeNetlinkClient::State state;
  auto f = BandwidthFactory::CreateWithClient(
      Spec("network.bandwidth", {{"interface", "nosuch0"}, {"rate", "8mbit"}}),
      std::make_unique<FakeNetlinkClient>(&state));
  REQUIRE(f.ok());
  absl::Status st = (*f)->Inject();
  CHECK(absl::IsNotFound(st));
  CHECK(absl::StrContains(st.message(), "nosuch0"));
  CHECK(state.qdiscs.empty());
}

TEST_CASE("permission denied from the kernel says root is needed", "[network]") {
  FakeNetlinkClient::State state;
  state.add_error = absl::PermissionDeniedError("Operation not permitted");
  auto f = BandwidthFactory::CreateWithClient(
      Spec("network.bandwidth", {{"interface", "veth0"}, {"rate", "8mbit"}}),
      std::make_unique<FakeNetlinkClient>(&state));
  REQUIRE(f.ok());
  absl::Status st = (*f)->Inject();
  CHECK(absl::IsPermissionDenied(st));
  CHECK(absl::StrContains(st.message(), "needs root"));
  CHECK(state.qdiscs.empty());
}

TEST_CASE("a qdisc the kernel accepted but that is not there on re-read fails Inject",
          "[network]") {
  FakeNetlinkClient::State state;
  state.lose_added_qdisc = true;
  auto f = BandwidthFactory::CreateWithClient(
      Spec("network.bandwidth", {{"interface", "veth0"}, {"rate", "8mbit"}}),
      std::make_unique<FakeNetlinkClient>(&state));
  REQUIRE(f.ok());
  absl::Status st = (*f)->Inject();
  CHECK(absl::IsInternal(st));
  CHECK(absl::StrContains(st.message(), "re-read"));
}

TEST_CASE("revert that does not take effect is reported, not claimed", "[network]") {
  FakeNetlinkClient::State state;
  auto f = BandwidthFactory::CreateWithClient(
      Spec("network.bandwidth", {{"interface", "veth0"}, {"rate", "8mbit"}}),
      std::make_unique<FakeNetlinkClient>(&state));
  REQUIRE(f.ok());
  REQUIRE((*f)->Inject().ok());
  state.ignore_delete = true;
  absl::Status st = (*f)->Revert();
  CHECK(absl::IsInternal(st));
  CHECK(absl::StrContains(st.message(), "still present"));
}

TEST_CASE("bandwidth sizes burst and queue limit from rate and latency", "[network]") {
  FakeNetlinkClient::State state;
  auto f = BandwidthFactory::CreateWithClient(
      Spec("network.bandwidth", {{"interface", "veth0"}, {"rate", "8mbit"}}),
      std::make_unique<FakeNetlinkClient>(&state));
  REQUIRE(f.ok());
  REQUIRE((*f)->Inject().ok());
  CHECK(Has(state.calls, "add tbf 7 root cd01:"));
  const auto& o = std::get<TbfOptions>(state.last_add->options);
  CHECK(o.rate_bytes_per_s == 1'000'000);
  CHECK(o.burst_bytes == 10'000);           // 10 ms of rate
  CHECK(o.limit_bytes == 50'000 + 10'000);  // 50 ms of rate + burst
  CHECK((*f)->RevertRecord()["handle"] == "cd01:");
}

TEST_CASE("bandwidth rejects each invalid parameter, naming it", "[network]") {
  struct Case {
    std::map<std::string, std::string> params;
    const char* field;
  };
  const Case cases[] = {
      {{{"interface", "veth0"}}, "rate"},
      {{{"interface", "veth0"}, {"rate", "lots"}}, "rate"},
      {{{"interface", "veth0"}, {"rate", "8mbit"}, {"burst", "100"}}, "burst"},
      {{{"interface", "veth0"}, {"rate", "8mbit"}, {"latency", "0"}}, "latency"},
      {{{"interface", "veth0"}, {"rate", "8mbit"}, {"limit", "1KiB"}}, "limit"},
      {{{"rate", "8mbit"}}, "interface"},
  };
  for (const Case& c : cases) {
    FakeNetlinkClient::State state;
    auto f = BandwidthFactory::CreateWithClient(Spec("network.bandwidth", c.params),
                                                std::make_unique<FakeNetlinkClient>(&state));
    INFO(c.field << " -> " << f.status());
    CHECK(absl::IsInvalidArgument(f.status()));
    CHECK(absl::StrContains(f.status().message(), c.field));
  }
}

TEST_CASE("partition rejects invalid CIDRs, ports and percentages, naming the field", "[network]") {
  struct Case {
    std::map<std::string, std::string> params;
    const char* field;
  };
  const Case cases[] = {
      {{{"cidrs", "10.0.0.0/33"}}, "cidrs"},
      {{{"cidrs", "10.0.0.300"}}, "cidrs"},
      {{{"cidrs", "fd00::/129"}}, "cidrs"},
      {{{"cidrs", "10.0.0.0/x"}}, "cidrs"},
      {{{"cidrs", ","}}, "cidrs"},
      {{{"ports", "0"}}, "ports"},
      {{{"ports", "70000"}}, "ports"},
      {{{"ports", "90-80"}}, "ports"},
      {{{"ports", "http"}}, "ports"},
      {{{"cidrs", "10.0.0.1"}, {"loss", "130%"}}, "loss"},
      {{{"cidrs", "10.0.0.1"}, {"loss", "0%"}}, "loss"},
      {{{"cidrs", "10.0.0.1"}, {"loss", "lots"}}, "loss"},
      {{{"cidrs", "10.0.0.1"}, {"direction", "sideways"}}, "direction"},
      {{{"cidrs", "10.0.0.1"}, {"protocol", "icmp"}}, "protocol"},
      {{{"cidrs", "10.0.0.1"}, {"interface", "a b"}}, "interface"},
      {{{"loss", "30%"}}, "refusing to drop all traffic"},
  };
  for (const Case& c : cases) {
    FakeNftablesClient::State state;
    auto f = PartitionFactory::CreateWithClient(Spec("network.partition", c.params),
                                                std::make_unique<FakeNftablesClient>(&state));
    INFO(c.field << " -> " << f.status());
    CHECK(absl::IsInvalidArgument(f.status()));
    CHECK(absl::StrContains(f.status().message(), c.field));
    CHECK(state.runs.empty());
  }
}

TEST_CASE("partition rules: one per address family and port direction, numgen for loss",
          "[network]") {
  auto s = ParsePartitionSpec(Spec("network.partition", {{"cidrs", "10.1.2.3/8, fd00::1"},
                                                         {"ports", "80,8000-8080"},
                                                         {"loss", "30%"},
                                                         {"interface", "veth0"}}));
  REQUIRE(s.ok());
  CHECK(s->ipv4 == std::vector<std::string>{"10.0.0.0/8"});  // host bits cleared
  CHECK(s->ipv6 == std::vector<std::string>{"fd00::1"});
  // 2 families x 2 port fields x 2 chains.
  CHECK(PartitionRuleCount(*s) == 8);
  nlohmann::json cmds = PartitionApplyCommands(*s);
  std::string text = cmds.dump();
  CHECK(absl::StrContains(text, R"({"numgen":{"mod":10000,"mode":"random","offset":0}})"));
  CHECK(absl::StrContains(text, R"("right":3000)"));
  CHECK(absl::StrContains(text, R"("comment":"chaosdrill:)" + s->id));
  CHECK(absl::StrContains(text, R"({"key":"iifname"})"));
  CHECK(absl::StrContains(text, R"({"range":[8000,8080]})"));
  CHECK(cmds["nftables"][0] ==
        nlohmann::json::parse(R"({"add":{"table":{"family":"inet","name":"chaosdrill"}}})"));

  auto egress_only = ParsePartitionSpec(
      Spec("network.partition", {{"cidrs", "10.0.0.2"}, {"direction", "egress"}}));
  REQUIRE(egress_only.ok());
  CHECK(PartitionRuleCount(*egress_only) == 1);
  CHECK_FALSE(absl::StrContains(PartitionApplyCommands(*egress_only).dump(), "numgen"));
}

TEST_CASE("partition revert removes only its chains and the table only when empty", "[network]") {
  FakeNftablesClient::State state;
  auto a = PartitionFactory::CreateWithClient(Spec("network.partition", {{"cidrs", "10.0.0.2"}}),
                                              std::make_unique<FakeNftablesClient>(&state));
  auto b = PartitionFactory::CreateWithClient(
      Spec("network.partition", {{"ports", "6379"}, {"direction", "ingress"}}),
      std::make_unique<FakeNftablesClient>(&state));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE((*a)->Inject().ok());
  REQUIRE((*b)->Inject().ok());
  REQUIRE(state.table.has_value());
  CHECK((*state.table)["chains"].size() == 3);
  nlohmann::json record_a = (*a)->RevertRecord();
  REQUIRE((*a)->Revert().ok());
  REQUIRE(state.table.has_value());  // b still uses it
  CHECK((*state.table)["chains"].size() == 1);
  for (const auto& chain : record_a["chains"]) {
    CHECK_FALSE((*state.table)["chains"].contains(chain.get<std::string>()));
  }
  // From the record alone, in a "fresh process".
  FakeNftablesClient other(&state);
  REQUIRE(PartitionFactory::RevertFromRecordWithClient((*b)->RevertRecord(), other).ok());
  CHECK_FALSE(state.table.has_value());
  CHECK((*a)->Revert().ok());  // idempotent
}

TEST_CASE("partition keeps the table when something else lives in it", "[network]") {
  FakeNftablesClient::State state;
  state.table = nlohmann::json{{"chains", nlohmann::json::object()}, {"other", true}};
  auto f = PartitionFactory::CreateWithClient(Spec("network.partition", {{"cidrs", "10.0.0.2"}}),
                                              std::make_unique<FakeNftablesClient>(&state));
  REQUIRE(f.ok());
  REQUIRE((*f)->Inject().ok());
  REQUIRE((*f)->Revert().ok());
  CHECK(state.table.has_value());
}

TEST_CASE("partition that nftables refuses leaves nothing and says why", "[network]") {
  FakeNftablesClient::State state;
  state.run_error = NftStatus("running nftables commands",
                              "Error: Could not process rule: Operation not permitted");
  auto f = PartitionFactory::CreateWithClient(Spec("network.partition", {{"cidrs", "10.0.0.2"}}),
                                              std::make_unique<FakeNftablesClient>(&state));
  REQUIRE(f.ok());
  absl::Status st = (*f)->Inject();
  CHECK(absl::IsPermissionDenied(st));
  CHECK(absl::StrContains(st.message(), "applying partition"));
  CHECK_FALSE(state.table.has_value());
}

TEST_CASE("partition on an unknown interface is NotFound naming it, nothing added", "[network]") {
  FakeNftablesClient::State nft;
  FakeNetlinkClient::State links;  // knows veth0 only
  auto f = PartitionFactory::CreateWithClient(
      Spec("network.partition", {{"ports", "8080"}, {"interface", "nosuch0"}}),
      std::make_unique<FakeNftablesClient>(&nft), std::make_unique<FakeNetlinkClient>(&links));
  REQUIRE(f.ok());
  absl::Status st = (*f)->Inject();
  INFO(st);
  CHECK(absl::IsNotFound(st));
  CHECK(absl::StrContains(st.message(), "interface nosuch0 not found"));
  CHECK(absl::StrContains(st.message(), "applying partition"));
  CHECK(links.calls == std::vector<std::string>{"index nosuch0"});
  CHECK(nft.runs.empty());
  CHECK_FALSE(nft.table.has_value());

  // An interface that exists is looked up, then matched by name in the rules.
  auto g = PartitionFactory::CreateWithClient(
      Spec("network.partition", {{"ports", "8080"}, {"interface", "veth0"}}),
      std::make_unique<FakeNftablesClient>(&nft), std::make_unique<FakeNetlinkClient>(&links));
  REQUIRE(g.ok());
  REQUIRE((*g)->Inject().ok());
  CHECK(links.calls.back() == "index veth0");
  REQUIRE(nft.runs.size() == 1);
  CHECK(absl::StrContains(nft.runs[0].dump(), R"("right":"veth0")"));
  REQUIRE((*g)->Revert().ok());
}

TEST_CASE("partition revert record never names a chain chaosdrill would not create", "[network]") {
  FakeNftablesClient::State state;
  FakeNftablesClient client(&state);
  absl::Status st = PartitionFactory::RevertFromRecordWithClient(
      {{"kind", "network.partition"}, {"chains", {"input"}}}, client);
  CHECK(absl::IsInvalidArgument(st));
  CHECK(state.runs.empty());
}

}  // namespace
}  // namespace chaosdrill::injector
