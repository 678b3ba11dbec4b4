// http.cpp — the `http` module: get/post/put/patch/delete/head/options and
// request(method, url, ...) returning a Response host object (status, reason,
// headers, text, bytes, json(), ok, raise_for_status(), url, elapsed), and the
// error type http.HTTPError (a NetworkError with .status and .url).
//
// Transport: libcurl's multi-socket API, driven from the requesting tasks
// themselves on the runtime's reactor. Nothing here owns a thread and no worker
// ever blocks in the kernel on the network:
//
//   * One process-wide multi handle (Client) holds every transfer in flight, so
//     connections (and DNS answers) are pooled and reused across requests and
//     tasks. libcurl's handles are not thread-safe; every call into the multi
//     handle is made under Client::mu_, which is never held across a wait.
//   * curl reports the sockets it wants watched (CURLMOPT_SOCKETFUNCTION) and
//     one timer (CURLMOPT_TIMERFUNCTION). The sockets go into an epoll set of our
//     own, so "any of curl's sockets is ready" is a single pollable fd, and the
//     runtime's readiness wait (rt::wait_fd, one fd per wait) is enough.
//   * Leader/followers: among the tasks with a transfer in flight exactly one,
//     the leader, waits in rt::wait_readable(epoll fd, curl's timer); the others
//     park on a one-slot channel of their transfer. When the leader wakes it runs
//     curl_multi_socket_action for the ready sockets (and the timer), collects
//     finished transfers and wakes their tasks. When its own transfer ends (or it
//     is cancelled) it hands leadership to another waiting task.
//   * An eventfd in the epoll set lets a follower cut the leader's wait short
//     when curl's timer moves earlier than the leader's wake-up (for instance a
//     newly added transfer with a short connect timeout).
//
// Why not a dedicated driver task: every Weft task belongs to a scope and a
// program ends only when its tasks end, so a background task that outlives the
// requests would need special-casing in scopes and in the deadlock detector.
// Why not drive curl from the reactor thread with Asio descriptors: the
// requesting tasks would then park on something the deadlock detector cannot
// see (it counts timers, blocking calls and reactor waits), and curl's callbacks
// would run on the thread that serves every other socket. With leader/followers
// some task is always in a reactor wait while transfers are in flight, and curl
// runs on workers, between waits.
//
// Capabilities: the URL's host and port (the scheme's default when none is
// written) must be allowed by --allow-net, checked before anything is sent.
// Redirects are followed here, not by curl (CURLOPT_FOLLOWLOCATION is off), so
// every hop is checked the same way before it is requested. Proxies from the
// environment are ignored (the connection would go to a host the program was
// not granted); only http and https are spoken. TLS certificates are verified
// (verify=False turns that off, verify="ca.pem" names the CA bundle: a file read,
// so it needs --allow-read).
//
// Cancellation: a cancelled task (cancel(), `with timeout(...)`) removes its
// transfer from the multi handle before Cancelled propagates, which closes its
// connection if the exchange was half done.
#include "stdlib/lazy_libs.h"
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmath>
#include <functional>
#include <limits>
#include <mutex>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/capabilities.h"
#include "vm/interp.h"
#include "vm/lib_internal.h"
#include "weft/runtime/channel.hpp"
#include "weft/runtime/reactor.hpp"
#include "weft/runtime/runtime.hpp"

namespace weft {

namespace {

using stdlib::Params;
using stdlib::self_as;

constexpr int kMaxRedirects = 30;     // what Python's requests allows
constexpr size_t kEasyPoolMax = 256;  // idle easy handles kept for reuse
constexpr size_t kMinConnects = 64;   // connection cache floor (see perform)
constexpr uint8_t kFdNone = 0, kFdWatched = 1, kFdParked = 2;  // Client::fd_state_
constexpr int kEpollBatch = 256;                               // events taken per epoll_wait
constexpr double kIdleCheck = 1.0;                             // seconds; see lead_once
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
constexpr const char* kUserAgent = "weft/0.1";

// ---------------------------------------------------------------------------
// One exchange on an easy handle, in flight in the Client.

struct Transfer {
    CURL* easy = nullptr;
    char errbuf[CURL_ERROR_SIZE] = {};
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
    std::string reason;
    long status = 0;  // from the status line, as soon as it arrives
    CURLcode result = CURLE_OK;
    // Streaming (http_exchange with on_data): the body is handed to the requesting task in
    // pieces as they arrive instead of collected; on_body wakes the task for each.
    bool streaming = false;
    // Wakes the waiting task: its transfer finished, it should take the lead, or (streaming)
    // body bytes arrived.
    rt::Channel<char> wake = rt::Channel<char>::make(1);
    // Guarded by Client::mu_:
    bool done = false;
    bool in_multi = false;
    Transfer* prev = nullptr;  // the Client's list of transfers in flight
    Transfer* next = nullptr;
};

// curl's callbacks are C: an exception must not cross them. Returning a short
// count makes curl fail the transfer (CURLE_WRITE_ERROR), reported as a
// NetworkError.
size_t on_body(char* data, size_t size, size_t n, void* ud) try {
    auto* t = static_cast<Transfer*>(ud);
    t->body.append(data, size * n);
    if (t->streaming) t->wake.try_send(1);  // a full slot already wakes the task
    return size * n;
} catch (...) {
    return 0;
}

// CURLOPT_SOCKOPTFUNCTION: curl's sockets must not leak into programs started
// with proc (curl does not set FD_CLOEXEC itself).
int on_sockopt(void*, curl_socket_t fd, curlsocktype) {
    fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    return CURL_SOCKOPT_OK;
}

std::string trim(std::string_view s) {
    size_t a = 0, b = s.size();
    while (a < b && (s[a] == ' ' || s[a] == '\t'))
        ++a;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r' || s[b - 1] == '\n'))
        --b;
    return std::string(s.substr(a, b - a));
}

// Header lines of every response curl reads (an interim 100 Continue included):
// a status line starts a new header block.
size_t on_header(char* data, size_t size, size_t n, void* ud) try {
    auto* t = static_cast<Transfer*>(ud);
    std::string_view line(data, size * n);
    if (line.substr(0, 5) == "HTTP/") {
        t->headers.clear();
        t->reason.clear();
        size_t sp = line.find(' ');
        if (sp != std::string_view::npos) t->status = atol(std::string(line.substr(sp + 1, 3)).c_str());
        if (sp != std::string_view::npos) {
            size_t sp2 = line.find(' ', sp + 1);
            if (sp2 != std::string_view::npos) t->reason = trim(line.substr(sp2 + 1));
        }
        return size * n;
    }
    size_t colon = line.find(':');
    if (colon != std::string_view::npos && colon > 0)
        t->headers.emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
    return size * n;
} catch (...) {
    return 0;
}

// ---------------------------------------------------------------------------
// The shared multi handle and its leader/followers driver (see the top comment).

class Client {
  public:
    static Client& instance() {
        static Client c;
        return c;
    }

