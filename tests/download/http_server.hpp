#pragma once
// A tiny HTTP/1.1 server on 127.0.0.1 for the download tests: one request per
// connection, routes answered by test-supplied handlers, every request logged (with its
// Range header), and responses that can be cut short to simulate a lost connection.
// Tests need no network and no Python.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ood::test {

class TestHttpServer {
 public:
  struct Request {
    std::string method, path;
    std::optional<std::uint64_t> range_start;  // from "Range: bytes=N-"
  };
  struct Response {
    Response(int status = 200, std::string body = {}, std::vector<std::pair<std::string, std::string>> headers = {})
        : status(status), body(std::move(body)), headers(std::move(headers)) {}
    int status = 200;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    /// Serve "Range: bytes=N-" with 206 (a 200 answer when false, as some servers do).
    bool honour_range = true;
    /// Send only this many body bytes, then close (Content-Length still the full size).
    std::optional<std::size_t> cut_after;
  };
  using Handler = std::function<Response(const Request&, int call)>;

  TestHttpServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("test server: socket failed");
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("test server: bind/listen on 127.0.0.1 failed");
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TestHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  void route(const std::string& path, Handler handler) {
    std::lock_guard<std::mutex> lock(mutex_);
    routes_[path] = std::move(handler);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::vector<Request> requests(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Request> out;
    for (const auto& r : log_)
      if (r.path == path) out.push_back(r);
    return out;
  }

  /// A port on 127.0.0.1 where nothing listens (bound, then released).
  static int closed_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) continue;
      handle(client);
      ::close(client);
    }
  }

  void handle(int client) {
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0) return;
      head.append(buf, static_cast<std::size_t>(n));
    }
    Request req;
    const auto sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
    req.method = head.substr(0, sp1);
    req.path = head.substr(sp1 + 1, sp2 - sp1 - 1);
    for (const std::string key : {"Range: bytes=", "range: bytes="})
      if (const auto pos = head.find(key); pos != std::string::npos)
        req.range_start = std::stoull(head.substr(pos + key.size()));
    Handler handler;
    int call = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      log_.push_back(req);
      for (const auto& r : log_) call += r.path == req.path;
      if (auto it = routes_.find(req.path); it != routes_.end()) handler = it->second;
    }
    Response res = handler ? handler(req, call) : Response{404, "not found"};
    std::string body = res.body;
    std::vector<std::pair<std::string, std::string>> headers = res.headers;
    int status = res.status;
    if (status == 200 && req.range_start && res.honour_range) {
      const std::uint64_t start = *req.range_start;
      if (start >= res.body.size()) {
        status = 416;
        headers.emplace_back("Content-Range", "bytes */" + std::to_string(res.body.size()));
        body.clear();
      } else {
        status = 206;
        headers.emplace_back("Content-Range", "bytes " + std::to_string(start) + "-" +
                                                  std::to_string(res.body.size() - 1) + "/" +
                                                  std::to_string(res.body.size()));
        body = res.body.substr(start);
      }
    }
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n";
    for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
    out += "\r\n";
    out += res.cut_after ? body.substr(0, std::min(*res.cut_after, body.size())) : body;
    std::size_t sent = 0;
    while (sent < out.size()) {
      const ssize_t n = ::send(client, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  static std::string reason(int status) {
    switch (status) {
      case 200: return "OK";
      case 206: return "Partial Content";
      case 302: return "Found";
      case 404: return "Not Found";
      case 416: return "Range Not Satisfiable";
      case 500: return "Internal Server Error";
      case 503: return "Service Unavailable";
      default: return "Status";
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::map<std::string, Handler> routes_;
  std::vector<Request> log_;
};

}  // namespace ood::test
