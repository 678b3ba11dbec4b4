// re.cpp — the `re` module on RE2: search, match, fullmatch, findall,
// finditer, sub, subn, split, escape, compile (Pattern objects with the same
// methods) and Match objects (group, groups, groupdict, start, end, span).
//
// Why RE2: matching takes time linear in the input whatever the pattern, so a
// regular expression over untrusted text cannot hang a task (Python's
// backtracking engine can). The price is Python syntax RE2 does not have —
// backreferences, lookaround, atomic groups, possessive quantifiers,
// conditionals; a pattern using one raises ValueError naming the construct
// (found by a scan before RE2 sees the pattern, so the message is precise).
//
// Positions: RE2 reports byte offsets into the UTF-8 text; Weft strings are
// indexed by code points, so start/end/span convert (free for ASCII strings).
// Empty matches follow Python 3.7+: after an empty match the next match may
// not be empty at the same position.
//
// Compiled patterns are cached (pattern, flags) -> RE2 in a small locked map;
// RE2 objects are thread-safe for matching.
#include <re2/re2.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/tasks.h"
#include "vm/collections.h"
#include "vm/lib_internal.h"

namespace weft {

namespace {

using stdlib::Params;
using stdlib::self_as;

constexpr int64_t kFlagI = 2, kFlagL = 4, kFlagM = 8, kFlagS = 16, kFlagU = 32, kFlagX = 64,
                  kFlagA = 256;
constexpr size_t kCacheMax = 256;

[[noreturn]] void unsupported(const std::string& what) {
    throw WeftError(ErrorKind::ValueError,
                    "unsupported regular expression syntax: " + what +
                        " (Weft's re uses RE2, which matches in linear time and has no "
                        "backreferences or lookaround)");
}

// Python syntax -> RE2 syntax: rejects what RE2 lacks, rewrites \Z to \z and
// drops (?#...) comments.
std::string translate(const std::string& p) {
    std::string out;
    out.reserve(p.size());
    bool in_class = false;
    for (size_t i = 0; i < p.size(); ++i) {
        char c = p[i];
        if (c == '\\' && i + 1 < p.size()) {
            char n = p[i + 1];
            if (!in_class && n >= '1' && n <= '9') unsupported(std::string("backreference \\") + n);
            if (!in_class && n == 'Z') {
                out += "\\z";
                ++i;
                continue;
            }
            out += c;
            out += n;
            ++i;
            continue;
        }
        if (in_class) {
            if (c == ']') in_class = false;
            out += c;
            continue;
        }
        if (c == '[') {
            in_class = true;
            out += c;
            // A ']' (or '^]') right after '[' is a literal.
            if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
            if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
            continue;
        }
        if (c == '(' && i + 2 < p.size() && p[i + 1] == '?') {
            std::string_view rest(p.data() + i + 2, p.size() - i - 2);
            if (rest.rfind("=", 0) == 0) unsupported("lookahead (?=...)");
            if (rest.rfind("!", 0) == 0) unsupported("negative lookahead (?!...)");
            if (rest.rfind("<=", 0) == 0) unsupported("lookbehind (?<=...)");
            if (rest.rfind("<!", 0) == 0) unsupported("negative lookbehind (?<!...)");
            if (rest.rfind("P=", 0) == 0) unsupported("named backreference (?P=name)");
            if (rest.rfind(">", 0) == 0) unsupported("atomic group (?>...)");
            if (rest.rfind("(", 0) == 0) unsupported("conditional group (?(...)...)");
            if (rest.rfind("#", 0) == 0) {
                size_t close = p.find(')', i);
                if (close == std::string::npos)
                    throw WeftError(ErrorKind::ValueError, "missing ), unterminated comment");
                i = close;
                continue;
            }
        }
        if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < p.size() && p[i + 1] == '+')
            unsupported(std::string("possessive quantifier ") + c + "+");
        out += c;
    }
    return out;
}

std::shared_ptr<const re2::RE2> compile_pattern(const std::string& pattern, int64_t flags) {
    static std::mutex mu;
    static std::map<std::pair<std::string, int64_t>, std::shared_ptr<const re2::RE2>> cache;
    auto key = std::make_pair(pattern, flags);
    {
        std::lock_guard<std::mutex> lock(mu);
        auto it = cache.find(key);
        if (it != cache.end()) return it->second;
    }
    if (flags & kFlagX) unsupported("re.VERBOSE (re.X)");
    if (flags & kFlagL) unsupported("re.LOCALE (re.L)");
    std::string prefix;
    if (flags & (kFlagI | kFlagM | kFlagS)) {
        prefix = "(?";
        if (flags & kFlagI) prefix += 'i';
        if (flags & kFlagM) prefix += 'm';
        if (flags & kFlagS) prefix += 's';
        prefix += ')';
    }
    re2::RE2::Options opt;
    opt.set_log_errors(false);
    opt.set_encoding(re2::RE2::Options::EncodingUTF8);
    auto re = std::make_shared<const re2::RE2>(prefix + translate(pattern), opt);
    if (!re->ok())
        throw WeftError(ErrorKind::ValueError,
                        "invalid regular expression '" + pattern + "': " + re->error());
    std::lock_guard<std::mutex> lock(mu);
    if (cache.size() >= kCacheMax) cache.clear();
    cache[key] = re;
    return re;
}

// Code-point index of byte offset `b` in `s`.
int64_t cp_index(const StrObj* s, int64_t b) {
    if (s->ascii || b <= 0) return b;
    return lib::utf8_count(std::string_view(s->data).substr(0, size_t(b)));
}

// ---------------------------------------------------------------------------
// Pattern and Match objects

struct PatternObj : OpaqueObj {
    std::shared_ptr<const re2::RE2> re;
    std::string pattern;
    int64_t flags;
    PatternObj(const OpaqueClass* c, std::shared_ptr<const re2::RE2> r, std::string p, int64_t f)
        : OpaqueObj(c), re(std::move(r)), pattern(std::move(p)), flags(f) {}
};

struct MatchObj : OpaqueObj {
    std::shared_ptr<const re2::RE2> re;
    Value subject;  // the str searched
    std::vector<std::pair<int64_t, int64_t>>
        spans;  // byte offsets; (-1, -1) for groups that did not take part
    MatchObj(const OpaqueClass* c, std::shared_ptr<const re2::RE2> r, Value s)
        : OpaqueObj(c), re(std::move(r)), subject(std::move(s)) {}
    const StrObj* str() const { return subject.as<StrObj>(); }
    Value group_value(size_t g, const Value& dflt = Value()) const {
        if (spans[g].first < 0) return dflt;
        return make_str(
            std::string_view(str()->data)
                .substr(size_t(spans[g].first), size_t(spans[g].second - spans[g].first)));
    }
};

extern const OpaqueClass kMatchClass;
extern const OpaqueClass kPatternClass;

// Searches `text` from byte `pos` (anchor as given); fills `m` on success.
bool match_at(const re2::RE2& re, const StrObj* text, size_t pos, size_t endpos,
              re2::RE2::Anchor anchor, std::vector<std::pair<int64_t, int64_t>>& spans) {
    int n = re.NumberOfCapturingGroups() + 1;
    // Small patterns use a stack buffer: this runs once per match in findall/sub loops.
    re2::StringPiece small[16];
    std::vector<re2::StringPiece> large;
    re2::StringPiece* sub = small;
    if (n > 16) {
        large.resize(static_cast<size_t>(n));
        sub = large.data();
    }
    re2::StringPiece t(text->data);
    if (!re.Match(t, pos, endpos, anchor, sub, n)) return false;
    spans.assign(size_t(n), {-1, -1});
    for (int g = 0; g < n; ++g)
        if (sub[g].data()) {
            int64_t b = sub[g].data() - text->data.data();
            spans[g] = {b, b + int64_t(sub[g].size())};
        }
    return true;
}

Value new_match(const std::shared_ptr<const re2::RE2>& re, const Value& subject,
                std::vector<std::pair<int64_t, int64_t>> spans) {
    auto* m = new MatchObj(&kMatchClass, re, subject);
    m->spans = std::move(spans);
    return Value::adopt(m);
}

size_t next_cp(const std::string& s, size_t b) {
    if (b >= s.size()) return b + 1;
    return b + size_t(lib::utf8_seq_len((unsigned char)s[b]));
}

// Every match of `re` in `text` left to right (Python 3.7+ empty-match rules);
// `fn` returns false to stop. At most `limit` matches when limit > 0.
template <class F>
void for_each_match(const re2::RE2& re, const StrObj* text, int64_t limit, F fn) {
    const std::string& s = text->data;
    size_t pos = 0;
    bool must_advance = false;
    int64_t count = 0;
    std::vector<std::pair<int64_t, int64_t>> spans;
    while (pos <= s.size()) {
        if (!match_at(re, text, pos, s.size(), re2::RE2::UNANCHORED, spans)) return;
        if (must_advance && spans[0].first == int64_t(pos) && spans[0].second == int64_t(pos)) {
            size_t np = next_cp(s, pos);
            if (np > s.size()) return;
            if (!match_at(re, text, np, s.size(), re2::RE2::UNANCHORED, spans)) return;
        }
        if (!fn(spans)) return;
        if (limit > 0 && ++count >= limit) return;
        must_advance = spans[0].first == spans[0].second;
        pos = size_t(spans[0].second);
    }
}

// ---------------------------------------------------------------------------
// Operations shared by the module functions and Pattern methods

const StrObj* subject_arg(const Params& p, size_t i) {
    const Value* v = p.get(i);
    if (!v || !v->is(ObjType::Str)) p.bad(i, "str");
    return v->as<StrObj>();
}

Value do_match(const std::shared_ptr<const re2::RE2>& re, const Value& subject,
               re2::RE2::Anchor anchor) {
    std::vector<std::pair<int64_t, int64_t>> spans;
    const StrObj* s = subject.as<StrObj>();
    if (!match_at(*re, s, 0, s->data.size(), anchor, spans)) return Value();
    return new_match(re, subject, std::move(spans));
}

Value do_findall(const re2::RE2& re, const StrObj* s) {
    std::vector<Value> out;
    int groups = re.NumberOfCapturingGroups();
    auto text = [&](const std::pair<int64_t, int64_t>& sp) {
        if (sp.first < 0) return make_str("");
        return make_str(
            std::string_view(s->data).substr(size_t(sp.first), size_t(sp.second - sp.first)));
    };
    for_each_match(re, s, 0, [&](const std::vector<std::pair<int64_t, int64_t>>& spans) {
        if (groups == 0) {
            out.push_back(text(spans[0]));
        } else if (groups == 1) {
            out.push_back(text(spans[1]));
        } else {
            std::vector<Value> t;
            for (int g = 1; g <= groups; ++g)
                t.push_back(text(spans[size_t(g)]));
            out.push_back(make_tuple(std::move(t)));
        }
        return true;
    });
    return make_list(std::move(out));
}

Value do_finditer(const std::shared_ptr<const re2::RE2>& re, const Value& subject) {
    std::vector<Value> out;
    for_each_match(*re, subject.as<StrObj>(), 0,
                   [&](const std::vector<std::pair<int64_t, int64_t>>& spans) {
                       out.push_back(new_match(re, subject, spans));
                       return true;
                   });
    return make_list(std::move(out));
}

Value do_split(const re2::RE2& re, const StrObj* s, int64_t maxsplit) {
    std::vector<Value> out;
    int groups = re.NumberOfCapturingGroups();
    int64_t last = 0;
    if (maxsplit < 0) return make_list({make_str(s->data)});
    for_each_match(re, s, maxsplit, [&](const std::vector<std::pair<int64_t, int64_t>>& spans) {
        out.push_back(make_str(
            std::string_view(s->data).substr(size_t(last), size_t(spans[0].first - last))));
        for (int g = 1; g <= groups; ++g) {
            auto& sp = spans[size_t(g)];
            out.push_back(sp.first < 0 ? Value()
                                       : make_str(std::string_view(s->data).substr(
                                             size_t(sp.first), size_t(sp.second - sp.first))));
        }
        last = spans[0].second;
        return true;
    });
    out.push_back(make_str(std::string_view(s->data).substr(size_t(last))));
    return make_list(std::move(out));
}

// A parsed replacement template: literal text and group references.
struct TemplatePart {
    std::string text;
    int group = -1;  // >= 0: a group reference
};

std::vector<TemplatePart> parse_template(const re2::RE2& re, const std::string& t) {
    std::vector<TemplatePart> parts;
    std::string lit;
    int ngroups = re.NumberOfCapturingGroups();
    auto ref = [&](int g, const std::string& shown) {
        if (g < 0 || g > ngroups)
            throw WeftError(ErrorKind::ValueError, "invalid group reference " + shown);
        if (!lit.empty()) parts.push_back({lit, -1});
        lit.clear();
        parts.push_back({"", g});
    };
    for (size_t i = 0; i < t.size(); ++i) {
        char c = t[i];
        if (c != '\\') {
            lit += c;
            continue;
        }
        if (i + 1 >= t.size())
            throw WeftError(ErrorKind::ValueError, "bad escape (end of pattern)");
        char n = t[++i];
        if (n >= '0' && n <= '9') {
            std::string digits(1, n);
            if (i + 1 < t.size() && isdigit((unsigned char)t[i + 1])) digits += t[++i];
            ref(std::stoi(digits), digits);
            continue;
        }
        if (n == 'g') {
            size_t close = t.find('>', i);
            if (i + 1 >= t.size() || t[i + 1] != '<' || close == std::string::npos)
                throw WeftError(ErrorKind::ValueError, "missing group name in \\g<...>");
            std::string name = t.substr(i + 2, close - i - 2);
            i = close;
            if (!name.empty() && std::all_of(name.begin(), name.end(),
                                             [](char ch) { return isdigit((unsigned char)ch); })) {
                // More digits than any group count could need: invalid, not std::stoi's
                // out_of_range (which reached the user as "internal error: stoi").
                ref(name.size() > 9 ? -1 : std::stoi(name), name);
            } else {
                auto& named = re.NamedCapturingGroups();
                auto it = named.find(name);
                if (it == named.end())
                    throw WeftError(ErrorKind::IndexError, "unknown group name '" + name + "'");
                ref(it->second, name);
            }
            continue;
        }
        switch (n) {
            case 'n':
                lit += '\n';
                break;
            case 't':
                lit += '\t';
                break;
            case 'r':
                lit += '\r';
                break;
            case 'f':
                lit += '\f';
                break;
            case 'v':
                lit += '\v';
                break;
            case 'a':
                lit += '\a';
                break;
            case 'b':
                lit += '\b';
                break;
            case '\\':
                lit += '\\';
                break;
            default:
                if (isalpha((unsigned char)n))
                    throw WeftError(ErrorKind::ValueError, std::string("bad escape \\") + n);
                lit += '\\';
                lit += n;
        }
    }
    if (!lit.empty()) parts.push_back({lit, -1});
    return parts;
}

Value do_sub(CallContext& cx, const std::shared_ptr<const re2::RE2>& re, const Value& repl,
             const Value& subject, int64_t count, int64_t* nsubs) {
    const StrObj* s = subject.as<StrObj>();
    bool callable = !repl.is(ObjType::Str);
    std::vector<TemplatePart> parts;
    if (!callable) parts = parse_template(*re, repl.as<StrObj>()->data);
    std::string out;
    int64_t last = 0, n = 0;
    for_each_match(*re, s, count, [&](const std::vector<std::pair<int64_t, int64_t>>& spans) {
        out.append(s->data, size_t(last), size_t(spans[0].first - last));
        if (callable) {
            Value m = new_match(re, subject, spans);
            Value r = cx.call(repl, std::span<const Value>(&m, 1));
            if (!r.is(ObjType::Str))
                throw WeftError(ErrorKind::TypeError,
                                "sub() replacement function must return str, not " + type_name(r));
            out += r.as<StrObj>()->data;
        } else {
            for (auto& part : parts) {
                if (part.group < 0) {
                    out += part.text;
                } else {
                    auto& sp = spans[size_t(part.group)];
                    if (sp.first >= 0)
                        out.append(s->data, size_t(sp.first), size_t(sp.second - sp.first));
                }
            }
        }
        last = spans[0].second;
        ++n;
        return true;
    });
    out.append(s->data, size_t(last), std::string::npos);
    if (nsubs) *nsubs = n;
    return make_str(std::move(out));
}

int64_t flags_arg(const Params& p, size_t i) {
    return p.int_or(i, 0);
}

std::shared_ptr<const re2::RE2> pattern_arg(const Params& p, size_t i, int64_t flags) {
    const Value* v = p.get(i);
    if (v->is(ObjType::Opaque) && v->as<OpaqueObj>()->cls == &kPatternClass) {
        if (flags)
            throw WeftError(ErrorKind::ValueError,
                            "cannot process flags argument with a compiled pattern");
        return static_cast<const PatternObj*>(v->as<OpaqueObj>())->re;
    }
    return compile_pattern(p.str(i), flags);
}

// ---------------------------------------------------------------------------
// Module functions: re.f(pattern, string, ..., flags=0)

Value re_search(CallContext&, const CallArgs& a) {
    Params p(a, "search", {"pattern", "string", "flags"}, 2);
    subject_arg(p, 1);
    return do_match(pattern_arg(p, 0, flags_arg(p, 2)), *p.get(1), re2::RE2::UNANCHORED);
}
Value re_match(CallContext&, const CallArgs& a) {
    Params p(a, "match", {"pattern", "string", "flags"}, 2);
    subject_arg(p, 1);
    return do_match(pattern_arg(p, 0, flags_arg(p, 2)), *p.get(1), re2::RE2::ANCHOR_START);
}
Value re_fullmatch(CallContext&, const CallArgs& a) {
    Params p(a, "fullmatch", {"pattern", "string", "flags"}, 2);
    subject_arg(p, 1);
    return do_match(pattern_arg(p, 0, flags_arg(p, 2)), *p.get(1), re2::RE2::ANCHOR_BOTH);
}
Value re_findall(CallContext&, const CallArgs& a) {
    Params p(a, "findall", {"pattern", "string", "flags"}, 2);
    return do_findall(*pattern_arg(p, 0, flags_arg(p, 2)), subject_arg(p, 1));
}
Value re_finditer(CallContext&, const CallArgs& a) {
    Params p(a, "finditer", {"pattern", "string", "flags"}, 2);
    subject_arg(p, 1);
    return do_finditer(pattern_arg(p, 0, flags_arg(p, 2)), *p.get(1));
}
Value re_split(CallContext&, const CallArgs& a) {
    Params p(a, "split", {"pattern", "string", "maxsplit", "flags"}, 2);
    return do_split(*pattern_arg(p, 0, flags_arg(p, 3)), subject_arg(p, 1), p.int_or(2, 0));
}
Value re_sub(CallContext& cx, const CallArgs& a) {
    Params p(a, "sub", {"pattern", "repl", "string", "count", "flags"}, 3);
    subject_arg(p, 2);
    return do_sub(cx, pattern_arg(p, 0, flags_arg(p, 4)), *p.get(1), *p.get(2), p.int_or(3, 0),
                  nullptr);
}
Value re_subn(CallContext& cx, const CallArgs& a) {
    Params p(a, "subn", {"pattern", "repl", "string", "count", "flags"}, 3);
    subject_arg(p, 2);
    int64_t n = 0;
    Value s =
        do_sub(cx, pattern_arg(p, 0, flags_arg(p, 4)), *p.get(1), *p.get(2), p.int_or(3, 0), &n);
    return make_tuple({std::move(s), Value::integer(n)});
}
Value re_escape(CallContext&, const CallArgs& a) {
    Params p(a, "escape", {"pattern"}, 1);
    std::string s = p.str(0), out;
    // Python 3.7+: escape only regex-special ASCII characters.
    static const std::string kSpecial = "()[]{}?*+-|^$\\.&~# \t\n\r\v\f";
    for (char c : s) {
        if (kSpecial.find(c) != std::string::npos) out += '\\';
        out += c;
    }
    return make_str(std::move(out));
}
Value re_compile(CallContext&, const CallArgs& a) {
    Params p(a, "compile", {"pattern", "flags"}, 1);
    const Value* v = p.get(0);
    if (v->is(ObjType::Opaque) && v->as<OpaqueObj>()->cls == &kPatternClass) return *v;
    std::string pat = p.str(0);
    int64_t flags = flags_arg(p, 1);
    return Value::adopt(new PatternObj(&kPatternClass, compile_pattern(pat, flags), pat, flags));
}

// ---------------------------------------------------------------------------
// Pattern methods: p.f(string, ...)

const std::shared_ptr<const re2::RE2>& pat(const Value& self) {
    return self_as<PatternObj>(self)->re;
}

Value pat_search(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "search", {"string"}, 1);
    subject_arg(p, 0);
    return do_match(pat(self), *p.get(0), re2::RE2::UNANCHORED);
}
Value pat_match(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "match", {"string"}, 1);
    subject_arg(p, 0);
    return do_match(pat(self), *p.get(0), re2::RE2::ANCHOR_START);
}
Value pat_fullmatch(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "fullmatch", {"string"}, 1);
    subject_arg(p, 0);
    return do_match(pat(self), *p.get(0), re2::RE2::ANCHOR_BOTH);
}
Value pat_findall(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "findall", {"string"}, 1);
    return do_findall(*pat(self), subject_arg(p, 0));
}
Value pat_finditer(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "finditer", {"string"}, 1);
    subject_arg(p, 0);
    return do_finditer(pat(self), *p.get(0));
}
Value pat_split(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "split", {"string", "maxsplit"}, 1);
    return do_split(*pat(self), subject_arg(p, 0), p.int_or(1, 0));
}
Value pat_sub(CallContext& cx, Value& self, const CallArgs& a) {
    Params p(a, "sub", {"repl", "string", "count"}, 2);
    subject_arg(p, 1);
    return do_sub(cx, pat(self), *p.get(0), *p.get(1), p.int_or(2, 0), nullptr);
}
Value pat_subn(CallContext& cx, Value& self, const CallArgs& a) {
    Params p(a, "subn", {"repl", "string", "count"}, 2);
    subject_arg(p, 1);
    int64_t n = 0;
    Value s = do_sub(cx, pat(self), *p.get(0), *p.get(1), p.int_or(2, 0), &n);
    return make_tuple({std::move(s), Value::integer(n)});
}