    // Takes an idle easy handle or makes one.
    CURL* take_easy() {
        {
            std::lock_guard<std::mutex> g(mu_);
            if (!idle_easy_.empty()) {
                CURL* e = idle_easy_.back();
                idle_easy_.pop_back();
                return e;
            }
        }
        CURL* e = lazy::curl().easy_init();
        if (!e) throw WeftError(ErrorKind::Error, "out of memory (curl_easy_init)");
        return e;
    }

    // Returns an easy handle for reuse (each hop resets it before use).
    void give_easy(CURL* e) {
        std::lock_guard<std::mutex> g(mu_);
        if (idle_easy_.size() < kEasyPoolMax) {
            idle_easy_.push_back(e);
            return;
        }
        lazy::curl().easy_cleanup(e);
    }

    // Runs `t` (its easy handle fully configured) to completion in the calling
    // task; afterwards t.result holds curl's outcome. Raises Cancelled (the
    // transfer is withdrawn first). With `on_data` (t.streaming), the body is passed to it in
    // pieces as they arrive, from the calling task with no lock held (it may wait), and the
    // status line is known by then (t.status); t.body is left empty.
    void perform(Transfer& t, const std::function<void(long, std::string&)>& on_data = {}) {
        std::unique_lock<std::mutex> lk(mu_);
        // Adding a handle sets curl's timer to "now", and run_timer() below serves
        // it at once: the leader need not be woken for that, only if the timer
        // ends up earlier than the leader's wake-up.
        no_kick_ = true;
        CURLMcode mc = lazy::curl().multi_add_handle(multi_, t.easy);
        if (mc != CURLM_OK) {
            no_kick_ = false;
            throw WeftError(ErrorKind::NetworkError,
                            std::string("cannot start request: ") + lazy::curl().multi_strerror(mc));
        }
        t.in_multi = true;
        link(&t);
        // curl sizes its connection cache by the handles present at each moment
        // (4x), so between bursts it closes connections it will want again; keep
        // room for the most ever in flight instead.
        if (++in_flight_ > peak_in_flight_) {
            peak_in_flight_ = in_flight_;
            if (peak_in_flight_ * 2 > max_connects_) {
                max_connects_ = peak_in_flight_ * 2;
                lazy::curl().multi_setopt(multi_, CURLMOPT_MAXCONNECTS, long(max_connects_));
            }
        }
        // Start connecting now rather than at the leader's next wake-up.
        run_timer();
        no_kick_ = false;
        if (leading_ && timer_deadline_ < leader_wake_) kick();
        collect_done();
        // Hands what has arrived to on_data (lock released meanwhile).
        auto deliver = [&] {
            if (!on_data || t.body.empty()) return;
            std::string piece;
            piece.swap(t.body);
            long status = t.status;
            lk.unlock();
            on_data(status, piece);
            lk.lock();
        };
        try {
            while (!t.done) {
                if (on_data && !t.body.empty()) {
                    deliver();
                    continue;
                }
                if (!leading_) {
                    lead_once(lk, t);
                    continue;
                }
                lk.unlock();
                t.wake.recv();  // done, asked to take the lead, or (streaming) data arrived
                lk.lock();
            }
            deliver();
        } catch (...) {
            if (!lk.owns_lock()) lk.lock();
            if (t.in_multi) {
                lazy::curl().multi_remove_handle(multi_, t.easy);
                t.in_multi = false;
                unlink(&t);
            }
            hand_off();
            throw;
        }
        hand_off();
    }

  private:
    Client() {
        multi_ = lazy::curl().multi_init();
        epfd_ = epoll_create1(EPOLL_CLOEXEC);
        kick_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (!multi_ || epfd_ < 0 || kick_fd_ < 0) {
            fprintf(stderr, "weft: http: cannot create the event set: %s\n", strerror(errno));
            abort();
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = kick_fd_;
        epoll_ctl(epfd_, EPOLL_CTL_ADD, kick_fd_, &ev);
        lazy::curl().multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Client::on_socket);
        lazy::curl().multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
        lazy::curl().multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Client::on_timer);
        lazy::curl().multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
        max_connects_ = kMinConnects;
        lazy::curl().multi_setopt(multi_, CURLMOPT_MAXCONNECTS, long(max_connects_));
    }

    ~Client() {
        for (CURL* e : idle_easy_)
            lazy::curl().easy_cleanup(e);
        lazy::curl().multi_cleanup(multi_);
        close(epfd_);
        close(kick_fd_);
    }

