// A stand-in for the host in tests of `network: netns`: the calling test case re-runs
// itself (its binary, that test case only) under `ip netns exec` in a fresh network
// namespace, so every thread of the process that runs the body — gRPC's own included —
// lives there, and the links, addresses and nftables rules the service and its faults
// make stay inside it. The namespace is deleted afterwards, also when the body failed.
//
//   TEST_CASE("netns: ...", "[root][netns]") {
//     if (!RunInFreshNetns()) return;  // outside: re-ran the body in a namespace
//     ...                               // inside: the body
//   }
//
// Outside, RunInFreshNetns prints the inner run's output, CHECKs that it passed, and
// CHECKs that no `cdr*` link is left in the namespace once it exited (what a crashed
// service would leave), then returns false. It SKIPs (false) without root or iproute2.
// Test case names must not contain commas or brackets (they are a Catch test filter).
#pragma once

#include <string>
#include <vector>

#include "tests/test_support.h"

namespace chaosdrill::testing {

bool RunInFreshNetns(int timeout_ms = 240'000);

// Inside: whether this process runs in a namespace made by RunInFreshNetns.
bool InFreshNetns();

// `ip -j link` of this process's namespace: interface names starting with `prefix`.
std::vector<std::string> LinksNamed(const std::string& prefix);

// `nft -j list ruleset` and `tc -j qdisc show dev IFACE` of this namespace: the witnesses
// (the command's stdout, or "rc=N <stderr>" when it failed).
std::string NftRuleset();
std::string TcQdiscs(const std::string& iface);

}  // namespace chaosdrill::testing
