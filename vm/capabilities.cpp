// capabilities.cpp — capability sets: path canonicalization, the allows_*
// checks, narrowing (covers), command-line flag parsing and the require_*
// helpers that raise PermissionDenied naming the flag that would allow an effect.
//
// Path resolution is done here by hand (lstat/readlink per component) rather
// than with realpath(3) or weakly_canonical, because both stop at the first
// missing component and so would not follow a dangling symlink at the end of a
// path that is about to be created — exactly the symlink escape to deny.
#include "vm/capabilities.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <set>

#include "vm/native.h"

namespace weft {

std::shared_ptr<const CapabilitySet> CapabilitySet::none() {
    static auto s = std::make_shared<const CapabilitySet>();
    return s;
}

std::shared_ptr<const CapabilitySet> CapabilitySet::everything() {
    static auto s = [] {
        auto c = std::make_shared<CapabilitySet>();
        c->net.all = c->read.all = c->write.all = c->run.all = c->env.all = true;
        return std::shared_ptr<const CapabilitySet>(c);
    }();
    return s;
}

namespace {

constexpr int kMaxSymlinks = 40;

}  // namespace

std::vector<std::string> split_nonempty(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

namespace {

// Splits a path into its components, dropping empty ones and ".".
void push_components(const std::string& p, std::vector<std::string>& out_reversed) {
    std::vector<std::string> comps;
    std::string cur;
    for (char c : p) {
        if (c == '/') {
            if (!cur.empty() && cur != ".") comps.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty() && cur != ".") comps.push_back(cur);
    // Components are consumed from the back of `out_reversed`.
    for (auto it = comps.rbegin(); it != comps.rend(); ++it)
        out_reversed.push_back(*it);
}

std::string parent_of(const std::string& p) {
    if (p == "/") return p;
    size_t k = p.rfind('/');
    return k == 0 ? "/" : p.substr(0, k);
}


std::string lower(std::string s) {
    for (auto& c : s)
        c = char(std::tolower((unsigned char)c));
    return s;
}

// "host", "host:port", "[v6]:port" -> (host, port or -1).
void split_host_port(const std::string& item, std::string& host, int& port) {
    port = -1;
    host = item;
    if (!item.empty() && item[0] == '[') {
        size_t close = item.find(']');
        if (close != std::string::npos) {
            host = item.substr(1, close - 1);
            if (close + 1 < item.size() && item[close + 1] == ':')
                port = atoi(item.c_str() + close + 2);
        }
        return;
    }
    size_t colon = item.rfind(':');
    if (colon != std::string::npos && item.find(':') == colon) {
        host = item.substr(0, colon);
        port = atoi(item.c_str() + colon + 1);
    }
}

// `p` made absolute against `cwd` (itself relative to the working directory when relative).
std::string against(const std::string& p, const std::string& cwd) {
    if (p.empty() || p[0] == '/' || cwd.empty()) return p;
    return cwd.back() == '/' ? cwd + p : cwd + "/" + p;
}

bool is_executable_file(const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
}

bool grant_allows_path(const CapabilitySet::Grant& g, const std::string& canon) {
    if (g.all) return true;
    for (auto& item : g.items)
        if (path_within(canon, item)) return true;
    return false;
}

}  // namespace

bool path_within(const std::string& path, const std::string& dir) {
    if (dir == "/") return true;
    return path.size() >= dir.size() && path.compare(0, dir.size(), dir) == 0 &&
           (path.size() == dir.size() || path[dir.size()] == '/');
}

void reject_nul(const std::string& s) {
    if (s.find('\0') != std::string::npos)
        throw WeftError(ErrorKind::ValueError, "embedded null byte");
}

std::string resolve_executable(const std::string& program, const std::string& cwd,
                               const std::string* path_env) {
    if (program.empty()) return "";
    if (program.find('/') != std::string::npos) {
        std::string p = against(program, cwd);
        return is_executable_file(p) ? canonical_path(p) : "";
    }
    const char* own = getenv("PATH");
    // execvp's default search path when PATH is unset.
    std::string dirs = path_env ? *path_env : own ? own : "/bin:/usr/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        std::string d = dirs.substr(start, end - start);
        if (d.empty()) d = ".";
        std::string cand = against(d + "/" + program, cwd);
        if (is_executable_file(cand)) return canonical_path(cand);
        start = end + 1;
    }
    return "";
}

void SourceFiles::add(const std::string& path) {
    std::string c = canonical_path(path);
    std::lock_guard<std::mutex> lock(mu_);
    paths_.insert(std::move(c));
}

bool SourceFiles::contains(const std::string& canonical) const {
    std::lock_guard<std::mutex> lock(mu_);
    return paths_.count(canonical) > 0;
}

void SourceFiles::set_root(const std::string& folder) {
    std::string c = canonical_path(folder);
    std::lock_guard<std::mutex> lock(mu_);
    root_ = std::move(c);
}

std::string SourceFiles::root() const {
    std::lock_guard<std::mutex> lock(mu_);
    return root_;
}

std::string canonical_path(const std::string& path) {
    std::string base;
    if (path.empty() || path[0] != '/') {
        char buf[4096];
        base = getcwd(buf, sizeof buf) ? buf : "/";
    }
    std::vector<std::string> todo;  // reversed components still to resolve
    push_components(path, todo);
    if (!base.empty()) {
        std::vector<std::string> b;
        push_components(base, b);
        // `todo` is consumed from the back: the base goes last in the vector.
        todo.insert(todo.end(), b.begin(), b.end());
    }
    std::string out = "/";
    bool missing = false;  // a component did not exist: no further lstat
    int links = 0;
    while (!todo.empty()) {
        std::string c = std::move(todo.back());
        todo.pop_back();
        if (c == "..") {
            out = parent_of(out);
            continue;
        }
        std::string cand = out == "/" ? "/" + c : out + "/" + c;
        if (!missing) {
            struct stat st;
            if (lstat(cand.c_str(), &st) != 0) {
                missing = true;
            } else if (S_ISLNK(st.st_mode)) {
                if (++links > kMaxSymlinks)
                    return cand;  // a loop: leave it (the OS will fail with ELOOP)
                char buf[4096];
                ssize_t n = readlink(cand.c_str(), buf, sizeof buf - 1);
                if (n < 0) {
                    missing = true;
                } else {
                    std::string target(buf, size_t(n));
                    if (!target.empty() && target[0] == '/') out = "/";
                    push_components(target, todo);
                    continue;
                }
            }
        }
        out = std::move(cand);
    }
    return out;
}

bool CapabilitySet::allows_read(const std::string& path) const {
    if (read.all) return true;
    std::string c = canonical_path(path);
    if (grant_allows_path(read, c)) return true;
    return own_sources && own_sources->contains(c);
}

bool CapabilitySet::allows_write(const std::string& path) const {
    if (write.all) return true;
    return grant_allows_path(write, canonical_path(path));
}

bool CapabilitySet::allows_net(const std::string& host, int port) const {
    if (net.all) return true;
    std::string h = lower(host);
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    for (auto& item : net.items) {
        std::string ih;
        int ip;
        split_host_port(item, ih, ip);
        if (lower(ih) != h) continue;
        if (ip < 0 || ip == port) return true;
    }
    return false;
}

bool CapabilitySet::allows_run(const std::string& program, const std::string& cwd,
                               const std::string* path_env) const {
    if (run.all) return true;
    std::string resolved = resolve_executable(program, cwd, path_env);
    for (auto& item : run.items) {
        // A granted program that is not installed: the exec fails with its own error.
        if (resolved.empty()) {
            if (item == program) return true;
            continue;
        }
        std::string granted = item.find('/') == std::string::npos ? resolve_executable(item)
                                                                  : canonical_path(item);
        if (granted == resolved) return true;
    }
    return false;
}

bool CapabilitySet::allows_env(const std::string& name) const {
    if (env.all) return true;
    return std::find(env.items.begin(), env.items.end(), name) != env.items.end();
}

bool CapabilitySet::covers(const CapabilitySet& n, std::string& excess) const {
    auto kind_all = [&](const Grant& mine, const Grant& theirs, const char* kind) {
        if (theirs.all && !mine.all) {
            excess = std::string("all ") + kind + " access";
            return false;
        }
        return true;
    };
    if (!kind_all(net, n.net, "net") || !kind_all(read, n.read, "read") ||
        !kind_all(write, n.write, "write") || !kind_all(run, n.run, "run") ||
        !kind_all(env, n.env, "env"))
        return false;
    for (auto& p : n.read.items)
        if (!grant_allows_path(read, p)) return excess = "read '" + p + "'", false;
    for (auto& p : n.write.items)
        if (!grant_allows_path(write, p)) return excess = "write '" + p + "'", false;
    if (!net.all) {
        for (auto& item : n.net.items) {
            std::string h;
            int port;
            split_host_port(item, h, port);
            if (!allows_net(h, port)) return excess = "net '" + item + "'", false;
        }
    }
    for (auto& r : n.run.items)
        if (!allows_run(r)) return excess = "run '" + r + "'", false;
    for (auto& e : n.env.items)
        if (!allows_env(e)) return excess = "env '" + e + "'", false;
    return true;
}

bool parse_capability_flag(const std::string& arg, CapabilitySet& caps, std::string& error) {
    error.clear();
    if (arg == "-A" || arg == "--allow-all") {
        caps.net.all = caps.read.all = caps.write.all = caps.run.all = caps.env.all = true;
        return true;
    }
    static const struct {
        const char* flag;
        CapabilitySet::Grant CapabilitySet::*grant;
        bool paths;
    } kinds[] = {
        {"--allow-net", &CapabilitySet::net, false},
        {"--allow-read", &CapabilitySet::read, true},
        {"--allow-write", &CapabilitySet::write, true},
        {"--allow-run", &CapabilitySet::run, false},
        {"--allow-env", &CapabilitySet::env, false},
    };
    for (auto& k : kinds) {
        std::string f = k.flag;
        if (arg == f) {
            (caps.*k.grant).all = true;
            return true;
        }
        if (arg.rfind(f + "=", 0) == 0) {
            auto items = split_nonempty(arg.substr(f.size() + 1), ',');
            if (items.empty()) {
                error = f + "= needs at least one value";
                return false;
            }
            for (auto& it : items)
                (caps.*k.grant).items.push_back(k.paths ? canonical_path(it) : it);
            return true;
        }
    }
    return false;
}

// ---------------------------------------------------------------------------

namespace {

std::shared_ptr<const CapabilitySet> current(CallContext& cx) {
    auto c = cx.capabilities();
    return c ? c : CapabilitySet::none();
}

[[noreturn]] void deny(CallContext& cx, const std::string& action, const std::string& what,
                       const char* flag) {
    std::string msg =
        action + " '" + what + "' requires " + flag + " (or " + flag + "=" + what + ")";
    if (current(cx)->narrowed)
        msg += "; this task's capabilities were narrowed by restrict(), caps() or @effects";
    throw WeftError(ErrorKind::PermissionDenied, msg);
}

}  // namespace

void require_read(CallContext& cx, const std::string& path, const char* action) {
    reject_nul(path);
    if (!current(cx)->allows_read(path)) deny(cx, action, path, "--allow-read");
}

void require_write(CallContext& cx, const std::string& path, const char* action) {
    reject_nul(path);
    if (!current(cx)->allows_write(path)) deny(cx, action, path, "--allow-write");
}

void require_write_entry(CallContext& cx, const std::string& path, const char* action) {
    reject_nul(path);
    auto caps = current(cx);
    if (caps->write.all) return;
    std::string p = path;
    while (p.size() > 1 && p.back() == '/')
        p.pop_back();
    size_t k = p.rfind('/');
    std::string name = k == std::string::npos ? p : p.substr(k + 1);
    std::string loc;
    if (name.empty() || name == "." || name == "..") {
        loc = canonical_path(path);
    } else {
        std::string parent =
            canonical_path(k == std::string::npos ? "." : (k == 0 ? "/" : p.substr(0, k)));
        loc = parent == "/" ? "/" + name : parent + "/" + name;
    }
    if (!grant_allows_path(caps->write, loc)) deny(cx, action, path, "--allow-write");
}

void require_net(CallContext& cx, const std::string& host, int port, const char* action) {
    reject_nul(host);
    if (current(cx)->allows_net(host, port)) return;
    std::string what = port < 0 ? host
                                : (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                                      ":" + std::to_string(port);
    deny(cx, action, what, "--allow-net");
}

std::string require_run(CallContext& cx, const std::string& program, const std::string& cwd,
                        const std::string* path_env) {
    reject_nul(program);
    reject_nul(cwd);
    if (path_env) reject_nul(*path_env);
    if (!current(cx)->allows_run(program, cwd, path_env)) deny(cx, "running", program, "--allow-run");
    return resolve_executable(program, cwd, path_env);
}

void require_env(CallContext& cx, const std::string& name) {
    reject_nul(name);
    if (!current(cx)->allows_env(name))
        deny(cx, "reading environment variable", name, "--allow-env");
}

}  // namespace weft
