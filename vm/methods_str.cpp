// methods_str.cpp — methods of str and bytes, plus the small Unicode tables they
// rely on (case mapping and character classes).
//
// Strings are UTF-8; every index a method takes or returns counts code points,
// as in Python. ASCII strings (the common case) take byte-offset fast paths.
// Case mapping and classification cover ASCII, Latin-1, Latin Extended-A, Greek
// and Cyrillic through compact range tables; other scripts are treated as
// uncased letters (CJK, Hangul, kana, Hebrew, Arabic) or as other characters.
// That keeps the binary small and the behaviour right for the text Weft programs
// process in practice; full Unicode tables can replace these functions later.
#include <algorithm>
#include <cstring>

#include "vm/lib_internal.h"
#include "vm/memory.h"

namespace weft {

using namespace lib;

// ---------------------------------------------------------------------------
// Unicode-lite

namespace lib {

size_t utf8_validate(std::string_view s) {
    size_t i = 0, n = s.size();
    const unsigned char* p = (const unsigned char*)s.data();
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        int len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else
            return i;
        if (i + size_t(len) > n) return i;
        for (int k = 1; k < len; ++k) {
            if ((p[i + size_t(k)] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (p[i + size_t(k)] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += size_t(len);
    }
    return std::string_view::npos;
}

namespace {
// Latin Extended-A: pairs (upper, lower) = (even, odd) except in the ranges below.
bool latin_ext_a_odd_upper(uint32_t c) {
    return (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
}
}  // namespace

uint32_t cp_lower(uint32_t c) {
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x130) return 'i';
        if (c == 0x178) return 0xFF;
        if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c;
        if (latin_ext_a_odd_upper(c)) return (c & 1) ? c + 1 : c;
        return (c & 1) ? c : c + 1;
    }
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F))
        return (c & 1) ? c : c + 1;
    if (c >= 0x4C1 && c <= 0x4CE) return (c & 1) ? c + 1 : c;
    if (c == 0x4C0) return 0x4CF;
    return c;
}

uint32_t cp_upper(uint32_t c) {
    if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
    if (c == 0xFF) return 0x178;
    if (c == 0xB5) return 0x39C;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x131) return 'I';
        if (c == 0x17F) return 'S';
        if (c == 0x130 || c == 0x138 || c == 0x149 || c == 0x178) return c;
        if (latin_ext_a_odd_upper(c)) return (c & 1) ? c : c - 1;
        return (c & 1) ? c - 1 : c;
    }
    if (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) return c - 32;
    if (c == 0x3C2) return 0x3A3;
    if (c == 0x3AC) return 0x386;
    if (c >= 0x3AD && c <= 0x3AF) return c - 37;
    if (c == 0x3CC) return 0x38C;
    if (c == 0x3CD || c == 0x3CE) return c - 63;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F))
        return (c & 1) ? c - 1 : c;
    if (c >= 0x4C1 && c <= 0x4CE) return (c & 1) ? c : c - 1;
    if (c == 0x4CF) return 0x4C0;
    return c;
}

bool cp_is_space(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool cp_is_alpha(uint32_t c) {
    if (c < 0x80) return (c | 32) >= 'a' && (c | 32) <= 'z';
    if (c < 0x100)
        return c == 0xAA || c == 0xB5 || c == 0xBA || (c >= 0xC0 && c != 0xD7 && c != 0xF7);
    if (c <= 0x24F) return true;                // Latin Extended-A/B
    if (c >= 0x250 && c <= 0x2AF) return true;  // IPA
    if (c >= 0x370 && c <= 0x3FF)
        return c != 0x375 && c != 0x37E && c != 0x384 && c != 0x385 && c != 0x387;
    if (c >= 0x400 && c <= 0x52F) return !(c >= 0x482 && c <= 0x489);
    if (c >= 0x5D0 && c <= 0x5EA) return true;           // Hebrew
    if (c >= 0x620 && c <= 0x64A) return true;           // Arabic
    if (c >= 0x1E00 && c <= 0x1FFF) return true;         // Latin/Greek extended
    if (c >= 0x3041 && c <= 0x30FF) return c != 0x30FB;  // kana
    if (c >= 0x4E00 && c <= 0x9FFF) return true;         // CJK
    if (c >= 0xAC00 && c <= 0xD7A3) return true;         // Hangul
    return false;
}

bool cp_is_digit(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return (c >= 0x660 && c <= 0x669) || (c >= 0x6F0 && c <= 0x6F9) || (c >= 0x966 && c <= 0x96F) ||
           (c >= 0xFF10 && c <= 0xFF19);
}

bool cp_is_lower(uint32_t c) {
    if (c < 0x80) return c >= 'a' && c <= 'z';
    return cp_upper(c) != c || c == 0xDF || c == 0x138 || c == 0x149 || c == 0xAA || c == 0xBA;
}

bool cp_is_upper(uint32_t c) {
    if (c < 0x80) return c >= 'A' && c <= 'Z';
    return cp_lower(c) != c;
}

}  // namespace lib