Value groupindex(const re2::RE2& re) {
    Value d = make_dict();
    std::vector<std::pair<int, std::string>> named;
    for (auto& [n, i] : re.NamedCapturingGroups())
        named.emplace_back(i, n);
    std::sort(named.begin(), named.end());
    for (auto& [i, n] : named)
        set_item(d, make_str(n), Value::integer(i));
    return d;
}

bool pat_get_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* p = static_cast<const PatternObj*>(self);
    if (name == "pattern")
        out = make_str(p->pattern);
    else if (name == "flags")
        out = Value::integer(p->flags);
    else if (name == "groups")
        out = Value::integer(p->re->NumberOfCapturingGroups());
    else if (name == "groupindex")
        out = groupindex(*p->re);
    else
        return false;
    return true;
}

std::string pat_repr(const OpaqueObj* self) {
    auto* p = static_cast<const PatternObj*>(self);
    static const std::pair<int64_t, const char*> kNames[] = {
        {kFlagI, "re.IGNORECASE"}, {kFlagL, "re.LOCALE"},  {kFlagM, "re.MULTILINE"},
        {kFlagS, "re.DOTALL"},     {kFlagU, "re.UNICODE"}, {kFlagX, "re.VERBOSE"},
        {kFlagA, "re.ASCII"}};
    std::string flags;
    int64_t rest = p->flags;
    for (auto& [bit, name] : kNames)
        if (rest & bit) {
            flags += (flags.empty() ? "" : "|") + std::string(name);
            rest &= ~bit;
        }
    if (rest) flags += (flags.empty() ? "" : "|") + std::to_string(rest);
    return "re.compile(" + str_repr(p->pattern) + (flags.empty() ? "" : ", " + flags) + ")";
}