    // CURLMOPT_SOCKETFUNCTION: keep the epoll set equal to what curl wants watched.
    // Level-triggered, so events left unread by one round are seen by the next. A socket
    // curl stops watching is parked (registered for no events) rather than removed: a
    // pooled connection is watched again by its next request, and one epoll_ctl(MOD) is
    // half the cost of DEL now and ADD then. A parked socket still reports hang-up and
    // errors; dispatch() then removes it (curl finds out when it next uses it).
    static int on_socket(CURL*, curl_socket_t s, int what, void* userp, void*) {
        auto* c = static_cast<Client*>(userp);
        if (s < 0) return 0;
        if (size_t(s) >= c->fd_state_.size()) c->fd_state_.resize(size_t(s) + 64, kFdNone);
        uint8_t& state = c->fd_state_[size_t(s)];
        epoll_event ev{};
        ev.data.fd = s;
        if (what == CURL_POLL_REMOVE) {
            if (state == kFdWatched && epoll_ctl(c->epfd_, EPOLL_CTL_MOD, s, &ev) == 0)
                state = kFdParked;
            else
                state = kFdNone;  // closed already: the kernel dropped it from the set
            return 0;
        }
        ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
        // The state may be stale when curl closed a parked socket and the number was reused.
        if (state == kFdNone) {
            if (epoll_ctl(c->epfd_, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
                epoll_ctl(c->epfd_, EPOLL_CTL_MOD, s, &ev);
        } else if (epoll_ctl(c->epfd_, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT) {
            epoll_ctl(c->epfd_, EPOLL_CTL_ADD, s, &ev);
        }
        state = kFdWatched;
        return 0;
    }

    // CURLMOPT_TIMERFUNCTION: remember the deadline; wake the leader if it now
    // sleeps past it.
    static int on_timer(CURLM*, long ms, void* userp) {
        auto* c = static_cast<Client*>(userp);
        c->timer_deadline_ = ms < 0 ? kNever : rt::now_ns() + int64_t(ms) * 1000000;
        if (!c->no_kick_ && c->leading_ && c->timer_deadline_ < c->leader_wake_) c->kick();
        return 0;
    }

    void kick() {
        uint64_t one = 1;
        [[maybe_unused]] ssize_t w = write(kick_fd_, &one, sizeof one);
    }

    // One round of leadership, for the transfer `t` of the calling task: handle
    // what is ready now; if that finished `t`, stop; otherwise give the tasks just
    // woken a turn (under load more is ready when we come back, and a readiness
    // wait costs a trip through the reactor thread) or, when nothing was ready,
    // wait for a socket or curl's timer. Called and returns with `lk` held.
    void lead_once(std::unique_lock<std::mutex>& lk, Transfer& t) {
        int handled = dispatch();
        if (t.done) return;
        leading_ = true;
        leader_ = &t;
        int64_t now = rt::now_ns();
        if (handled > 0 || timer_deadline_ <= now) {
            leader_wake_ = 0;  // no kicks needed: we look again right after the yield
            lk.unlock();
            try {
                rt::checkpoint();
            } catch (...) {
                lk.lock();
                leading_ = false;
                leader_ = nullptr;
                leader_wake_ = kNever;
                throw;
            }
            lk.lock();
        } else {
            leader_wake_ = timer_deadline_;
            // Without a timer, still look in once a second: a missed timer call
            // must cost a second, not a hung request.
            double timeout =
                timer_deadline_ == kNever ? kIdleCheck : double(timer_deadline_ - now) / 1e9;
            lk.unlock();
            bool ready;
            try {
                ready = rt::wait_readable(epfd_, timeout);
            } catch (...) {
                lk.lock();
                leading_ = false;
                leader_ = nullptr;
                leader_wake_ = kNever;
                throw;
            }
            lk.lock();
            if (!ready && timer_deadline_ == kNever) timer_deadline_ = 0;  // the idle check
        }
        leading_ = false;
        leader_ = nullptr;
        leader_wake_ = kNever;
    }

    // Runs curl on every ready socket and, when due, its timer; returns how many
    // sockets and timer runs there were.
    int dispatch() {
        epoll_event evs[kEpollBatch];
        int n = std::max(0, epoll_wait(epfd_, evs, kEpollBatch, 0));
        int running = 0;
        for (int i = 0; i < n; ++i) {
            int fd = evs[i].data.fd;
            if (fd == kick_fd_) {
                uint64_t v;
                [[maybe_unused]] ssize_t r = read(kick_fd_, &v, sizeof v);
                continue;
            }
            if (size_t(fd) < fd_state_.size() && fd_state_[size_t(fd)] == kFdParked) {
                // A pooled connection hung up while idle: stop watching it.
                epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
                fd_state_[size_t(fd)] = kFdNone;
                continue;
            }
            int flags = 0;
            if (evs[i].events & (EPOLLIN | EPOLLHUP)) flags |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
            if (evs[i].events & EPOLLERR) flags |= CURL_CSELECT_ERR;
            lazy::curl().multi_socket_action(multi_, fd, flags, &running);
        }
        int handled = n;
        if (rt::now_ns() >= timer_deadline_) {
            run_timer();
            ++handled;
        }
        collect_done();
        return handled;
    }

    // curl's timer is one-shot: once it has fired, curl calls on_timer again only
    // when it wants another wake-up, so it is consumed before the call.
    void run_timer() {
        timer_deadline_ = kNever;
        int running = 0;
        lazy::curl().multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
    }

    // Finished transfers leave the multi handle; their tasks are woken.
    void collect_done() {
        int left = 0;
        while (CURLMsg* m = lazy::curl().multi_info_read(multi_, &left)) {
            if (m->msg != CURLMSG_DONE) continue;
            CURL* easy = m->easy_handle;
            CURLcode result = m->data.result;  // `m` dies with remove_handle
            Transfer* t = nullptr;
            lazy::curl().easy_getinfo(easy, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
            lazy::curl().multi_remove_handle(multi_, easy);
            if (!t) continue;
            t->result = result;
            t->done = true;
            t->in_multi = false;
            unlink(t);
            t->wake.try_send(1);
            // Lost wake-up: the leader does not listen on its channel while it waits on epfd_.
            // When another task's curl call (perform's run_timer) finishes the leader's own
            // transfer, the token above goes unread, and the socket event that would have
            // woken the leader may be gone too (this call read the socket to the end, possibly
            // before the leader's wait was registered with the reactor): the leader's request
            // would then end only at the next event of some other transfer, or at the idle
            // check a second later. So cut its wait short. (The leader's own dispatch runs
            // with leading_ false and never kicks; leader_wake_ 0 means it looks again anyway.)
            if (t == leader_ && leader_wake_ != 0) kick();
        }
    }

    // Without a leader, a waiting task must become one: wake the oldest.
    void hand_off() {
        if (!leading_ && head_) head_->wake.try_send(1);
    }

    void link(Transfer* t) {
        t->prev = tail_;
        t->next = nullptr;
        (tail_ ? tail_->next : head_) = t;
        tail_ = t;
    }
    void unlink(Transfer* t) {
        --in_flight_;
        (t->prev ? t->prev->next : head_) = t->next;
        (t->next ? t->next->prev : tail_) = t->prev;
        t->prev = t->next = nullptr;
    }

    std::mutex mu_;
    CURLM* multi_ = nullptr;
    int epfd_ = -1;                    // curl's sockets, plus kick_fd_
    int kick_fd_ = -1;                 // eventfd: shortens the leader's wait
    int64_t timer_deadline_ = kNever;  // curl's timer (steady ns)
    bool leading_ = false;             // a task waits on epfd_ (only it runs dispatch)
    Transfer* leader_ = nullptr;       // that task's own transfer (while leading_)
    int64_t leader_wake_ = kNever;     // when that wait times out
    bool no_kick_ = false;             // on_timer must not kick (see perform)
    Transfer* head_ = nullptr;         // transfers in flight, oldest first
    Transfer* tail_ = nullptr;
    std::vector<CURL*> idle_easy_;
    size_t in_flight_ = 0;  // transfers in the multi handle
    size_t peak_in_flight_ = 0;
    size_t max_connects_ = 0;        // CURLMOPT_MAXCONNECTS as last set
    std::vector<uint8_t> fd_state_;  // by fd: kFdNone, kFdWatched or kFdParked
};

// ---------------------------------------------------------------------------
// URLs

struct UrlParts {
    std::string url;  // normalized, with the query parameters appended
    std::string scheme, host;
    int port = -1;
};

struct CurlUrl {
    CURLU* h = lazy::curl().url();
    ~CurlUrl() { lazy::curl().url_cleanup(h); }
    std::string get(CURLUPart part, unsigned flags = 0) const {
        char* s = nullptr;
        if (lazy::curl().url_get(h, part, &s, flags) != CURLUE_OK || !s) return "";
        std::string out(s);
        lazy::curl().free(s);
        return out;
    }
};

// Parses and checks an absolute http(s) URL; appends `query` (already encoded).
// ValueError for a malformed URL or another scheme.
UrlParts parse_url(const std::string& url, const std::string& query = "") {
    CurlUrl u;
    if (!u.h) throw WeftError(ErrorKind::Error, "out of memory (curl_url)");
    CURLUcode rc = lazy::curl().url_set(u.h, CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME);
    if (rc != CURLUE_OK) {
        std::string why = lazy::curl().url_strerror(rc);
        if (url.find("://") == std::string::npos)
            why = "no scheme (perhaps you meant 'http://" + url + "'?)";
        throw WeftError(ErrorKind::ValueError, "invalid URL '" + url + "': " + why);
    }
    UrlParts p;
    p.scheme = u.get(CURLUPART_SCHEME);
    for (auto& ch : p.scheme)
        ch = char(std::tolower((unsigned char)ch));
    if (p.scheme != "http" && p.scheme != "https")
        throw WeftError(ErrorKind::ValueError, "unsupported URL scheme '" + p.scheme + "' in '" +
                                                   url + "' (http and https only)");
    p.host = u.get(CURLUPART_HOST);
    if (p.host.empty())
        throw WeftError(ErrorKind::ValueError, "invalid URL '" + url + "': no host");
    std::string port = u.get(CURLUPART_PORT, CURLU_DEFAULT_PORT);
    p.port = port.empty() ? -1 : std::atoi(port.c_str());
    if (!query.empty()) lazy::curl().url_set(u.h, CURLUPART_QUERY, query.c_str(), CURLU_APPENDQUERY);
    p.url = u.get(CURLUPART_URL);
    if (p.url.empty()) p.url = url;
    return p;
}

// application/x-www-form-urlencoded, as Python's urllib.parse.quote_plus.
void form_escape(std::string& out, std::string_view s) {
    static const char* kHex = "0123456789ABCDEF";
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += char(c);
        } else if (c == ' ') {
            out += '+';
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
}

std::string form_text(const Value& v) {
    if (v.is(ObjType::Bytes)) return v.as<BytesObj>()->data;
    return to_str(v);
}

// A dict (a list value means the key repeats) or a list of (key, value) pairs,
// encoded as a query string or form body; None values are left out.
std::string form_encode(CallContext& cx, const Value& v, const char* what) {
    std::vector<std::pair<Value, Value>> pairs;
    if (v.is(ObjType::Dict)) {
        auto* d = v.as<DictObj>();
        for (size_t k = 0; k < d->table.end_index(); ++k) {
            auto& e = d->table.entry(k);
            if (!e.live) continue;
            if (e.value.is(ObjType::List) || e.value.is(ObjType::Tuple)) {
                for (auto& item : collect(cx, e.value))
                    pairs.emplace_back(e.key, item);
            } else {
                pairs.emplace_back(e.key, e.value);
            }
        }
    } else if (v.is(ObjType::List) || v.is(ObjType::Tuple)) {
        for (auto& item : collect(cx, v)) {
            if (!item.is(ObjType::Tuple) || item.as<TupleObj>()->items.size() != 2)
                throw WeftError(
                    ErrorKind::TypeError,
                    std::string(what) + " must be a dict or a list of (key, value) pairs");
            pairs.emplace_back(item.as<TupleObj>()->items[0], item.as<TupleObj>()->items[1]);
        }
    } else {
        throw WeftError(ErrorKind::TypeError,
                        std::string(what) +
                            " must be a dict or a list of (key, value) pairs, not " + type_name(v));
    }
    std::string out;
    for (auto& [k, val] : pairs) {
        if (val.is_none()) continue;
        if (!out.empty()) out += '&';
        form_escape(out, form_text(k));
        out += '=';
        form_escape(out, form_text(val));
    }
    return out;
}

// ---------------------------------------------------------------------------
// Responses

std::string lower(std::string s) {
    for (auto& c : s)
        c = char(std::tolower((unsigned char)c));
    return s;
}

const char* standard_reason(long code) {
    switch (code) {
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 202:
            return "Accepted";
        case 204:
            return "No Content";
        case 301:
            return "Moved Permanently";
        case 302:
            return "Found";
        case 303:
            return "See Other";
        case 304:
            return "Not Modified";
        case 307:
            return "Temporary Redirect";
        case 308:
            return "Permanent Redirect";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 409:
            return "Conflict";
        case 418:
            return "I'm a Teapot";
        case 429:
            return "Too Many Requests";
        case 500:
            return "Internal Server Error";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        default:
            return "";
    }
}


std::string latin1_to_utf8(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s)
        lib::utf8_append(out, c);
    return out;
}

struct ResponseObj : OpaqueObj {
    int64_t status = 0;
    std::string reason, url, method;
    double elapsed = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // lower-case names, merged
    std::string body;
    // `text` is decoded on first use, once (a response may be read by several tasks).
    std::once_flag text_once;
    std::string text;
    explicit ResponseObj(const OpaqueClass* c) : OpaqueObj(c) {}

    const std::string* header(std::string_view name) const {
        for (auto& [k, v] : headers)
            if (k == name) return &v;
        return nullptr;
    }

    // The body as text: the charset of Content-Type when it is Latin-1, else
    // UTF-8 (JSON and nearly every page today), invalid bytes replaced.
    const std::string& decoded() {
        std::call_once(text_once, [this] {
            std::string charset;
            if (const std::string* ct = header("content-type")) {
                std::string l = lower(*ct);
                size_t at = l.find("charset=");
                if (at != std::string::npos) {
                    charset = l.substr(at + 8);
                    size_t end = charset.find_first_of("; ");
                    if (end != std::string::npos) charset.resize(end);
                    if (charset.size() >= 2 && charset.front() == '"')
                        charset = charset.substr(1, charset.size() - 2);
                }
            }
            if (charset == "iso-8859-1" || charset == "latin-1" || charset == "latin1")
                text = latin1_to_utf8(body);
            else
                text = stdlib::utf8_lossy(body);
        });
        return text;
    }
};

// http.HTTPError of the running program: kept by its Vm (Vm::extension_value), since several
// programs (embedded Engines) may run in one process, each with its own type.
constexpr const char* kHttpErrorKey = "http.HTTPError";

[[noreturn]] void raise_http_error(const ResponseObj* r) {
    std::string msg =
        std::to_string(r->status) + (r->status >= 500 ? " Server Error: " : " Client Error: ") +
        (r->reason.empty() ? std::string("(no reason)") : r->reason) + " for url: " + r->url;
    Vm* vm = current_vm();
    Value type = vm ? vm->extension_value(kHttpErrorKey) : Value();
    if (!type.is(ObjType::StructType)) throw WeftError(ErrorKind::NetworkError, msg);
    auto* s = new StructObj(type.as<StructTypeObj>());
    Value err = Value::adopt(s);
    s->fields[0] = Value::integer(r->status);
    s->fields[1] = make_str(r->url);
    s->error->message = std::move(msg);
    throw WeftError(err);
}

ResponseObj* resp(const Value& self) {
    return self_as<ResponseObj>(self);
}

Value r_json(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "json", {}, 0);
    auto* r = resp(self);
    size_t bad = lib::utf8_validate(r->body);
    if (bad != std::string::npos)
        throw WeftError(ErrorKind::ValueError,
                        "response body is not valid UTF-8 (invalid byte at offset " +
                            std::to_string(bad) + ")");
    return stdlib::json_parse_text(r->body);
}

Value r_raise_for_status(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "raise_for_status", {}, 0);
    auto* r = resp(self);
    if (r->status >= 400) raise_http_error(r);
    return self;
}

bool r_get_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* r = const_cast<ResponseObj*>(static_cast<const ResponseObj*>(self));
    if (name == "status") {
        out = Value::integer(r->status);
    } else if (name == "ok") {
        out = Value::boolean(r->status < 400);
    } else if (name == "text") {
        out = make_str(r->decoded());
    } else if (name == "bytes") {
        out = make_bytes(r->body);
    } else if (name == "headers") {
        Value d = make_dict();
        for (auto& [k, v] : r->headers)
            stdlib::dict_put(d, k.c_str(), make_str(stdlib::utf8_lossy(v)));
        out = std::move(d);
    } else if (name == "reason") {
        out = make_str(stdlib::utf8_lossy(r->reason));
    } else if (name == "url") {
        out = make_str(r->url);
    } else if (name == "method") {
        out = make_str(r->method);
    } else if (name == "elapsed") {
        out = Value::number(r->elapsed);
    } else {
        return false;
    }
    return true;
}

std::string r_repr(const OpaqueObj* self) {
    return "<Response [" + std::to_string(static_cast<const ResponseObj*>(self)->status) + "]>";
}

const MethodInfo kResponseMethods[] = {{"json", r_json, false},
                                       {"raise_for_status", r_raise_for_status, false},
                                       {nullptr, nullptr, false}};
const OpaqueClass kResponseClass{"Response", kResponseMethods, r_get_attr, r_repr};

// ---------------------------------------------------------------------------
// Requests

struct Options {
    std::string method;
    std::string url;                                     // as given (for messages)
    UrlParts target;                                     // parsed, with params
    std::vector<std::pair<std::string, Value>> headers;  // user headers, as given
    std::string body;
    bool has_body = false;
    std::string content_type;  // implied by json= / data=dict ("" = none)
    double timeout = -1;       // total, seconds; < 0 = none
    double connect_timeout = -1;
    bool allow_redirects = true;
    bool verify = true;   // check the server's TLS certificate
    std::string ca_file;  // ... against this CA bundle ("" = the system's)
};

// Indexes of the keyword slots in a function's Params.
struct Slots {
    int params, headers, data, json, timeout, connect_timeout, allow_redirects, verify;
};

double seconds_arg(const Params& p, int i, const char* name) {
    if (!p.has(size_t(i))) return -1;
    double t = p.number(size_t(i));
    if (std::isnan(t) || t < 0)
        throw WeftError(ErrorKind::ValueError,
                        std::string(name) + " must be a non-negative number of seconds");
    return t;
}

Options read_options(CallContext& cx, const Params& p, std::string method, int url_slot,
                     const Slots& s) {
    Options o;
    o.method = std::move(method);
    o.url = p.str(size_t(url_slot));
    std::string query;
    if (p.has(size_t(s.params))) query = form_encode(cx, *p.get(size_t(s.params)), "params");
    if (p.has(size_t(s.headers))) {
        const Value* h = p.get(size_t(s.headers));
        if (!h->is(ObjType::Dict)) p.bad(size_t(s.headers), "a dict of str to str");
        auto* d = h->as<DictObj>();
        for (size_t k = 0; k < d->table.end_index(); ++k) {
            auto& e = d->table.entry(k);
            if (!e.live) continue;
            if (!e.key.is(ObjType::Str)) p.bad(size_t(s.headers), "a dict of str to str");
            const std::string& name = e.key.as<StrObj>()->data;
            if (name.empty() || name.find_first_of(":\r\n") != std::string::npos)
                throw WeftError(ErrorKind::ValueError, "invalid header name " + str_repr(name));
            o.headers.emplace_back(name, e.value);
        }
    }
    bool has_data = p.has(size_t(s.data)), has_json = p.has(size_t(s.json));
    if (has_data && has_json)
        throw WeftError(ErrorKind::ValueError, o.method + ": give data= or json=, not both");
    if (has_json) {
        o.body = stdlib::json_dump_text(cx, *p.get(size_t(s.json)));
        o.has_body = true;
        o.content_type = "application/json";
    } else if (has_data) {
        const Value* d = p.get(size_t(s.data));
        if (d->is(ObjType::Str)) {
            o.body = d->as<StrObj>()->data;
        } else if (d->is(ObjType::Bytes)) {
            o.body = d->as<BytesObj>()->data;
        } else if (d->is(ObjType::Dict) || d->is(ObjType::List) || d->is(ObjType::Tuple)) {
            o.body = form_encode(cx, *d, "data");
            o.content_type = "application/x-www-form-urlencoded";
        } else {
            p.bad(size_t(s.data), "str, bytes, a dict or a list of pairs");
        }
        o.has_body = true;
    }
    o.timeout = seconds_arg(p, s.timeout, "timeout");
    o.connect_timeout = seconds_arg(p, s.connect_timeout, "connect_timeout");
    o.allow_redirects = p.flag_or(size_t(s.allow_redirects), true);
    if (p.has(size_t(s.verify))) {
        const Value* v = p.get(size_t(s.verify));
        if (v->is(ObjType::Str)) {
            o.ca_file = v->as<StrObj>()->data;
            require_read(cx, o.ca_file, "reading CA certificates");
        } else if (v->is_bool()) {
            o.verify = v->as_bool();
        } else {
            p.bad(size_t(s.verify), "a bool or the path of a CA bundle (str)");
        }
    }
    // Validate the URL (and append params) before any capability check.
    o.target = parse_url(o.url, query);
    return o;
}

bool has_header(const Options& o, std::string_view name) {
    for (auto& [k, v] : o.headers)
        if (lower(k) == lower(std::string(name))) return true;
    return false;
}

void drop_header(Options& o, std::string_view name) {
    std::string l = lower(std::string(name));
    std::erase_if(o.headers, [&](auto& h) { return lower(h.first) == l; });
}

struct SlistGuard {
    curl_slist* list = nullptr;
    ~SlistGuard() { lazy::curl().slist_free_all(list); }
    void add(const std::string& line) {
        curl_slist* n = lazy::curl().slist_append(list, line.c_str());
        if (!n) throw WeftError(ErrorKind::Error, "out of memory (curl_slist_append)");
        list = n;
    }
};

// Configures the easy handle for one hop.
void setup_easy(Transfer& t, const Options& o, const std::string& url, double timeout_left,
                SlistGuard& hdrs) {
    CURL* e = t.easy;
    lazy::curl().easy_setopt(e, CURLOPT_URL, url.c_str());
    lazy::curl().easy_setopt(e, CURLOPT_PRIVATE, &t);
    lazy::curl().easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf);
    lazy::curl().easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    lazy::curl().easy_setopt(e, CURLOPT_WRITEDATA, &t);
    lazy::curl().easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    lazy::curl().easy_setopt(e, CURLOPT_HEADERDATA, &t);
    lazy::curl().easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    lazy::curl().easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
    lazy::curl().easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    lazy::curl().easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    lazy::curl().easy_setopt(e, CURLOPT_PROXY, "");            // no proxy from the environment (see top)
    lazy::curl().easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");  // gzip, deflate, ...: decoded for us
    lazy::curl().easy_setopt(e, CURLOPT_USERAGENT, kUserAgent);
    if (!o.verify) {
        lazy::curl().easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        lazy::curl().easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (!o.ca_file.empty()) {
        lazy::curl().easy_setopt(e, CURLOPT_CAINFO, o.ca_file.c_str());
    }
    if (timeout_left >= 0)
        lazy::curl().easy_setopt(e, CURLOPT_TIMEOUT_MS, std::max(1L, long(std::ceil(timeout_left * 1000))));
    if (o.connect_timeout >= 0)
        lazy::curl().easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         std::max(1L, long(std::ceil(o.connect_timeout * 1000))));