namespace {

bool cp_is_superscript_digit(uint32_t c) {
    return c == 0xB2 || c == 0xB3 || c == 0xB9 || c == 0x2070 || (c >= 0x2074 && c <= 0x2079) ||
           (c >= 0x2080 && c <= 0x2089);
}
bool cp_is_numeric_extra(uint32_t c) {
    if (c >= 0xBC && c <= 0xBE) return true;
    if (c >= 0x2150 && c <= 0x2189) return true;
    switch (c) {
        case 0x3007:
        case 0x4E00:
        case 0x4E8C:
        case 0x4E09:
        case 0x56DB:
        case 0x4E94:
        case 0x516D:
        case 0x4E03:
        case 0x516B:
        case 0x4E5D:
        case 0x5341:
        case 0x767E:
        case 0x5343:
            return true;
    }
    return false;
}
bool cp_cased(uint32_t c) {
    return cp_is_lower(c) || cp_is_upper(c);
}

// ---- argument helpers ------------------------------------------------------

const StrObj* self_str(const Value& self) {
    return self.as<StrObj>();
}

// Optional int-or-None argument at position i (else keyword `kw`), default `def`.
bool opt_index(const CallArgs& a, size_t i, const char* kw, int64_t& out) {
    const Value* v = i < a.pos.size() ? &a.pos[i] : (kw ? a.find_kw(kw) : nullptr);
    if (!v || v->is_none()) return false;
    if (!is_intlike(*v))
        type_error("slice indices must be integers or None or have an __index__ method");
    out = int_of(*v);
    return true;
}

// Resolves [start, end) code-point arguments to byte offsets in `s`.
void span_args(const StrObj* s, const CallArgs& a, size_t first, size_t& b0, size_t& b1,
               int64_t& cp0) {
    int64_t n = str_len(s);
    int64_t st = 0, en = n;
    if (opt_index(a, first, nullptr, st)) {
        if (st < 0) st = std::max<int64_t>(0, st + n);
    }
    if (opt_index(a, first + 1, nullptr, en)) {
        if (en < 0) en = std::max<int64_t>(0, en + n);
    }
    en = std::min(en, n);
    cp0 = st;
    if (st > n || en < st) {  // nothing matches, not even an empty string
        b0 = s->data.size() + 1;
        b1 = s->data.size();
        return;
    }
    b0 = str_byte_offset(s, st);
    b1 = en < st ? b0 : str_byte_offset(s, en);
}

int64_t byte_to_cp(const StrObj* s, size_t b) {
    if (s->ascii) return int64_t(b);
    return utf8_count(std::string_view(s->data).substr(0, b));
}

Value new_str_like(const Value& self, std::string s) {
    if (s.size() == sv(self).size() && s == sv(self)) return self;
    return make_str(std::move(s));
}

template <class F>
std::string map_cps(std::string_view s, F f) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();)
        utf8_append(out, f(utf8_decode(s, i)));
    return out;
}

std::vector<uint32_t> decode_all(std::string_view s) {
    std::vector<uint32_t> r;
    r.reserve(s.size());
    for (size_t i = 0; i < s.size();)
        r.push_back(utf8_decode(s, i));
    return r;
}

// ---- case ------------------------------------------------------------------

Value m_upper(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "upper", 0, 0);
    auto* s = self_str(self);
    if (s->ascii) {
        std::string r = s->data;
        for (auto& c : r)
            if (c >= 'a' && c <= 'z') c = char(c - 32);
        return new_str_like(self, std::move(r));
    }
    std::string r;
    r.reserve(s->data.size());
    for (size_t i = 0; i < s->data.size();) {
        uint32_t c = utf8_decode(s->data, i);
        if (c == 0xDF)
            r += "SS";
        else
            utf8_append(r, cp_upper(c));
    }
    return new_str_like(self, std::move(r));
}

Value m_lower(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "lower", 0, 0);
    auto* s = self_str(self);
    if (s->ascii) {
        std::string r = s->data;
        for (auto& c : r)
            if (c >= 'A' && c <= 'Z') c = char(c + 32);
        return new_str_like(self, std::move(r));
    }
    // Final sigma: capital sigma becomes 'ς' after a cased letter and not before one.
    std::vector<uint32_t> cps = decode_all(s->data);
    std::string r;
    r.reserve(s->data.size());
    for (size_t i = 0; i < cps.size(); ++i) {
        uint32_t c = cps[i];
        if (c == 0x3A3) {
            bool before = i > 0 && cp_cased(cps[i - 1]);
            bool after = i + 1 < cps.size() && cp_cased(cps[i + 1]);
            utf8_append(r, before && !after ? 0x3C2 : 0x3C3);
        } else {
            utf8_append(r, cp_lower(c));
        }
    }
    return new_str_like(self, std::move(r));
}

Value m_swapcase(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "swapcase", 0, 0);
    return make_str(map_cps(sv(self), [](uint32_t c) {
        return cp_is_upper(c) ? cp_lower(c) : cp_is_lower(c) ? cp_upper(c) : c;
    }));
}

Value m_capitalize(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "capitalize", 0, 0);
    std::string_view s = sv(self);
    std::string r;
    r.reserve(s.size());
    bool first = true;
    for (size_t i = 0; i < s.size();) {
        uint32_t c = utf8_decode(s, i);
        utf8_append(r, first ? cp_upper(c) : cp_lower(c));
        first = false;
    }
    return make_str(std::move(r));
}

Value m_title(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "title", 0, 0);
    std::string_view s = sv(self);
    std::string r;
    r.reserve(s.size());
    bool prev_cased = false;
    for (size_t i = 0; i < s.size();) {
        uint32_t c = utf8_decode(s, i);
        if (cp_cased(c)) {
            utf8_append(r, prev_cased ? cp_lower(c) : cp_upper(c));
            prev_cased = true;
        } else {
            utf8_append(r, c);
            prev_cased = false;
        }
    }
    return make_str(std::move(r));
}

// ---- classification ----------------------------------------------------------

template <class P>
Value all_cps(const Value& self, const CallArgs& a, const char* name, P pred) {
    check_args(a, name, 0, 0);
    std::string_view s = sv(self);
    if (s.empty()) return vbool(false);
    for (size_t i = 0; i < s.size();)
        if (!pred(utf8_decode(s, i))) return vbool(false);
    return vbool(true);
}

