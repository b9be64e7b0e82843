#include "injector/proxy_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace chaosdrill::injector {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": \"", text, "\" ", why,
                                                 " (expected host:port, e.g. 127.0.0.1:8000 "
                                                 "or [::1]:8000)"));
}

}  // namespace

uint16_t ProxyAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}

std::string ProxyAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof(buf));
    return absl::StrCat(buf, ":", port());
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf,
              sizeof(buf));
    return absl::StrCat("[", buf, "]:", port());
  }
  return text;
}

absl::StatusOr<ProxyAddress> ParseProxyAddress(absl::string_view field, absl::string_view text) {
  if (text.empty()) return Invalid(field, text, "is empty");
  std::string host;
  absl::string_view port_text;
  if (text.front() == '[') {
    size_t close = text.find("]:");
    if (close == absl::string_view::npos) return Invalid(field, text, "has no ]:port");
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return Invalid(field, text, "has no :port");
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return Invalid(field, text, "is an IPv6 address without brackets");
    }
  }
  if (host.empty()) return Invalid(field, text, "has no host");
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535) {
    return Invalid(field, text, "has a port outside 1..65535");
  }
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* result = nullptr;
  std::string service = absl::StrCat(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    return Invalid(field, text, absl::StrCat("does not resolve: ", gai_strerror(rc)));
  }
  ProxyAddress address;
  address.text = std::string(text);
  std::memcpy(&address.storage, result->ai_addr, result->ai_addrlen);
  address.length = result->ai_addrlen;
  freeaddrinfo(result);
  return address;
}

}  // namespace chaosdrill::injector