const MethodInfo kPatternMethods[] = {{"search", pat_search, false, "string"},
                                      {"match", pat_match, false, "string"},
                                      {"fullmatch", pat_fullmatch, false, "string"},
                                      {"findall", pat_findall, false, "string"},
                                      {"finditer", pat_finditer, false, "string"},
                                      {"split", pat_split, false, "string maxsplit"},
                                      {"sub", pat_sub, false, "repl string count"},
                                      {"subn", pat_subn, false, "repl string count"},
                                      {nullptr, nullptr, false}};
const OpaqueClass kPatternClass{"Pattern", kPatternMethods, pat_get_attr, pat_repr};

// ---------------------------------------------------------------------------
// Match methods

size_t group_index(const MatchObj* m, const Value& g) {
    if (g.is_int() || g.is_bool()) {
        int64_t i = lib::int_of(g);
        if (i < 0 || i >= int64_t(m->spans.size()))
            throw WeftError(ErrorKind::IndexError, "no such group");
        return size_t(i);
    }
    if (g.is(ObjType::Str)) {
        auto& named = m->re->NamedCapturingGroups();
        auto it = named.find(g.as<StrObj>()->data);
        if (it == named.end()) throw WeftError(ErrorKind::IndexError, "no such group");
        return size_t(it->second);
    }
    throw WeftError(ErrorKind::IndexError, "no such group");
}