Value m_isdigit(CallContext&, Value& self, const CallArgs& a) {
    return all_cps(self, a, "isdigit",
                   [](uint32_t c) { return cp_is_digit(c) || cp_is_superscript_digit(c); });
}
Value m_isdecimal(CallContext&, Value& self, const CallArgs& a) {
    return all_cps(self, a, "isdecimal", cp_is_digit);
}
Value m_isnumeric(CallContext&, Value& self, const CallArgs& a) {
    return all_cps(self, a, "isnumeric", [](uint32_t c) {
        return cp_is_digit(c) || cp_is_superscript_digit(c) || cp_is_numeric_extra(c);
    });
}
Value m_isalpha(CallContext&, Value& self, const CallArgs& a) {
    return all_cps(self, a, "isalpha", cp_is_alpha);
}
Value m_isalnum(CallContext&, Value& self, const CallArgs& a) {
    return all_cps(self, a, "isalnum", [](uint32_t c) {
        return cp_is_alpha(c) || cp_is_digit(c) || cp_is_superscript_digit(c) ||
               cp_is_numeric_extra(c);
    });
}
Value m_isspace(CallContext&, Value& self, const CallArgs& a) {
    return all_cps(self, a, "isspace", cp_is_space);
}
Value m_isascii(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "isascii", 0, 0);
    return vbool(self_str(self)->ascii);
}

Value m_islower(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "islower", 0, 0);
    std::string_view s = sv(self);
    bool cased = false;
    for (size_t i = 0; i < s.size();) {
        uint32_t c = utf8_decode(s, i);
        if (cp_is_upper(c)) return vbool(false);
        if (cp_is_lower(c)) cased = true;
    }
    return vbool(cased);
}

Value m_isupper(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "isupper", 0, 0);
    std::string_view s = sv(self);
    bool cased = false;
    for (size_t i = 0; i < s.size();) {
        uint32_t c = utf8_decode(s, i);
        if (cp_is_lower(c)) return vbool(false);
        if (cp_is_upper(c)) cased = true;
    }
    return vbool(cased);
}

Value m_istitle(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "istitle", 0, 0);
    std::string_view s = sv(self);
    bool prev_cased = false, any = false;
    for (size_t i = 0; i < s.size();) {
        uint32_t c = utf8_decode(s, i);
        if (cp_is_upper(c)) {
            if (prev_cased) return vbool(false);
            prev_cased = any = true;
        } else if (cp_is_lower(c)) {
            if (!prev_cased) return vbool(false);
            prev_cased = any = true;
        } else {
            prev_cased = false;
        }
    }
    return vbool(any);
}

Value m_isidentifier(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "isidentifier", 0, 0);
    std::string_view s = sv(self);
    if (s.empty()) return vbool(false);
    bool first = true;
    for (size_t i = 0; i < s.size();) {
        uint32_t c = utf8_decode(s, i);
        bool ok = c == '_' || cp_is_alpha(c) ||
                  (!first && (cp_is_digit(c) || cp_is_superscript_digit(c)));
        if (!ok) return vbool(false);
        first = false;
    }
    return vbool(true);
}

Value m_isprintable(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "isprintable", 0, 0);
    std::string_view s = sv(self);
    for (size_t i = 0; i < s.size();) {
        uint32_t c = utf8_decode(s, i);
        if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return vbool(false);
    }
    return vbool(true);
}

// ---- split / join --------------------------------------------------------------

int64_t maxsplit_arg(const CallArgs& a, size_t pos) {
    const Value* v = a.pos.size() > pos ? &a.pos[pos] : a.find_kw("maxsplit");
    if (!v) return -1;
    return int_arg(*v, "split");
}

const Value* sep_arg(const CallArgs& a, const char* fname) {
    const Value* v = !a.pos.empty() ? &a.pos[0] : a.find_kw("sep");
    if (v && v->is_none()) return nullptr;
    if (v && !v->is(ObjType::Str)) type_error("must be str or None, not " + type_name(*v));
    if (v && sv(*v).empty()) value_error("empty separator");
    return v;
}

// Splits on runs of whitespace (Python str.split() with no separator).
inline bool ascii_space(unsigned char c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
}

// split() of an ASCII string with no maxsplit: the word-count hot path.
std::vector<Value> split_ws_ascii(std::string_view s) {
    std::vector<Value> out;
    const char* p = s.data();
    size_t i = 0, n = s.size();
    while (true) {
        while (i < n && ascii_space((unsigned char)p[i]))
            ++i;
        if (i >= n) break;
        size_t st = i;
        while (i < n && !ascii_space((unsigned char)p[i]))
            ++i;
        out.push_back(i - st == 1 ? ascii_char((unsigned char)p[st])
                                  : make_str(s.substr(st, i - st)));
    }
    return out;
}

std::vector<Value> split_ws(std::string_view s, int64_t maxsplit) {
    std::vector<Value> out;
    size_t i = 0, n = s.size();
    auto space_at = [&](size_t j, size_t& next) {
        unsigned char c = (unsigned char)s[j];
        if (c < 0x80) {
            next = j + 1;
            return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
        }
        size_t k = j;
        uint32_t cp = utf8_decode(s, k);
        next = k;
        return cp_is_space(cp);
    };
    while (true) {
        size_t nx;
        while (i < n && space_at(i, nx))
            i = nx;
        if (i >= n) break;
        if (maxsplit >= 0 && int64_t(out.size()) == maxsplit) {
            out.push_back(make_str(s.substr(i)));  // the remainder keeps its trailing whitespace
            break;
        }
        size_t st = i;
        while (i < n && !space_at(i, nx))
            i = nx;
        out.push_back(make_str(s.substr(st, i - st)));
    }
    return out;
}

