// Numeric socket addresses for the addon's UDP sockets (udp_socket.cc, udp_receiver.cc): text to
// sockaddr (getaddrinfo with AI_NUMERICHOST, so an IPv6 scope such as fe80::1%eth0 works), the port set
// either family, and the bound address of a socket as { address, port } for JavaScript.
#pragma once

#include <napi.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

namespace flowtel {

/** `text` as a socket address of `family` (AF_UNSPEC: either); false with the reason in `why`. */
inline bool ParseNumeric(const std::string& text, int family, sockaddr_storage* out, socklen_t* len,
                         std::string* why) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(text.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    *why = std::string("not a numeric address: ") + text + " (" + gai_strerror(rc) + ")";
    return false;
  }
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

inline void SetPort(sockaddr_storage* sa, int port) {
  if (sa->ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(sa)->sin_port = htons(static_cast<uint16_t>(port));
  else reinterpret_cast<sockaddr_in6*>(sa)->sin6_port = htons(static_cast<uint16_t>(port));
}

/** { address, port } of socket `fd`'s bound address (getsockname); undefined when closed (fd < 0). */
inline Napi::Value LocalEndpoint(Napi::Env env, int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  if (fd < 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return env.Undefined();
  char text[INET6_ADDRSTRLEN] = {0};
  int port = 0;
  if (sa.ss_family == AF_INET) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&sa);
    inet_ntop(AF_INET, &s4->sin_addr, text, sizeof text);
    port = ntohs(s4->sin_port);
  } else {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&sa);
    inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof text);
    port = ntohs(s6->sin6_port);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", Napi::String::New(env, text));
  o.Set("port", Napi::Number::New(env, port));
  return o;
}

}  // namespace flowtel