Value m_group(CallContext&, Value& self, const CallArgs& a) {
    auto* m = self_as<MatchObj>(self);
    if (!a.kw.empty()) throw WeftError(ErrorKind::TypeError, "group() takes no keyword arguments");
    if (a.pos.empty()) return m->group_value(0);
    if (a.pos.size() == 1) return m->group_value(group_index(m, a.pos[0]));
    std::vector<Value> out;
    for (auto& g : a.pos)
        out.push_back(m->group_value(group_index(m, g)));
    return make_tuple(std::move(out));
}

Value m_groups(CallContext&, Value& self, const CallArgs& a) {
    auto* m = self_as<MatchObj>(self);
    Params p(a, "groups", {"default"}, 0);
    Value dflt = p.get(0) ? *p.get(0) : Value();
    std::vector<Value> out;
    for (size_t g = 1; g < m->spans.size(); ++g)
        out.push_back(m->group_value(g, dflt));
    return make_tuple(std::move(out));
}

Value m_groupdict(CallContext&, Value& self, const CallArgs& a) {
    auto* m = self_as<MatchObj>(self);
    Params p(a, "groupdict", {"default"}, 0);
    Value dflt = p.get(0) ? *p.get(0) : Value();
    Value d = make_dict();
    std::vector<std::pair<int, std::string>> named;
    for (auto& [n, i] : m->re->NamedCapturingGroups())
        named.emplace_back(i, n);
    std::sort(named.begin(), named.end());
    for (auto& [i, n] : named)
        set_item(d, make_str(n), m->group_value(size_t(i), dflt));
    return d;
}