Value m_split(CallContext&, Value& self, const CallArgs& a) {
    allow_kwargs(a, "split", {"sep", "maxsplit"});
    check_args(a, "split", 0, 2);
    const Value* sep = sep_arg(a, "split");
    int64_t maxsplit = maxsplit_arg(a, 1);
    std::string_view s = sv(self);
    if (!sep) {
        if (maxsplit < 0 && self_str(self)->ascii) return make_list(split_ws_ascii(s));
        return make_list(split_ws(s, maxsplit));
    }
    std::string_view d = sv(*sep);
    std::vector<Value> out;
    size_t i = 0;
    while (maxsplit < 0 || int64_t(out.size()) < maxsplit) {
        size_t j = s.find(d, i);
        if (j == std::string_view::npos) break;
        out.push_back(make_str(s.substr(i, j - i)));
        i = j + d.size();
    }
    out.push_back(make_str(s.substr(i)));
    return make_list(std::move(out));
}

Value m_rsplit(CallContext&, Value& self, const CallArgs& a) {
    allow_kwargs(a, "rsplit", {"sep", "maxsplit"});
    check_args(a, "rsplit", 0, 2);
    const Value* sep = sep_arg(a, "rsplit");
    int64_t maxsplit = maxsplit_arg(a, 1);
    std::string_view s = sv(self);
    std::vector<Value> out;
    if (!sep) {
        if (maxsplit < 0) return make_list(split_ws(s, -1));
        // Walk from the right over whitespace runs.
        std::vector<uint32_t> cps = decode_all(s);
        std::vector<std::string> parts;
        int64_t i = int64_t(cps.size()) - 1;
        while (true) {
            while (i >= 0 && cp_is_space(cps[size_t(i)]))
                --i;
            if (i < 0) break;
            if (int64_t(parts.size()) == maxsplit) {
                std::string rest;  // the remainder keeps its leading whitespace
                for (int64_t k = 0; k <= i; ++k)
                    utf8_append(rest, cps[size_t(k)]);
                parts.push_back(std::move(rest));
                break;
            }
            int64_t e = i;
            while (i >= 0 && !cp_is_space(cps[size_t(i)]))
                --i;
            std::string w;
            for (int64_t k = i + 1; k <= e; ++k)
                utf8_append(w, cps[size_t(k)]);
            parts.push_back(std::move(w));
        }
        for (auto it = parts.rbegin(); it != parts.rend(); ++it)
            out.push_back(make_str(std::move(*it)));
        return make_list(std::move(out));
    }
    std::string_view d = sv(*sep);
    size_t end = s.size();
    std::vector<Value> rev;
    while (maxsplit < 0 || int64_t(rev.size()) < maxsplit) {
        if (end < d.size()) break;
        size_t j = s.rfind(d, end - d.size());
        if (j == std::string_view::npos) break;
        rev.push_back(make_str(s.substr(j + d.size(), end - j - d.size())));
        end = j;
    }
    rev.push_back(make_str(s.substr(0, end)));
    out.assign(std::make_move_iterator(rev.rbegin()), std::make_move_iterator(rev.rend()));
    return make_list(std::move(out));
}

Value m_splitlines(CallContext&, Value& self, const CallArgs& a) {
    allow_kwargs(a, "splitlines", {"keepends"});
    check_args(a, "splitlines", 0, 1);
    const Value* kv = !a.pos.empty() ? &a.pos[0] : a.find_kw("keepends");
    bool keep = kv && truthy(*kv);
    std::string_view s = sv(self);
    std::vector<Value> out;
    size_t i = 0, st = 0;
    while (i < s.size()) {
        size_t j = i;
        uint32_t c = utf8_decode(s, j);
        bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D ||
                   c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
        if (!brk) {
            i = j;
            continue;
        }
        size_t e = j;
        if (c == '\r' && e < s.size() && s[e] == '\n') ++e;
        out.push_back(make_str(s.substr(st, (keep ? e : i) - st)));
        i = st = e;
    }
    if (st < s.size()) out.push_back(make_str(s.substr(st)));
    return make_list(std::move(out));
}

Value m_join(CallContext& cx, Value& self, const CallArgs& a) {
    no_kwargs(a, "join");
    check_args(a, "join", 1, 1);
    std::string_view sep = sv(self);
    const std::vector<Value>* items;
    std::vector<Value> tmp;
    if (a.pos[0].is(ObjType::List))
        items = &a.pos[0].as<ListObj>()->items;
    else if (a.pos[0].is(ObjType::Tuple))
        items = &a.pos[0].as<TupleObj>()->items;
    else {
        if (!a.pos[0].is_obj() || a.pos[0].is(ObjType::Struct))
            type_error("can only join an iterable");
        tmp = collect(cx, a.pos[0]);
        items = &tmp;
    }
    size_t total = 0;
    std::vector<Value> forced;
    for (size_t i = 0; i < items->size(); ++i) {
        const Value& x = (*items)[i];
        if (!x.is(ObjType::Str)) {
            if (x.is(ObjType::Promise) && items != &forced) {
                // Items that are promises (deferred calls in a display) are inspected:
                // force them all, then check again.
                forced = *items;
                for (auto& y : forced) resolve_if_promise(y);
                items = &forced;
                total = 0;
                i = size_t(-1);
                continue;
            }
            type_error("sequence item " + std::to_string(i) + ": expected str instance, " +
                       type_name(x) + " found");
        }
        total += sv(x).size();
    }
    if (items->size() == 1) return (*items)[0];
    std::string out;
    out.reserve(total + (items->empty() ? 0 : sep.size() * (items->size() - 1)));
    for (size_t i = 0; i < items->size(); ++i) {
        if (i) out += sep;
        out += sv((*items)[i]);
    }
    return make_str(std::move(out));
}

