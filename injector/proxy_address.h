// A TCP endpoint of a proxy fault ("127.0.0.1:8000", "[::1]:8000", "replica-1:8001"),
// parsed and resolved once when the fault is created, so the proxy's event loop never
// blocks on name resolution. Errors name the parameter the text came from.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chaosdrill::injector {

struct ProxyAddress {
  std::string text;  // as written: "localhost:8000"
  sockaddr_storage storage = {};
  socklen_t length = 0;

  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
  uint16_t port() const;
  // Numeric form of the resolved address: "127.0.0.1:8000", "[::1]:8000".
  std::string ToString() const;
};

// Parses "host:port" or "[v6]:port" (port 1..65535) and resolves host (an IP literal or a
// name; the first address getaddrinfo returns is used). InvalidArgument naming `field`
// ("listen", "upstream") when the text is malformed or the host does not resolve.
absl::StatusOr<ProxyAddress> ParseProxyAddress(absl::string_view field, absl::string_view text);

}  // namespace chaosdrill::injector