    if (o.method == "GET") {
        lazy::curl().easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (o.method == "HEAD") {
        lazy::curl().easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        lazy::curl().easy_setopt(e, CURLOPT_CUSTOMREQUEST, o.method.c_str());
    }
    bool send_body = o.has_body || o.method == "POST" || o.method == "PUT" || o.method == "PATCH";
    if (send_body && o.method != "HEAD") {
        lazy::curl().easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(o.body.size()));
        lazy::curl().easy_setopt(e, CURLOPT_POSTFIELDS, o.body.data());
    }

    for (auto& [name, v] : o.headers) {
        if (v.is_none()) {
            hdrs.add(name + ":");  // removes a header curl would send
            continue;
        }
        std::string val = v.is(ObjType::Bytes) ? v.as<BytesObj>()->data : to_str(v);
        if (val.find_first_of("\r\n") != std::string::npos)
            throw WeftError(ErrorKind::ValueError, "invalid value for header " + str_repr(name));
        hdrs.add(val.empty() ? name + ";" : name + ": " + val);
    }
    if (send_body && !has_header(o, "content-type"))
        hdrs.add(o.content_type.empty() ? "Content-Type:" : "Content-Type: " + o.content_type);
    hdrs.add("Expect:");  // no 100-continue round trip before bodies
    lazy::curl().easy_setopt(e, CURLOPT_HTTPHEADER, hdrs.list);
}