// ---- strip ---------------------------------------------------------------------

Value strip_impl(Value& self, const CallArgs& a, const char* name, bool left, bool right) {
    no_kwargs(a, name);
    check_args(a, name, 0, 1);
    std::string_view s = sv(self);
    std::vector<uint32_t> chars;
    bool ws = a.pos.empty() || a.pos[0].is_none();
    if (!ws) {
        if (!a.pos[0].is(ObjType::Str)) type_error(std::string(name) + " arg must be None or str");
        chars = decode_all(sv(a.pos[0]));
    }
    auto strip_cp = [&](uint32_t c) {
        return ws ? cp_is_space(c) : std::find(chars.begin(), chars.end(), c) != chars.end();
    };
    size_t b = 0, e = s.size();
    if (left) {
        while (b < e) {
            size_t nb = b;
            if (!strip_cp(utf8_decode(s, nb))) break;
            b = nb;
        }
    }
    if (right) {
        while (e > b) {
            size_t p = e - 1;
            while (p > b && ((unsigned char)s[p] & 0xC0) == 0x80)
                --p;
            size_t q = p;
            if (!strip_cp(utf8_decode(s, q))) break;
            e = p;
        }
    }
    if (b == 0 && e == s.size()) return self;
    return make_str(s.substr(b, e - b));
}
Value m_strip(CallContext&, Value& self, const CallArgs& a) {
    return strip_impl(self, a, "strip", true, true);
}
Value m_lstrip(CallContext&, Value& self, const CallArgs& a) {
    return strip_impl(self, a, "lstrip", true, false);
}
Value m_rstrip(CallContext&, Value& self, const CallArgs& a) {
    return strip_impl(self, a, "rstrip", false, true);
}

// ---- search ----------------------------------------------------------------------

const StrObj* sub_arg(const CallArgs& a, const char* name) {
    if (a.pos.empty()) type_error(std::string(name) + "() takes at least 1 argument (0 given)");
    if (!a.pos[0].is(ObjType::Str)) type_error("must be str, not " + type_name(a.pos[0]));
    return a.pos[0].as<StrObj>();
}

int64_t find_impl(const Value& self, const CallArgs& a, const char* name, bool rev) {
    no_kwargs(a, name);
    check_args(a, name, 1, 3);
    auto* s = self_str(self);
    auto* sub = sub_arg(a, name);
    size_t b0, b1;
    int64_t cp0;
    span_args(s, a, 1, b0, b1, cp0);
    if (b0 > s->data.size() || b1 < b0) return -1;
    std::string_view hay = std::string_view(s->data).substr(b0, b1 - b0);
    size_t j = rev ? hay.rfind(sub->data) : hay.find(sub->data);
    if (j == std::string_view::npos) return -1;
    return byte_to_cp(s, b0 + j);
}

Value m_find(CallContext&, Value& self, const CallArgs& a) {
    return Value::integer(find_impl(self, a, "find", false));
}
Value m_rfind(CallContext&, Value& self, const CallArgs& a) {
    return Value::integer(find_impl(self, a, "rfind", true));
}
Value m_index(CallContext&, Value& self, const CallArgs& a) {
    int64_t r = find_impl(self, a, "index", false);
    if (r < 0) value_error("substring not found");
    return Value::integer(r);
}
Value m_rindex(CallContext&, Value& self, const CallArgs& a) {
    int64_t r = find_impl(self, a, "rindex", true);
    if (r < 0) value_error("substring not found");
    return Value::integer(r);
}

Value m_count(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "count");
    check_args(a, "count", 1, 3);
    auto* s = self_str(self);
    auto* sub = sub_arg(a, "count");
    size_t b0, b1;
    int64_t cp0;
    span_args(s, a, 1, b0, b1, cp0);
    if (b0 > s->data.size() || b1 < b0) return Value::integer(0);
    std::string_view hay = std::string_view(s->data).substr(b0, b1 - b0);
    if (sub->data.empty()) return Value::integer(utf8_count(hay) + 1);
    int64_t n = 0;
    for (size_t j = hay.find(sub->data); j != std::string_view::npos;
         j = hay.find(sub->data, j + sub->data.size()))
        ++n;
    return Value::integer(n);
}

Value starts_ends(const Value& self, const CallArgs& a, const char* name, bool ends) {
    no_kwargs(a, name);
    check_args(a, name, 1, 3);
    auto* s = self_str(self);
    size_t b0, b1;
    int64_t cp0;
    span_args(s, a, 1, b0, b1, cp0);
    if (b0 > s->data.size()) return vbool(false);
    std::string_view hay = std::string_view(s->data).substr(b0, b1 - b0);
    auto test = [&](const Value& p) {
        if (!p.is(ObjType::Str))
            type_error(std::string(name) + " first arg must be str or a tuple of str, not " +
                       type_name(p));
        std::string_view x = sv(p);
        return ends ? hay.ends_with(x) : hay.starts_with(x);
    };
    const Value& p = a.pos[0];
    if (p.is(ObjType::Tuple)) {
        for (auto& x : p.as<TupleObj>()->items) {
            if (!x.is(ObjType::Str))
                type_error("tuple for " + std::string(name) + " must only contain str, not " +
                           type_name(x));
            if (test(x)) return vbool(true);
        }
        return vbool(false);
    }
    return vbool(test(p));
}
Value m_startswith(CallContext&, Value& self, const CallArgs& a) {
    return starts_ends(self, a, "startswith", false);
}
Value m_endswith(CallContext&, Value& self, const CallArgs& a) {
    return starts_ends(self, a, "endswith", true);
}