int64_t pos_of(const MatchObj* m, const CallArgs& a, const char* fn, bool end) {
    Params p(a, fn, {"group"}, 0);
    size_t g = p.get(0) ? group_index(m, *p.get(0)) : 0;
    int64_t b = end ? m->spans[g].second : m->spans[g].first;
    return b < 0 ? -1 : cp_index(m->str(), b);
}

Value m_start(CallContext&, Value& self, const CallArgs& a) {
    return Value::integer(pos_of(self_as<MatchObj>(self), a, "start", false));
}
Value m_end(CallContext&, Value& self, const CallArgs& a) {
    return Value::integer(pos_of(self_as<MatchObj>(self), a, "end", true));
}
Value m_span(CallContext&, Value& self, const CallArgs& a) {
    auto* m = self_as<MatchObj>(self);
    return make_tuple(
        {Value::integer(pos_of(m, a, "span", false)), Value::integer(pos_of(m, a, "span", true))});
}

bool m_get_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* m = static_cast<const MatchObj*>(self);
    if (name == "string") {
        out = m->subject;
    } else if (name == "lastindex") {
        int64_t last = -1, best_end = -1;
        for (size_t g = 1; g < m->spans.size(); ++g)
            if (m->spans[g].first >= 0 && m->spans[g].second >= best_end) {
                best_end = m->spans[g].second;
                last = int64_t(g);
            }
        out = last < 0 ? Value() : Value::integer(last);
    } else {
        return false;
    }
    return true;
}