std::string seconds_text(double t) {
    return float_repr(t);
}

[[noreturn]] void raise_transfer_error(const Transfer& t, const Options& o, const std::string& url,
                                       double timeout) {
    std::string why = t.errbuf[0] ? t.errbuf : lazy::curl().easy_strerror(t.result);
    std::string where = o.method + " " + url;
    if (t.result == CURLE_OPERATION_TIMEDOUT) {
        std::string limit = timeout >= 0 ? " after " + seconds_text(timeout) + " seconds" : "";
        throw WeftError(ErrorKind::TimeoutError, where + ": timed out" + limit + " (" + why + ")");
    }
    throw WeftError(ErrorKind::NetworkError, where + ": " + why);
}

// An easy handle borrowed from the client's idle list for one request, given back at the end.
struct EasyLease {
    Client& c;
    CURL* e;
    explicit EasyLease(Client& client) : c(client), e(client.take_easy()) {}
    ~EasyLease() { c.give_easy(e); }
    EasyLease(const EasyLease&) = delete;
    EasyLease& operator=(const EasyLease&) = delete;
};

// The whole request, redirects included. Returns a Response.
Value do_request(CallContext& cx, Options o) {
    int64_t start = rt::now_ns();
    UrlParts target = o.target;
    require_net(cx, target.host, target.port);

    Client& client = Client::instance();
    EasyLease easy(client);

    std::string url = target.url;
    for (int hop = 0;; ++hop) {
        double left = -1;
        if (o.timeout >= 0) {
            left = o.timeout - double(rt::now_ns() - start) / 1e9;
            if (left <= 0)
                throw WeftError(ErrorKind::TimeoutError, o.method + " " + url +
                                                             ": timed out after " +
                                                             seconds_text(o.timeout) + " seconds");
        }
        Transfer t;
        t.easy = easy.e;
        lazy::curl().easy_reset(t.easy);
        SlistGuard hdrs;
        setup_easy(t, o, url, left, hdrs);
        client.perform(t);
        if (t.result != CURLE_OK) raise_transfer_error(t, o, url, o.timeout);

        long code = 0;
        lazy::curl().easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &code);
        char* redirect = nullptr;
        lazy::curl().easy_getinfo(t.easy, CURLINFO_REDIRECT_URL, &redirect);
        bool is_redirect = code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
        if (o.allow_redirects && is_redirect && redirect && *redirect) {
            if (hop + 1 > kMaxRedirects)
                throw WeftError(ErrorKind::NetworkError, o.method + " " + o.url + ": more than " +
                                                             std::to_string(kMaxRedirects) +
                                                             " redirects");
            std::string next_url = redirect;
            UrlParts next;
            try {
                next = parse_url(next_url);
            } catch (WeftError& e) {
                throw WeftError(ErrorKind::NetworkError, "redirect from " + url + ": " + e.message);
            }
            try {
                require_net(cx, next.host, next.port);
            } catch (WeftError& e) {
                if (e.kind == ErrorKind::PermissionDenied && e.error.is_none())
                    e.message = "redirect from " + url + " to " + next.url + ": " + e.message;
                throw;
            }
            // 303, and 301/302 after a POST, continue as GET without the body
            // (what browsers and Python's requests do); 307/308 repeat the request.
            if ((code == 303 && o.method != "HEAD") ||
                ((code == 301 || code == 302) && o.method == "POST")) {
                o.method = "GET";
                o.body.clear();
                o.has_body = false;
                o.content_type.clear();
                drop_header(o, "content-type");
                drop_header(o, "content-length");
                drop_header(o, "transfer-encoding");
            }
            // Credentials are for the host they were given for.
            if (lower(next.host) != lower(target.host) || next.port != target.port) {
                drop_header(o, "authorization");
                drop_header(o, "cookie");
            }
            target = next;
            url = next.url;
            continue;
        }

        auto* r = new ResponseObj(&kResponseClass);
        Value out = Value::adopt(r);
        r->status = code;
        r->reason = t.reason.empty() ? standard_reason(code) : t.reason;
        char* eff = nullptr;
        lazy::curl().easy_getinfo(t.easy, CURLINFO_EFFECTIVE_URL, &eff);
        r->url = eff ? eff : url;
        r->method = o.method;
        r->elapsed = double(rt::now_ns() - start) / 1e9;
        r->body = std::move(t.body);
        // Names lower-cased (dicts are case-sensitive, HTTP names are not);
        // repeated headers joined with ", " as RFC 9110 allows.
        for (auto& [k, v] : t.headers) {
            std::string lk = lower(k);
            bool merged = false;
            for (auto& h : r->headers)
                if (h.first == lk) {
                    h.second += ", " + v;
                    merged = true;
                    break;
                }
            if (!merged) r->headers.emplace_back(std::move(lk), v);
        }
        return out;
    }
}

}  // namespace