Value m_replace(CallContext&, Value& self, const CallArgs& a) {
    allow_kwargs(a, "replace", {"count"});
    check_args(a, "replace", 2, 3);
    if (!a.pos[0].is(ObjType::Str))
        type_error("replace() argument 1 must be str, not " + type_name(a.pos[0]));
    if (!a.pos[1].is(ObjType::Str))
        type_error("replace() argument 2 must be str, not " + type_name(a.pos[1]));
    const Value* cv = a.pos.size() == 3 ? &a.pos[2] : a.find_kw("count");
    int64_t count = cv ? int_arg(*cv, "replace") : -1;
    std::string_view s = sv(self), old = sv(a.pos[0]), rep = sv(a.pos[1]);
    if (count == 0) return self;
    std::string out;
    if (old.empty()) {
        int64_t done = 0;
        size_t i = 0;
        out.reserve(s.size() * (rep.size() + 1) + rep.size());
        while (i <= s.size()) {
            if (count < 0 || done < count) {
                out += rep;
                ++done;
            }
            if (i == s.size()) break;
            size_t n = size_t(utf8_seq_len((unsigned char)s[i]));
            out.append(s.substr(i, n));
            i += n;
        }
        return make_str(std::move(out));
    }
    size_t i = 0;
    int64_t done = 0;
    size_t j = s.find(old);
    if (j == std::string_view::npos) return self;
    out.reserve(s.size());
    for (; j != std::string_view::npos && (count < 0 || done < count); j = s.find(old, i)) {
        out.append(s.substr(i, j - i));
        out += rep;
        i = j + old.size();
        ++done;
    }
    out.append(s.substr(i));
    return make_str(std::move(out));
}

// ---- padding -----------------------------------------------------------------

uint32_t fill_arg(const CallArgs& a, size_t pos, const char* name) {
    if (a.pos.size() <= pos) return ' ';
    const Value& f = a.pos[pos];
    if (!f.is(ObjType::Str))
        type_error(std::string(name) + "() argument 2 must be str, not " + type_name(f));
    if (str_len(f.as<StrObj>()) != 1)
        type_error("The fill character must be exactly one character long");
    size_t i = 0;
    return utf8_decode(sv(f), i);
}

std::string rep_cp(uint32_t c, int64_t n) {
    std::string one, out;
    utf8_append(one, c);
    out.reserve(one.size() * size_t(n));
    for (int64_t i = 0; i < n; ++i)
        out += one;
    return out;
}

Value pad_impl(Value& self, const CallArgs& a, const char* name, char how) {
    no_kwargs(a, name);
    check_args(a, name, 1, 2);
    int64_t width = int_arg(a.pos[0], name);
    uint32_t fill = fill_arg(a, 1, name);
    int64_t n = str_len(self_str(self));
    if (width <= n) return self;
    int64_t pad = width - n;
    std::string_view s = sv(self);
    // A width beyond the machine's memory is a MemoryError now, not a string grown until the
    // OOM killer strikes (vm/memory.h). A fill character takes up to 4 bytes.
    check_alloc(mul_bytes(uint64_t(pad), fill < 0x80 ? 1 : 4) + s.size(), "a str");
    if (how == '<') return make_str(std::string(s) + rep_cp(fill, pad));
    if (how == '>') return make_str(rep_cp(fill, pad) + std::string(s));
    int64_t left = pad / 2 + (pad & width & 1);
    return make_str(rep_cp(fill, left) + std::string(s) + rep_cp(fill, pad - left));
}
Value m_center(CallContext&, Value& self, const CallArgs& a) {
    return pad_impl(self, a, "center", '^');
}
Value m_ljust(CallContext&, Value& self, const CallArgs& a) {
    return pad_impl(self, a, "ljust", '<');
}
Value m_rjust(CallContext&, Value& self, const CallArgs& a) {
    return pad_impl(self, a, "rjust", '>');
}

Value m_zfill(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "zfill");
    check_args(a, "zfill", 1, 1);
    int64_t width = int_arg(a.pos[0], "zfill");
    int64_t n = str_len(self_str(self));
    if (width <= n) return self;
    check_alloc(uint64_t(width - n) + sv(self).size(), "a str");
    std::string s(sv(self));
    size_t at = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    s.insert(at, size_t(width - n), '0');
    return make_str(std::move(s));
}

Value m_expandtabs(CallContext&, Value& self, const CallArgs& a) {
    allow_kwargs(a, "expandtabs", {"tabsize"});
    check_args(a, "expandtabs", 0, 1);
    const Value* tv = !a.pos.empty() ? &a.pos[0] : a.find_kw("tabsize");
    int64_t ts = tv ? int_arg(*tv, "expandtabs") : 8;
    std::string_view s = sv(self);
    std::string out;
    int64_t col = 0;
    for (size_t i = 0; i < s.size();) {
        size_t st = i;
        uint32_t c = utf8_decode(s, i);
        if (c == '\t') {
            if (ts > 0) {
                int64_t k = ts - col % ts;
                check_alloc(out.size() + uint64_t(k), "a str");
                out.append(size_t(k), ' ');
                col += k;
            }
        } else {
            out.append(s.substr(st, i - st));
            col = (c == '\n' || c == '\r') ? 0 : col + 1;
        }
    }
    return make_str(std::move(out));
}