std::string m_repr(const OpaqueObj* self) {
    auto* m = static_cast<const MatchObj*>(self);
    int64_t s = cp_index(m->str(), m->spans[0].first), e = cp_index(m->str(), m->spans[0].second);
    return "<re.Match object; span=(" + std::to_string(s) + ", " + std::to_string(e) +
           "), match=" + repr(m->group_value(0)) + ">";
}

const MethodInfo kMatchMethods[] = {
    {"group", m_group, false}, {"groups", m_groups, false, "default"}, {"groupdict", m_groupdict, false, "default"},
    {"start", m_start, false, "group"}, {"end", m_end, false, "group"}, {"span", m_span, false, "group"},
    {nullptr, nullptr, false}};
void m_share(OpaqueObj* self) { share(static_cast<MatchObj*>(self)->subject); }
const OpaqueClass kMatchClass{"Match", kMatchMethods, m_get_attr, m_repr, nullptr, nullptr, nullptr, m_share};

}  // namespace

void init_re_module(ModuleObj& m) {
    using stdlib::define_fn;
    define_fn(m, "search", re_search);
    define_fn(m, "match", re_match);
    define_fn(m, "fullmatch", re_fullmatch);
    define_fn(m, "findall", re_findall);
    define_fn(m, "finditer", re_finditer);
    define_fn(m, "split", re_split);
    define_fn(m, "sub", re_sub);
    define_fn(m, "subn", re_subn);
    define_fn(m, "escape", re_escape);
    define_fn(m, "compile", re_compile);
    struct {
        const char* n;
        int64_t v;
    } flags[] = {{"I", kFlagI}, {"IGNORECASE", kFlagI}, {"M", kFlagM}, {"MULTILINE", kFlagM},
                 {"S", kFlagS}, {"DOTALL", kFlagS},     {"A", kFlagA}, {"ASCII", kFlagA},
                 {"U", kFlagU}, {"UNICODE", kFlagU},    {"X", kFlagX}, {"VERBOSE", kFlagX}};
    for (auto& f : flags)
        m.define(f.n, Value::integer(f.v));
}

}  // namespace weft
