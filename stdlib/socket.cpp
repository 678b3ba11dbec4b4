// socket.cpp — TCP plumbing shared by `net` and `http.serve` (see socket.h).
#include "stdlib/socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <mutex>

#include "vm/collections.h"
#include "vm/native.h"
#include "weft/runtime/reactor.hpp"
#include "weft/runtime/runtime.hpp"

namespace weft::stdlib {

void Socket::close_socket() {
    if (closed.exchange(true)) return;
    int f = fd.load();
    if (f < 0) return;
    shutdown(f, SHUT_RDWR);
    if (waiters.load() == 0) release_fd();
}

void Socket::release_fd() {
    int f = fd.exchange(-1);
    if (f >= 0) ::close(f);
}

bool Socket::wait(bool write, double timeout) {
    int f = fd.load();
    if (f < 0 || closed.load()) return true;
    waiters.fetch_add(1);
    struct Leave {
        Socket* s;
        ~Leave() {
            if (s->waiters.fetch_sub(1) == 1 && s->closed.load()) s->release_fd();
        }
    } leave{this};
    double t = timeout < 0 ? std::numeric_limits<double>::infinity() : timeout;
    if (rt::current_task()) return rt::wait_fd(f, write ? rt::Interest::Write : rt::Interest::Read, t);
    pollfd p{f, short(write ? POLLOUT : POLLIN), 0};
    int ms = timeout < 0 ? -1 : int(std::min(timeout * 1000 + 1, 1e9));
    int r;
    while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR) {
    }
    return r > 0;
}

void raise_open_files_limit() {
    static std::once_flag once;
    std::call_once(once, [] {
        rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    });
}

std::string host_port(const std::string& host, int port) {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Resolved resolve(const std::string& host, int port, bool passive) {
    Resolved r = rt::run_blocking([host, port, passive] {
        Resolved out;
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG;
        addrinfo* res = nullptr;
        int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints, &res);
        if (rc != 0)
            throw WeftError(ErrorKind::NetworkError,
                            "cannot resolve '" + host + "': " + gai_strerror(rc));
        for (addrinfo* a = res; a; a = a->ai_next) {
            sockaddr_storage ss{};
            memcpy(&ss, a->ai_addr, a->ai_addrlen);
            out.addrs.push_back(ss);
            out.lens.push_back(a->ai_addrlen);
            out.families.push_back(a->ai_family);
        }
        freeaddrinfo(res);
        return out;
    });
    if (r.addrs.empty()) throw WeftError(ErrorKind::NetworkError, "cannot resolve '" + host + "'");
    return r;
}

// (host, port) of a socket address.
Value addr_tuple(const sockaddr_storage& ss) {
    char buf[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        port = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        port = ntohs(in6->sin6_port);
    }
    return make_tuple({make_str(buf), Value::integer(port)});
}

int listen_on(const std::string& host, int port, int backlog, int& bound_port) {
    raise_open_files_limit();
    Resolved r = resolve(host, port, true);
    int fd = socket(r.families[0], SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw WeftError(ErrorKind::NetworkError, "cannot listen on " + host_port(host, port) + ": " + strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&r.addrs[0]), r.lens[0]) != 0 || listen(fd, backlog) != 0) {
        int e = errno;
        ::close(fd);
        throw WeftError(ErrorKind::NetworkError, "cannot listen on " + host_port(host, port) + ": " + strerror(e));
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    bound_port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                          : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    return fd;
}

}  // namespace weft::stdlib