// ---- partition, prefixes, format, encode -----------------------------------------

Value partition_impl(Value& self, const CallArgs& a, const char* name, bool rev) {
    no_kwargs(a, name);
    check_args(a, name, 1, 1);
    if (!a.pos[0].is(ObjType::Str)) type_error("must be str, not " + type_name(a.pos[0]));
    std::string_view s = sv(self), d = sv(a.pos[0]);
    if (d.empty()) value_error("empty separator");
    size_t j = rev ? s.rfind(d) : s.find(d);
    Value empty = Value::borrow(intern(""));
    if (j == std::string_view::npos) {
        if (rev) return make_tuple({empty, empty, self});
        return make_tuple({self, empty, empty});
    }
    return make_tuple({make_str(s.substr(0, j)), a.pos[0], make_str(s.substr(j + d.size()))});
}
Value m_partition(CallContext&, Value& self, const CallArgs& a) {
    return partition_impl(self, a, "partition", false);
}
Value m_rpartition(CallContext&, Value& self, const CallArgs& a) {
    return partition_impl(self, a, "rpartition", true);
}

Value m_removeprefix(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "removeprefix");
    check_args(a, "removeprefix", 1, 1);
    if (!a.pos[0].is(ObjType::Str))
        type_error("removeprefix() argument must be str, not " + type_name(a.pos[0]));
    std::string_view s = sv(self), p = sv(a.pos[0]);
    if (p.empty() || !s.starts_with(p)) return self;
    return make_str(s.substr(p.size()));
}

Value m_removesuffix(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "removesuffix");
    check_args(a, "removesuffix", 1, 1);
    if (!a.pos[0].is(ObjType::Str))
        type_error("removesuffix() argument must be str, not " + type_name(a.pos[0]));
    std::string_view s = sv(self), p = sv(a.pos[0]);
    if (p.empty() || !s.ends_with(p)) return self;
    return make_str(s.substr(0, s.size() - p.size()));
}

Value m_format(CallContext&, Value& self, const CallArgs& a) {
    return make_str(str_format(sv(self), a));
}

std::string norm_encoding(const Value* v, const char* fname) {
    if (!v) return "utf-8";
    if (!v->is(ObjType::Str))
        type_error(std::string(fname) + "() argument 'encoding' must be str, not " + type_name(*v));
    std::string e;
    for (char c : sv(*v))
        e += c == '_' ? '-' : char(std::tolower((unsigned char)c));
    if (e == "utf8" || e == "utf-8") return "utf-8";
    if (e == "ascii" || e == "us-ascii") return "ascii";
    if (e == "latin-1" || e == "latin1" || e == "iso-8859-1" || e == "iso8859-1") return "latin-1";
    raise(ErrorKind::ValueError, "unknown encoding: " + std::string(sv(*v)));
}

std::string errors_arg(const CallArgs& a, size_t pos) {
    const Value* v = a.pos.size() > pos ? &a.pos[pos] : a.find_kw("errors");
    if (!v) return "strict";
    if (!v->is(ObjType::Str)) type_error("errors must be str, not " + type_name(*v));
    return std::string(sv(*v));
}

Value m_encode(CallContext&, Value& self, const CallArgs& a) {
    allow_kwargs(a, "encode", {"encoding", "errors"});
    check_args(a, "encode", 0, 2);
    std::string enc = norm_encoding(!a.pos.empty() ? &a.pos[0] : a.find_kw("encoding"), "encode");
    std::string errors = errors_arg(a, 1);
    std::string_view s = sv(self);
    if (enc == "utf-8" || self_str(self)->ascii) return make_bytes(std::string(s));
    uint32_t limit = enc == "ascii" ? 0x80 : 0x100;
    std::string out;
    int64_t pos = 0;
    for (size_t i = 0; i < s.size(); ++pos) {
        uint32_t c = utf8_decode(s, i);
        if (c < limit) {
            out += char(c);
            continue;
        }
        if (errors == "ignore") continue;
        if (errors == "replace") {
            out += '?';
            continue;
        }
        char ch[16];
        if (c < 0x100)
            snprintf(ch, sizeof ch, "'\\x%02x'", c);
        else if (c < 0x10000)
            snprintf(ch, sizeof ch, "'\\u%04x'", c);
        else
            snprintf(ch, sizeof ch, "'\\U%08x'", c);
        value_error("'" + std::string(enc == "ascii" ? "ascii" : "latin-1") +
                    "' codec can't encode character " + ch + " in position " + std::to_string(pos) +
                    ": ordinal not in range(" + std::to_string(limit) + ")");
    }
    return make_bytes(std::move(out));
}

// ---- bytes -------------------------------------------------------------------------