stdlib::HttpResult stdlib::http_exchange(CallContext& cx, const HttpExchange& x) {
    Options o;
    o.method = x.method;
    o.url = x.url;
    o.target = parse_url(x.url);
    for (auto& [k, v] : x.headers)
        o.headers.emplace_back(k, make_str(v));
    o.body = x.body;
    o.has_body = !x.body.empty();
    o.content_type = x.content_type;
    o.timeout = x.timeout;
    require_net(cx, o.target.host, o.target.port);
    Client& client = Client::instance();
    EasyLease easy(client);
    Transfer t;
    t.easy = easy.e;
    t.streaming = bool(x.on_data);
    lazy::curl().easy_reset(t.easy);
    SlistGuard hdrs;
    setup_easy(t, o, o.target.url, o.timeout, hdrs);
    client.perform(t, x.on_data);
    if (t.result != CURLE_OK) raise_transfer_error(t, o, o.target.url, o.timeout);
    stdlib::HttpResult r;
    lazy::curl().easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &r.status);
    r.body = std::move(t.body);
    for (auto& [k, v] : t.headers)
        r.headers.emplace_back(lower(k), v);
    return r;
}

namespace {

// get/head/delete/options(url, params=, headers=, data=, json=, timeout=, connect_timeout=,
// allow_redirects=, verify=) and post/put/patch(url, data=, json=, params=, headers=, ...): the
// same request; the methods that usually send a body take data= and json= second and third.
template <const char* Method, bool Body>
Value http_method(CallContext& cx, const CallArgs& a) {
    std::string name = lower(Method);
    Params p(a, name.c_str(),
             {"url", Body ? "data" : "params", Body ? "json" : "headers", Body ? "params" : "data",
              Body ? "headers" : "json", "timeout", "connect_timeout", "allow_redirects", "verify"},
             1);
    Slots slots = Body ? Slots{3, 4, 1, 2, 5, 6, 7, 8} : Slots{1, 2, 3, 4, 5, 6, 7, 8};
    return do_request(cx, read_options(cx, p, Method, 0, slots));
}

Value http_request(CallContext& cx, const CallArgs& a) {
    Params p(a, "request",
             {"method", "url", "params", "headers", "data", "json", "timeout", "connect_timeout",
              "allow_redirects", "verify"},
             2);
    std::string method = p.str(0);
    for (auto& c : method)
        c = char(std::toupper((unsigned char)c));
    if (method.empty() ||
        method.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") != std::string::npos)
        throw WeftError(ErrorKind::ValueError, "invalid HTTP method " + str_repr(p.str(0)));
    return do_request(cx, read_options(cx, p, method, 1, Slots{2, 3, 4, 5, 6, 7, 8, 9}));
}

constexpr char kGet[] = "GET", kHead[] = "HEAD", kDelete[] = "DELETE", kOptions[] = "OPTIONS",
               kPost[] = "POST", kPut[] = "PUT", kPatch[] = "PATCH";

// http.HTTPError: a NetworkError with the response's status and url.
Value make_http_error_type() {
    Value base = make_error(ErrorKind::NetworkError, "");
    StructTypeObj* net = base.as<StructObj>()->type;
    auto* t = new StructTypeObj();
    Value tv = Value::adopt(t);
    t->name = "HTTPError";
    t->is_error = true;
    obj_incref(net);
    t->base = net;
    for (const char* f : {"status", "url"}) {
        FieldInfo fi;
        fi.name = f;
        t->fields.push_back(fi);
        t->field_keys.push_back(intern(f));
    }
    return tv;
}

}  // namespace

void init_http_module(ModuleObj& m) {
    static std::once_flag once;
    std::call_once(once, [] { lazy::curl().global_init(CURL_GLOBAL_DEFAULT); });
    init_http_server(m);  // serve, Response (stdlib/http_server.cpp)
    stdlib::define_fn(m, "get", http_method<kGet, false>);
    stdlib::define_fn(m, "head", http_method<kHead, false>);
    stdlib::define_fn(m, "delete", http_method<kDelete, false>);
    stdlib::define_fn(m, "options", http_method<kOptions, false>);
    stdlib::define_fn(m, "post", http_method<kPost, true>);
    stdlib::define_fn(m, "put", http_method<kPut, true>);
    stdlib::define_fn(m, "patch", http_method<kPatch, true>);
    stdlib::define_fn(m, "request", http_request);
    Value err = make_http_error_type();
    if (Vm* vm = current_vm()) vm->set_extension_value(kHttpErrorKey, err);
    m.define("HTTPError", std::move(err));
}

}  // namespace weft
