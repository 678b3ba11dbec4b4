// fs.cpp — the `fs` module (minimal for the core issue): read_file (UTF-8,
// `.gz` decompressed transparently with zlib), glob (with `**`), exists.
//
// Errors are IOError naming the path and the OS reason. Capability checks and
// the blocking pool arrive with the runtime; these calls block the caller.
#include <fnmatch.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include "stdlib/stdlib.h"
#include "vm/collections.h"
#include "vm/interp.h"
#include "vm/lib_internal.h"

namespace weft {

namespace {

namespace stdfs = std::filesystem;

std::string arg_str(const CallArgs& a, size_t i, const char* fn, const char* what) {
    if (a.pos.size() <= i || !a.pos[i].is(ObjType::Str))
        throw WeftError(ErrorKind::TypeError, std::string(fn) + "() argument '" + what + "' must be str");
    return a.pos[i].as<StrObj>()->data;
}

bool ends_with(const std::string& s, const char* suffix) {
    size_t n = strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

std::string read_all(const std::string& path) {
    if (ends_with(path, ".gz")) {
        gzFile f = gzopen(path.c_str(), "rb");
        if (!f) throw WeftError(ErrorKind::IOError, "cannot read '" + path + "': " + strerror(errno));
        std::string out;
        char buf[65536];
        int n;
        while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, size_t(n));
        int err = 0;
        const char* msg = gzerror(f, &err);
        gzclose(f);
        if (n < 0 || err < 0) throw WeftError(ErrorKind::IOError, "cannot read '" + path + "': " + msg);
        return out;
    }
    std::error_code ec;
    if (stdfs::is_directory(path, ec)) throw WeftError(ErrorKind::IOError, "cannot read '" + path + "': Is a directory");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw WeftError(ErrorKind::IOError, "cannot read '" + path + "': " + strerror(errno));
    std::ostringstream ss;
    ss << f.rdbuf();
    if (f.bad()) throw WeftError(ErrorKind::IOError, "cannot read '" + path + "': read error");
    return ss.str();
}

Value fs_read_file(CallContext&, const CallArgs& a) {
    std::string path = arg_str(a, 0, "read_file", "path");
    std::string data = read_all(path);
    size_t bad = lib::utf8_validate(data);
    if (bad != std::string::npos)
        throw WeftError(ErrorKind::ValueError, "'" + path + "' is not valid UTF-8 (invalid byte at offset " +
                                                   std::to_string(bad) + "); use fs.read_bytes for binary files");
    return make_str(std::move(data));
}

Value fs_read_bytes(CallContext&, const CallArgs& a) {
    return make_bytes(read_all(arg_str(a, 0, "read_bytes", "path")));
}

Value fs_exists(CallContext&, const CallArgs& a) {
    std::error_code ec;
    return Value::boolean(stdfs::exists(arg_str(a, 0, "exists", "path"), ec));
}

bool has_magic(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// Matches `segs[i..]` below `dir`, appending matches to `out`.
void glob_walk(const std::string& dir, const std::vector<std::string>& segs, size_t i, std::vector<std::string>& out) {
    std::error_code ec;
    if (i == segs.size()) {
        out.push_back(dir);
        return;
    }
    const std::string& seg = segs[i];
    auto join = [&](const std::string& name) { return dir.empty() ? name : (dir == "/" ? "/" + name : dir + "/" + name); };
    std::string list_dir = dir.empty() ? "." : dir;
    if (seg == "**") {
        // zero directories
        glob_walk(dir, segs, i + 1, out);
        // one or more (hidden directories are skipped, as in Python's glob)
        stdfs::directory_iterator it(list_dir, stdfs::directory_options::skip_permission_denied, ec);
        if (ec) return;
        std::vector<std::string> subdirs;
        for (auto& e : it) {
            std::string name = e.path().filename().string();
            if (name[0] == '.') continue;
            std::error_code ec2;
            if (e.is_directory(ec2) && !e.is_symlink(ec2)) subdirs.push_back(name);
        }
        std::sort(subdirs.begin(), subdirs.end());
        for (auto& s : subdirs) glob_walk(join(s), segs, i, out);
        return;
    }
    if (!has_magic(seg)) {
        std::string p = join(seg);
        if (i + 1 == segs.size() ? stdfs::exists(p, ec) : stdfs::is_directory(p, ec)) glob_walk(p, segs, i + 1, out);
        return;
    }
    stdfs::directory_iterator it(list_dir, stdfs::directory_options::skip_permission_denied, ec);
    if (ec) return;
    std::vector<std::string> names;
    for (auto& e : it) {
        std::string name = e.path().filename().string();
        if (name[0] == '.' && seg[0] != '.') continue;
        if (fnmatch(seg.c_str(), name.c_str(), 0) != 0) continue;
        std::error_code ec2;
        if (i + 1 < segs.size() && !e.is_directory(ec2)) continue;
        names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    for (auto& n : names) glob_walk(join(n), segs, i + 1, out);
}

Value fs_glob(CallContext&, const CallArgs& a) {
    std::string pattern = arg_str(a, 0, "glob", "pattern");
    std::vector<std::string> segs;
    std::string cur;
    bool absolute = !pattern.empty() && pattern[0] == '/';
    for (char c : pattern) {
        if (c == '/') {
            if (!cur.empty()) segs.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) segs.push_back(cur);
    std::vector<std::string> out;
    glob_walk(absolute ? "/" : "", segs, 0, out);
    // `**` can reach a path twice (zero-or-more); keep the first occurrence.
    std::vector<Value> items;
    std::unordered_set<std::string> seen;
    for (auto& p : out)
        if (seen.insert(p).second) items.push_back(make_str(p));
    return make_list(std::move(items));
}

}  // namespace

void init_fs_module(ModuleObj& m) {
    auto def = [&](const char* n, NativeFn f) { m.define(n, Value::adopt(new NativeObj(std::string("fs.") + n, f))); };
    def("read_file", fs_read_file);
    def("read_bytes", fs_read_bytes);
    def("glob", fs_glob);
    def("exists", fs_exists);
}

}  // namespace weft