Value b_decode(CallContext&, Value& self, const CallArgs& a) {
    allow_kwargs(a, "decode", {"encoding", "errors"});
    check_args(a, "decode", 0, 2);
    std::string enc = norm_encoding(!a.pos.empty() ? &a.pos[0] : a.find_kw("encoding"), "decode");
    std::string errors = errors_arg(a, 1);
    const std::string& d = self.as<BytesObj>()->data;
    if (enc == "latin-1" || enc == "ascii") {
        std::string out;
        for (size_t i = 0; i < d.size(); ++i) {
            unsigned char c = (unsigned char)d[i];
            if (enc == "ascii" && c >= 0x80) {
                if (errors == "ignore") continue;
                if (errors == "replace") {
                    utf8_append(out, 0xFFFD);
                    continue;
                }
                char buf[120];
                snprintf(buf, sizeof buf,
                         "'ascii' codec can't decode byte 0x%02x in position %zu: ordinal not in "
                         "range(128)",
                         c, i);
                value_error(buf);
            }
            utf8_append(out, c);
        }
        return make_str(std::move(out));
    }
    size_t bad = utf8_validate(d);
    if (bad == std::string::npos) return make_str(d);
    if (errors == "strict") {
        unsigned char c = (unsigned char)d[bad];
        bool start_ok = (c >= 0xC2 && c <= 0xF4);
        const char* why =
            !start_ok ? "invalid start byte"
                      : (bad + size_t(utf8_seq_len(c)) > d.size() ? "unexpected end of data"
                                                                  : "invalid continuation byte");
        char buf[160];
        snprintf(buf, sizeof buf, "'utf-8' codec can't decode byte 0x%02x in position %zu: %s", c,
                 bad, why);
        value_error(buf);
    }
    // replace / ignore: walk, substituting one U+FFFD per invalid byte.
    std::string out;
    std::string_view v = d;
    size_t i = 0;
    while (i < v.size()) {
        size_t rel = utf8_validate(v.substr(i));
        if (rel == std::string::npos) {
            out.append(v.substr(i));
            break;
        }
        out.append(v.substr(i, rel));
        if (errors == "replace") utf8_append(out, 0xFFFD);
        i += rel + 1;
    }
    return make_str(std::move(out));
}

Value b_hex(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "hex", 0, 0);
    static const char kH[] = "0123456789abcdef";
    const std::string& d = self.as<BytesObj>()->data;
    std::string out;
    out.reserve(d.size() * 2);
    for (unsigned char c : d) {
        out += kH[c >> 4];
        out += kH[c & 15];
    }
    return make_str(std::move(out));
}

Value b_startswith(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "startswith", 1, 1);
    if (!a.pos[0].is(ObjType::Bytes))
        type_error("startswith first arg must be bytes or a tuple of bytes, not " +
                   type_name(a.pos[0]));
    return vbool(
        std::string_view(self.as<BytesObj>()->data).starts_with(a.pos[0].as<BytesObj>()->data));
}

Value b_endswith(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "endswith", 1, 1);
    if (!a.pos[0].is(ObjType::Bytes))
        type_error("endswith first arg must be bytes or a tuple of bytes, not " +
                   type_name(a.pos[0]));
    return vbool(
        std::string_view(self.as<BytesObj>()->data).ends_with(a.pos[0].as<BytesObj>()->data));
}

Value b_find(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "find", 1, 1);
    const std::string& d = self.as<BytesObj>()->data;
    size_t j;
    if (a.pos[0].is(ObjType::Bytes))
        j = d.find(a.pos[0].as<BytesObj>()->data);
    else
        j = d.find(char(int_arg(a.pos[0], "find")));
    return Value::integer(j == std::string::npos ? -1 : int64_t(j));
}

}  // namespace

// Tables used by find_method (vm/methods_coll.cpp).
extern const MethodInfo kStrMethods[];
extern const size_t kStrMethodCount;
extern const MethodInfo kBytesMethods[];
extern const size_t kBytesMethodCount;

const MethodInfo kStrMethods[] = {
    {"split", m_split, false, "sep maxsplit"},
    {"rsplit", m_rsplit, false, "sep maxsplit"},
    {"splitlines", m_splitlines, false, "keepends"},
    {"join", m_join, false},
    {"strip", m_strip, false},
    {"lstrip", m_lstrip, false},
    {"rstrip", m_rstrip, false},
    {"replace", m_replace, false, "count"},
    {"find", m_find, false},
    {"rfind", m_rfind, false},
    {"index", m_index, false},
    {"rindex", m_rindex, false},
    {"count", m_count, false},
    {"startswith", m_startswith, false},
    {"endswith", m_endswith, false},
    {"upper", m_upper, false},
    {"lower", m_lower, false},
    {"casefold", m_lower, false},
    {"capitalize", m_capitalize, false},
    {"title", m_title, false},
    {"swapcase", m_swapcase, false},
    {"isdigit", m_isdigit, false},
    {"isalpha", m_isalpha, false},
    {"isalnum", m_isalnum, false},
    {"isspace", m_isspace, false},
    {"isupper", m_isupper, false},
    {"islower", m_islower, false},
    {"istitle", m_istitle, false},
    {"isidentifier", m_isidentifier, false},
    {"isnumeric", m_isnumeric, false},
    {"isdecimal", m_isdecimal, false},
    {"isascii", m_isascii, false},
    {"isprintable", m_isprintable, false},
    {"center", m_center, false},
    {"ljust", m_ljust, false},
    {"rjust", m_rjust, false},
    {"zfill", m_zfill, false},
    {"partition", m_partition, false},
    {"rpartition", m_rpartition, false},
    {"format", m_format, false, kAnyKeywords},
    {"encode", m_encode, false, "encoding errors"},
    {"removeprefix", m_removeprefix, false},
    {"removesuffix", m_removesuffix, false},
    {"expandtabs", m_expandtabs, false, "tabsize"},
};
const size_t kStrMethodCount = sizeof(kStrMethods) / sizeof(kStrMethods[0]);

const MethodInfo kBytesMethods[] = {
    {"decode", b_decode, false, "encoding errors"},     {"hex", b_hex, false},   {"startswith", b_startswith, false},
    {"endswith", b_endswith, false}, {"find", b_find, false},
};
const size_t kBytesMethodCount = sizeof(kBytesMethods) / sizeof(kBytesMethods[0]);

}  // namespace weft
