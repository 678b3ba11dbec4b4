// format.cpp — Python-compatible text forms of values: repr/str, the float
// repr, the format-spec mini-language (format(), f-strings), printf-style
// `str % args` and str.format.
//
// Float repr: std::to_chars gives the shortest digits that round-trip (the same
// digits CPython's dtoa mode 0 yields); we then lay them out with CPython's
// repr rules: fixed notation for decimal exponents -4 <= e < 16, else
// scientific with a signed, at least two-digit exponent, and ".0" on integral
// fixed values. Fixed-precision conversions (f/e/g/%) use snprintf, which glibc
// rounds correctly (round-half-even on the exact binary value), as CPython does.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "vm/lib_internal.h"
#include "vm/memory.h"

namespace weft {

using namespace lib;

// ---------------------------------------------------------------------------
// Floats

namespace {
// Writes Python's repr of `d` into `out` (at least 32 bytes); returns the length.
size_t float_repr_chars(double d, char* out) {
    char* o = out;
    if (std::isnan(d)) {
        std::memcpy(o, "nan", 3);
        return 3;
    }
    if (std::isinf(d)) {
        if (d < 0) *o++ = '-';
        std::memcpy(o, "inf", 3);
        return size_t(o - out) + 3;
    }
    if (d == 0) {
        if (std::signbit(d)) *o++ = '-';
        std::memcpy(o, "0.0", 3);
        return size_t(o - out) + 3;
    }
    char buf[40];
    char* end = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific).ptr;
    // buf = [-]D[.DDD]e(+|-)XX[X]
    const char* p = buf;
    if (*p == '-') {
        *o++ = '-';
        ++p;
    }
    char digits[20];
    int nd = 0;
    for (; *p != 'e'; ++p)
        if (*p != '.') digits[nd++] = *p;
    ++p;  // 'e'
    bool eneg = *p == '-';
    ++p;
    int exp = 0;
    for (; p < end; ++p)
        exp = exp * 10 + (*p - '0');
    if (eneg) exp = -exp;
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -exp - 1; ++i)
                *o++ = '0';
            std::memcpy(o, digits, size_t(nd));
            o += nd;
        } else if (nd <= exp + 1) {
            std::memcpy(o, digits, size_t(nd));
            o += nd;
            for (int i = 0; i < exp + 1 - nd; ++i)
                *o++ = '0';
            *o++ = '.';
            *o++ = '0';
        } else {
            std::memcpy(o, digits, size_t(exp + 1));
            o += exp + 1;
            *o++ = '.';
            std::memcpy(o, digits + exp + 1, size_t(nd - exp - 1));
            o += nd - exp - 1;
        }
    } else {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            std::memcpy(o, digits + 1, size_t(nd - 1));
            o += nd - 1;
        }
        *o++ = 'e';
        *o++ = exp < 0 ? '-' : '+';
        int ae = exp < 0 ? -exp : exp;
        if (ae >= 100) *o++ = char('0' + ae / 100);
        *o++ = char('0' + ae / 10 % 10);
        *o++ = char('0' + ae % 10);
    }
    return size_t(o - out);
}
}  // namespace

std::string float_repr(double d) {
    char buf[40];
    return std::string(buf, float_repr_chars(d, buf));
}

// ---------------------------------------------------------------------------
// Strings

namespace {
const char kHex[] = "0123456789abcdef";

bool cp_printable(uint32_t c) {
    if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad) return false;
    // Unicode spaces and format characters (Zs, Zl, Zp, Cf) print escaped.
    if ((c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
        (c >= 0x205f && c <= 0x206f))
        return false;
    if (c == 0x3000 || c == 0xfeff || c == 0x1680) return false;
    if (c >= 0xd800 && c <= 0xdfff) return false;
    if (c >= 0xe000 && c <= 0xf8ff) return false;  // private use
    if (c == 0xfffe || c == 0xffff) return false;
    return true;
}

void append_hex_escape(std::string& out, uint32_t c) {
    if (c < 0x100) {
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    } else if (c < 0x10000) {
        out += "\\u";
        for (int sh = 12; sh >= 0; sh -= 4)
            out += kHex[(c >> sh) & 15];
    } else {
        out += "\\U";
        for (int sh = 28; sh >= 0; sh -= 4)
            out += kHex[(c >> sh) & 15];
    }
}

// One byte below 0x80 of a str or bytes literal quoted with `q`, escaped as Python's repr does.
void append_ascii_escaped(std::string& out, unsigned char c, char q) {
    if (c == '\\')
        out += "\\\\";
    else if (c == (unsigned char)q) {
        out += '\\';
        out += q;
    } else if (c == '\n')
        out += "\\n";
    else if (c == '\r')
        out += "\\r";
    else if (c == '\t')
        out += "\\t";
    else if (c < 0x20 || c == 0x7f)
        append_hex_escape(out, c);
    else
        out += char(c);
}

void append_str_repr(std::string& out, std::string_view s) {
    char q = '\'';
    if (s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos) q = '"';
    out += q;
    for (size_t i = 0; i < s.size();) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            ++i;
            append_ascii_escaped(out, c, q);
            continue;
        }
        size_t start = i;
        uint32_t cp = utf8_decode(s, i);
        if (cp_printable(cp))
            out.append(s.substr(start, i - start));
        else
            append_hex_escape(out, cp);
    }
    out += q;
}

void append_bytes_repr(std::string& out, std::string_view s) {
    char q = '\'';
    if (s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos) q = '"';
    out += 'b';
    out += q;
    for (unsigned char c : s) {
        if (c >= 0x80)
            append_hex_escape(out, c);
        else
            append_ascii_escaped(out, c, q);
    }
    out += q;
}

constexpr const char* kGettingRepr = "while getting the repr of an object";

void append_repr_at(std::string& out, const Value& v, int depth);

// The reprs of the items of a container found `depth` deep, comma-separated.
void append_items(std::string& out, const std::vector<Value>& items, int depth) {
    check_nesting(depth, kGettingRepr);
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        append_repr_at(out, items[i], depth + 1);
    }
}

const char* iter_repr_name(IterKind k) {
    switch (k) {
        case IterKind::List:
            return "<list_iterator object>";
        case IterKind::Tuple:
            return "<tuple_iterator object>";
        case IterKind::Str:
            return "<str_iterator object>";
        case IterKind::Bytes:
            return "<bytes_iterator object>";
        case IterKind::Range:
            return "<range_iterator object>";
        case IterKind::DictKeys:
            return "<dict_keyiterator object>";
        case IterKind::DictValues:
            return "<dict_valueiterator object>";
        case IterKind::DictItems:
            return "<dict_itemiterator object>";
        case IterKind::Set:
            return "<set_iterator object>";
        case IterKind::Enumerate:
            return "<enumerate object>";
        case IterKind::Zip:
            return "<zip object>";
        case IterKind::Map:
            return "<map object>";
        case IterKind::Filter:
            return "<filter object>";
        case IterKind::Reversed:
            return "<reversed object>";
        case IterKind::Generic:
            return "<iterator object>";
    }
    return "<iterator object>";
}
}  // namespace

std::string str_repr(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    append_str_repr(out, s);
    return out;
}

void append_repr(std::string& out, const Value& v) { append_repr_at(out, v, 0); }

namespace {
// append_repr of a value found `depth` containers deep.
void append_repr_at(std::string& out, const Value& v, int depth) {
    switch (v.tag()) {
        case Tag::None:
            out += "None";
            return;
        case Tag::Bool:
            out += v.as_bool() ? "True" : "False";
            return;
        case Tag::Int: {
            char buf[24];
            auto r = std::to_chars(buf, buf + 24, v.as_int());
            out.append(buf, r.ptr);
            return;
        }
        case Tag::Float: {
            char buf[40];
            out.append(buf, float_repr_chars(v.as_float(), buf));
            return;
        }
        case Tag::Object:
            break;
    }
    Obj* o = v.as_obj();
    switch (o->type) {
        case ObjType::Str:
            append_str_repr(out, static_cast<StrObj*>(o)->data);
            return;
        case ObjType::Bytes:
            append_bytes_repr(out, static_cast<BytesObj*>(o)->data);
            return;
        case ObjType::List:
            out += '[';
            append_items(out, static_cast<ListObj*>(o)->items, depth);
            out += ']';
            return;
        case ObjType::Tuple: {
            auto& items = static_cast<TupleObj*>(o)->items;
            out += '(';
            append_items(out, items, depth);
            if (items.size() == 1) out += ',';
            out += ')';
            return;
        }
        case ObjType::Dict: {
            auto& t = static_cast<DictObj*>(o)->table;
            check_nesting(depth, kGettingRepr);
            out += '{';
            bool first = true;
            for (size_t i = 0; i < t.end_index(); ++i) {
                auto& e = t.entry(i);
                if (!e.live) continue;
                if (!first) out += ", ";
                first = false;
                append_repr_at(out, e.key, depth + 1);
                out += ": ";
                append_repr_at(out, e.value, depth + 1);
            }
            out += '}';
            return;
        }
        case ObjType::Set: {
            auto& t = static_cast<SetObj*>(o)->table;
            if (t.size() == 0) {
                out += "set()";
                return;
            }
            check_nesting(depth, kGettingRepr);
            out += '{';
            bool first = true;
            for (size_t i = 0; i < t.end_index(); ++i) {
                auto& e = t.entry(i);
                if (!e.live) continue;
                if (!first) out += ", ";
                first = false;
                append_repr_at(out, e.key, depth + 1);
            }
            out += '}';
            return;
        }
        case ObjType::Range: {
            auto* r = static_cast<RangeObj*>(o);
            out += "range(" + std::to_string(r->start) + ", " + std::to_string(r->stop);
            if (r->step != 1) out += ", " + std::to_string(r->step);
            out += ')';
            return;
        }
        case ObjType::Slice: {
            auto* s = static_cast<SliceObj*>(o);
            out += "slice(";
            append_repr_at(out, s->lower, depth + 1);
            out += ", ";
            append_repr_at(out, s->upper, depth + 1);
            out += ", ";
            append_repr_at(out, s->step, depth + 1);
            out += ')';
            return;
        }
        case ObjType::Iterator:
            out += iter_repr_name(static_cast<IteratorObj*>(o)->kind);
            return;
        case ObjType::TypeObj:
            out += "<class '" + static_cast<TypeObj*>(o)->name + "'>";
            return;
        case ObjType::Struct: {
            auto* s = static_cast<StructObj*>(o);
            check_nesting(depth, kGettingRepr);
            out += s->type->name;
            out += '(';
            bool first = true;
            if (s->error) {
                append_str_repr(out, s->error->message);
                first = false;
            }
            for (size_t i = 0; i < s->fields.size() && i < s->type->fields.size(); ++i) {
                if (!first) out += ", ";
                first = false;
                out += s->type->fields[i].name;
                out += '=';
                append_repr_at(out, s->fields[i], depth + 1);
            }
            out += ')';
            return;
        }
        default:
            out += callable_repr(v);
            return;
    }
}
}  // namespace

std::string repr(const Value& v) {
    std::string out;
    append_repr(out, v);
    return out;
}

void append_str(std::string& out, const Value& v) {
    if (v.is(ObjType::Promise) && promise_resolver) {  // a promise is forced when inspected
        append_str(out, promise_resolver(v));
        return;
    }
    if (v.is(ObjType::Str)) {
        out += v.as<StrObj>()->data;
    } else if (v.is(ObjType::Struct) && v.as<StructObj>()->error) {
        out += v.as<StructObj>()->error->message;
    } else {
        append_repr(out, v);
    }
}

std::string to_str(const Value& v) {
    if (v.is(ObjType::Str)) return v.as<StrObj>()->data;
    std::string out;
    append_str(out, v);
    return out;
}

// ---------------------------------------------------------------------------
// The format-spec mini-language

namespace {
struct Spec {
    uint32_t fill = ' ';
    char align = 0;  // < > ^ =
    char sign = 0;   // + - space
    bool alt = false;
    bool zero = false;
    bool z = false;
    int64_t width = -1;
    char grouping = 0;  // , _
    int64_t precision = -1;
    char type = 0;
};

Spec parse_spec(std::string_view s) {
    Spec sp;
    size_t i = 0;
    auto is_align = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
    // fill + align: the fill may be any code point.
    if (!s.empty()) {
        size_t j = 0;
        uint32_t cp = utf8_decode(s, j);
        if (j < s.size() && is_align(s[j])) {
            sp.fill = cp;
            sp.align = s[j];
            i = j + 1;
        } else if (is_align(s[0])) {
            sp.align = s[0];
            i = 1;
        }
    }
    if (i < s.size() && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) sp.sign = s[i++];
    if (i < s.size() && s[i] == 'z') {
        sp.z = true;
        ++i;
    }
    if (i < s.size() && s[i] == '#') {
        sp.alt = true;
        ++i;
    }
    if (i < s.size() && s[i] == '0') {
        sp.zero = true;
        ++i;
    }
    auto read_int = [&](int64_t& out) {
        size_t st = i;
        int64_t n = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            n = n * 10 + (s[i] - '0');
            if (n > 1000000000) value_error("Too many decimal digits in format string");
            ++i;
        }
        if (i > st) out = n;
        return i > st;
    };
    read_int(sp.width);
    if (i < s.size() && (s[i] == ',' || s[i] == '_')) sp.grouping = s[i++];
    if (i < s.size() && (s[i] == ',' || s[i] == '_'))
        value_error("Cannot specify both ',' and '_'.");
    if (i < s.size() && s[i] == '.') {
        ++i;
        if (!read_int(sp.precision)) value_error("Format specifier missing precision");
    }
    if (i < s.size()) sp.type = s[i++];
    if (i < s.size())
        value_error("Invalid format specifier '" + std::string(s) + "' for object of type");
    if (sp.zero && !sp.align) {
        sp.fill = '0';
        sp.align = '=';
    }
    return sp;
}

// Pads `body` (with sign/prefix `head` kept in front for '=') to the width.
std::string pad(const Spec& sp, std::string head, std::string body, char default_align) {
    int64_t len = utf8_count(head) + utf8_count(body);
    char align = sp.align ? sp.align : default_align;
    if (sp.width <= len) return head + body;
    int64_t n = sp.width - len;
    std::string fill;
    utf8_append(fill, sp.fill);
    check_alloc(mul_bytes(uint64_t(n), fill.size()) + head.size() + body.size(), "a str");  // `%*d`
    auto rep = [&](int64_t k) {
        std::string r;
        r.reserve(size_t(k) * fill.size());
        for (int64_t i = 0; i < k; ++i)
            r += fill;
        return r;
    };
    switch (align) {
        case '<':
            return head + body + rep(n);
        case '^':
            return rep(n / 2) + head + body + rep(n - n / 2);
        case '=':
            return head + rep(n) + body;
        default:
            return rep(n) + head + body;
    }
}

// Inserts group separators every `every` digits into a run of digits.
std::string group_digits(std::string_view digits, char sep, int every) {
    std::string out;
    size_t n = digits.size();
    for (size_t i = 0; i < n; ++i) {
        out += digits[i];
        size_t left = n - 1 - i;
        if (left > 0 && left % size_t(every) == 0) out += sep;
    }
    return out;
}

// Zero padding with grouping: CPython pads with grouped zeros; we emulate by
// padding digits before grouping when fill is '0' and align is '='.
std::string finish_number(const Spec& sp, bool neg, std::string prefix, std::string digits,
                          std::string rest, int group_every) {
    std::string sign;
    if (neg)
        sign = "-";
    else if (sp.sign == '+')
        sign = "+";
    else if (sp.sign == ' ')
        sign = " ";
    std::string head = sign + prefix;
    if (sp.grouping && sp.align == '=' && sp.fill == '0' && sp.width > 0) {
        // Grow the digit run until the grouped result fills the width.
        int64_t want = sp.width - int64_t(head.size() + rest.size());
        std::string g = group_digits(digits, sp.grouping, group_every);
        while (int64_t(g.size()) < want) {
            digits.insert(digits.begin(), '0');
            g = group_digits(digits, sp.grouping, group_every);
        }
        return head + g + rest;
    }
    if (sp.grouping) digits = group_digits(digits, sp.grouping, group_every);
    return pad(sp, head, digits + rest, '>');
}

std::string to_base(uint64_t u, int base, bool upper) {
    if (u == 0) return "0";
    const char* dig = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    std::string r;
    while (u) {
        r += dig[u % unsigned(base)];
        u /= unsigned(base);
    }
    return std::string(r.rbegin(), r.rend());
}

std::string format_float(const Spec& sp, double d, const char* tname);

std::string format_int(const Spec& sp, int64_t v, const char* tname) {
    char t = sp.type;
    if (t == 'e' || t == 'E' || t == 'f' || t == 'F' || t == 'g' || t == 'G' || t == '%')
        return format_float(sp, double(v), tname);
    if (sp.precision >= 0) value_error("Precision not allowed in integer format specifier");
    bool neg = v < 0;
    uint64_t u = neg ? uint64_t(0) - uint64_t(v) : uint64_t(v);
    switch (t) {
        case 0:
        case 'd':
        case 'n': {
            if (sp.grouping == '_' || sp.grouping == ',') {
            }
            return finish_number(sp, neg, "", std::to_string(u), "", 3);
        }
        case 'b':
        case 'o':
        case 'x':
        case 'X': {
            if (sp.grouping == ',')
                value_error(std::string("Cannot specify ',' with '") + t + "'.");
            int base = t == 'b' ? 2 : t == 'o' ? 8 : 16;
            std::string prefix;
            if (sp.alt) prefix = t == 'b' ? "0b" : t == 'o' ? "0o" : t == 'x' ? "0x" : "0X";
            return finish_number(sp, neg, prefix, to_base(u, base, t == 'X'), "", 4);
        }
        case 'c': {
            if (sp.sign) value_error("Sign not allowed with integer format specifier 'c'");
            if (v < 0 || v > 0x10ffff)
                raise(ErrorKind::OverflowError, "%c arg not in range(0x110000)");
            std::string s;
            utf8_append(s, uint32_t(v));
            return pad(sp, "", s, '<');
        }
        default:
            value_error(std::string("Unknown format code '") + t + "' for object of type '" +
                        tname + "'");
    }
}

// The largest precision a float conversion takes. A double's exact decimal expansion never has
// more than 1074 digits after the point (2**-1074), so a larger precision only adds zeros, and
// glibc's printf spends seconds and gigabytes on them (f"{1.5:.1000000000f}": 25 s, 5.8 GB).
// CPython raises ValueError "precision too big" past INT_MAX; Weft stops much earlier.
constexpr int64_t kMaxFloatPrecision = 100000;

std::string c_format(char conv, int64_t prec, double d, bool alt) {
    if (prec > kMaxFloatPrecision)
        value_error("precision too big (at most " + std::to_string(kMaxFloatPrecision) + ")");
    char fmt[16];
    snprintf(fmt, sizeof fmt, alt ? "%%#.%lld%c" : "%%.%lld%c", (long long)prec, conv);
    int n = snprintf(nullptr, 0, fmt, d);
    std::string s(size_t(n), '\0');
    snprintf(s.data(), size_t(n) + 1, fmt, d);
    return s;
}

// Python's 'r'/none-with-precision formatting: like %g but keeps a ".0" when fixed.
std::string format_general_none(double a, int64_t prec) {
    std::string s = c_format('g', prec == 0 ? 1 : prec, a, false);
    if (s.find_first_of(".e") == std::string::npos && s.find("inf") == std::string::npos &&
        s.find("nan") == std::string::npos)
        s += ".0";
    return s;
}

std::string format_float(const Spec& sp, double d, const char* tname) {
    char t = sp.type;
    bool neg = std::signbit(d) && !std::isnan(d);
    double a = std::fabs(d);
    std::string body;
    int64_t prec = sp.precision;
    switch (t) {
        case 0:
            if (prec < 0)
                body = float_repr(a);
            else
                body = format_general_none(a, prec);
            break;
        case 'f':
        case 'F':
        case '%':
            if (t == '%') a *= 100;
            body = std::isfinite(a) ? c_format('f', prec < 0 ? 6 : prec, a, sp.alt)
                                    : (std::isinf(a) ? "inf" : "nan");
            if (t == 'F')
                for (auto& c : body)
                    c = char(std::toupper((unsigned char)c));
            if (t == '%') body += '%';
            break;
        case 'e':
        case 'E':
            body = std::isfinite(a) ? c_format('e', prec < 0 ? 6 : prec, a, sp.alt)
                                    : (std::isinf(a) ? "inf" : "nan");
            if (t == 'E')
                for (auto& c : body)
                    c = char(std::toupper((unsigned char)c));
            break;
        case 'g':
        case 'G':
        case 'n':
            body = std::isfinite(a)
                       ? c_format('g', prec < 0 ? 6 : (prec == 0 ? 1 : prec), a, sp.alt)
                       : (std::isinf(a) ? "inf" : "nan");
            if (t == 'G')
                for (auto& c : body)
                    c = char(std::toupper((unsigned char)c));
            break;
        default:
            value_error(std::string("Unknown format code '") + t + "' for object of type '" +
                        tname + "'");
    }
    if (sp.z && neg) {
        // Negative zero after rounding becomes positive.
        bool allzero = std::isfinite(a);
        for (char c : body)
            if (c >= '1' && c <= '9') {
                allzero = false;
                break;
            }
        if (allzero) neg = false;
    }
    // Split the digit run (for grouping) from the rest (fraction, exponent, %).
    size_t k = 0;
    while (k < body.size() && body[k] >= '0' && body[k] <= '9')
        ++k;
    if (k == 0)
        return finish_number(
            Spec{sp.fill, sp.align, sp.sign, false, false, false, sp.width, 0, -1, 0}, neg, "", "",
            body, 3);
    return finish_number(sp, neg, "", body.substr(0, k), body.substr(k), 3);
}

std::string format_string(const Spec& sp, std::string_view s) {
    if (sp.type && sp.type != 's')
        value_error(std::string("Unknown format code '") + sp.type + "' for object of type 'str'");
    if (sp.sign) value_error("Sign not allowed in string format specifier");
    if (sp.alt) value_error("Alternate form (#) not allowed in string format specifier");
    if (sp.align == '=') value_error("'=' alignment not allowed in string format specifier");
    if (sp.grouping) value_error(std::string("Cannot specify '") + sp.grouping + "' with 's'.");
    std::string body(s);
    if (sp.precision >= 0 && utf8_count(body) > sp.precision) {
        size_t i = 0;
        for (int64_t k = 0; k < sp.precision; ++k)
            utf8_decode(body, i);
        body.resize(i);
    }
    return pad(sp, "", body, '<');
}
}  // namespace

std::string format_spec(const Value& v, std::string_view spec) {
    if ((v.is(ObjType::Promise)) && promise_resolver) {  // a promise is forced when inspected
        Value r_v = v;
        resolve_if_promise(r_v);
        return format_spec(r_v, spec);
    }
    if (spec.empty()) return to_str(v);
    Spec sp;
    try {
        sp = parse_spec(spec);
    } catch (WeftError& e) {
        if (e.message.ends_with("for object of type")) e.message += " '" + type_name(v) + "'";
        throw;
    }
    // A bool with a non-empty spec formats as its int value, as in CPython.
    if (v.is_int() || v.is_bool()) return format_int(sp, int_of(v), v.is_bool() ? "bool" : "int");
    if (v.is_float()) {
        if (sp.type == 'd' || sp.type == 'b' || sp.type == 'o' || sp.type == 'x' ||
            sp.type == 'X' || sp.type == 'c')
            value_error(std::string("Unknown format code '") + sp.type +
                        "' for object of type 'float'");
        return format_float(sp, v.as_float(), "float");
    }
    if (v.is(ObjType::Str)) return format_string(sp, sv(v));
    type_error("unsupported format string passed to " + type_name(v) + ".__format__");
}

// ---------------------------------------------------------------------------
// printf-style formatting: str % args

std::string percent_format(std::string_view fmt, const Value& args) {
    std::string out;
    out.reserve(fmt.size() + 16);
    const std::vector<Value>* tuple = nullptr;
    const DictObj* mapping = nullptr;
    if (args.is(ObjType::Tuple))
        tuple = &args.as<TupleObj>()->items;
    else if (args.is(ObjType::Dict))
        mapping = args.as<DictObj>();
    size_t argi = 0;
    bool used_single = false;
    auto next_arg = [&]() -> Value {
        if (tuple) {
            if (argi >= tuple->size()) type_error("not enough arguments for format string");
            Value v = (*tuple)[argi++];
            resolve_if_promise(v);  // an item that is a deferred call's promise
            return v;
        }
        if (used_single) type_error("not enough arguments for format string");
        used_single = true;
        return args;
    };
    for (size_t i = 0; i < fmt.size();) {
        char c = fmt[i];
        if (c != '%') {
            size_t j = fmt.find('%', i);
            if (j == std::string_view::npos) j = fmt.size();
            out.append(fmt.substr(i, j - i));
            i = j;
            continue;
        }
        size_t start = i;
        ++i;
        if (i >= fmt.size()) value_error("incomplete format");
        Value arg;
        bool have_arg = false;
        if (fmt[i] == '(') {
            if (!mapping) type_error("format requires a mapping");
            size_t close = fmt.find(')', i);
            if (close == std::string_view::npos) value_error("incomplete format key");
            Value key = make_str(std::string(fmt.substr(i + 1, close - i - 1)));
            int64_t idx = mapping->table.find(key);
            if (idx < 0) throw WeftError(ErrorKind::KeyError, repr(key));
            arg = mapping->table.entry(size_t(idx)).value;
            resolve_if_promise(arg);
            have_arg = true;
            i = close + 1;
        }
        Spec sp;
        bool left = false, zero = false;
        for (; i < fmt.size(); ++i) {
            char f = fmt[i];
            if (f == '-')
                left = true;
            else if (f == '+')
                sp.sign = '+';
            else if (f == ' ') {
                if (sp.sign != '+') sp.sign = ' ';
            } else if (f == '#')
                sp.alt = true;
            else if (f == '0')
                zero = true;
            else
                break;
        }
        if (i < fmt.size() && fmt[i] == '*') {
            Value w = next_arg();
            if (!is_intlike(w)) type_error("* wants int");
            sp.width = int_of(w);
            if (sp.width < 0) {
                left = true;
                sp.width = -sp.width;
            }
            ++i;
        } else {
            int64_t w = 0;
            bool any = false;
            while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
                w = w * 10 + (fmt[i++] - '0');
                if (w > 1000000000) value_error("Too many decimal digits in format string");
                any = true;
            }
            if (any) sp.width = w;
        }
        if (i < fmt.size() && fmt[i] == '.') {
            ++i;
            if (i < fmt.size() && fmt[i] == '*') {
                Value p = next_arg();
                if (!is_intlike(p)) type_error("* wants int");
                sp.precision = std::max<int64_t>(0, int_of(p));
                ++i;
            } else {
                int64_t p = 0;
                while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
                    p = p * 10 + (fmt[i++] - '0');
                    if (p > 1000000000) value_error("Too many decimal digits in format string");
                }
                sp.precision = p;
            }
        }
        if (i >= fmt.size()) value_error("incomplete format");
        char conv = fmt[i++];
        if (conv == '%') {
            out += '%';
            continue;
        }
        if (!have_arg) arg = next_arg();
        if (left)
            sp.align = '<';
        else if (zero && conv != 's' && conv != 'r' && conv != 'a' && conv != 'c') {
            sp.align = '=';
            sp.fill = '0';
        } else
            sp.align = '>';
        switch (conv) {
            case 's':
            case 'r':
            case 'a': {
                std::string s = conv == 's' ? to_str(arg) : repr(arg);
                Spec ss = sp;
                ss.sign = 0;
                ss.alt = false;
                if (ss.align == '=') ss.align = '>';
                out += format_string(ss, s);
                break;
            }
            case 'd':
            case 'i':
            case 'u': {
                int64_t n;
                if (is_intlike(arg))
                    n = int_of(arg);
                else if (arg.is_float()) {
                    double d = arg.as_float();
                    if (std::isnan(d)) value_error("cannot convert float NaN to integer");
                    if (std::isinf(d))
                        raise(ErrorKind::OverflowError, "cannot convert float infinity to integer");
                    n = int64_t(d);
                } else
                    type_error(std::string("%") + conv +
                               " format: a real number is required, not " + type_name(arg));
                Spec is = sp;
                is.type = 'd';
                std::string digits =
                    std::to_string(n < 0 ? uint64_t(0) - uint64_t(n) : uint64_t(n));
                if (sp.precision > int64_t(digits.size()))
                    digits.insert(0, size_t(sp.precision) - digits.size(), '0');
                is.precision = -1;
                out += finish_number(is, n < 0, "", digits, "", 3);
                break;
            }
            case 'x':
            case 'X':
            case 'o': {
                if (!is_intlike(arg))
                    type_error(std::string("%") + conv + " format: an integer is required, not " +
                               type_name(arg));
                int64_t n = int_of(arg);
                std::string digits = to_base(n < 0 ? uint64_t(0) - uint64_t(n) : uint64_t(n),
                                             conv == 'o' ? 8 : 16, conv == 'X');
                if (sp.precision > int64_t(digits.size()))
                    digits.insert(0, size_t(sp.precision) - digits.size(), '0');
                std::string prefix;
                if (sp.alt) prefix = conv == 'o' ? "0o" : conv == 'x' ? "0x" : "0X";
                Spec is = sp;
                is.precision = -1;
                out += finish_number(is, n < 0, prefix, digits, "", 3);
                break;
            }
            case 'e':
            case 'E':
            case 'f':
            case 'F':
            case 'g':
            case 'G': {
                if (!is_numlike(arg)) type_error("must be real number, not " + type_name(arg));
                Spec fs = sp;
                fs.type = conv;
                if (fs.precision < 0) fs.precision = 6;
                out += format_float(fs, num_of(arg), "float");
                break;
            }
            case 'c': {
                std::string s;
                if (is_intlike(arg)) {
                    int64_t n = int_of(arg);
                    if (n < 0 || n > 0x10ffff)
                        raise(ErrorKind::OverflowError, "%c arg not in range(0x110000)");
                    utf8_append(s, uint32_t(n));
                } else if (arg.is(ObjType::Str) && str_len(arg.as<StrObj>()) == 1) {
                    s = sv(arg);
                } else {
                    type_error("%c requires int or char");
                }
                Spec cs = sp;
                cs.sign = 0;
                if (cs.align == '=') cs.align = '>';
                out += format_string(cs, s);
                break;
            }
            default: {
                char buf[96];
                snprintf(buf, sizeof buf, "unsupported format character '%c' (0x%x) at index %zu",
                         conv, unsigned((unsigned char)conv), i - 1);
                (void)start;
                value_error(buf);
            }
        }
    }
    if (tuple && argi < tuple->size())
        type_error("not all arguments converted during string formatting");
    if (!tuple && !mapping && !used_single)
        type_error("not all arguments converted during string formatting");
    return out;
}

// ---------------------------------------------------------------------------
// str.format

namespace {
Value format_field_value(std::string_view field, const CallArgs& args, size_t& auto_idx,
                         int& mode) {
    // field: arg_name ("." attr | "[" key "]")*
    size_t i = 0;
    while (i < field.size() && field[i] != '.' && field[i] != '[')
        ++i;
    std::string_view name = field.substr(0, i);
    Value v;
    if (name.empty()) {
        if (mode == 2)
            value_error(
                "cannot switch from manual field specification to automatic field numbering");
        mode = 1;
        size_t idx = auto_idx++;
        if (idx >= args.pos.size())
            raise(ErrorKind::IndexError, "Replacement index " + std::to_string(idx) +
                                             " out of range for positional args tuple");
        v = args.pos[idx];
    } else if (name[0] >= '0' && name[0] <= '9') {
        if (mode == 1)
            value_error(
                "cannot switch from automatic field numbering to manual field specification");
        mode = 2;
        size_t idx = 0;
        for (char c : name) {
            if (c < '0' || c > '9') value_error("invalid format string");
            idx = idx * 10 + size_t(c - '0');
        }
        if (idx >= args.pos.size())
            raise(ErrorKind::IndexError, "Replacement index " + std::to_string(idx) +
                                             " out of range for positional args tuple");
        v = args.pos[idx];
    } else {
        const Value* kv = args.find_kw(name);
        if (!kv) throw WeftError(ErrorKind::KeyError, str_repr(name));
        v = *kv;
    }
    while (i < field.size()) {
        if (field[i] == '.') {
            size_t j = i + 1;
            while (j < field.size() && field[j] != '.' && field[j] != '[')
                ++j;
            std::string_view attr = field.substr(i + 1, j - i - 1);
            if (!v.is(ObjType::Struct))
                raise(ErrorKind::AttributeError,
                      "'" + type_name(v) + "' object has no attribute '" + std::string(attr) + "'");
            auto* s = v.as<StructObj>();
            int fi = s->type->field_index(attr);
            if (fi >= 0)
                v = Value(s->fields[size_t(fi)]);
            else if (attr == "message" && s->error)
                v = make_str(s->error->message);
            else
                raise(ErrorKind::AttributeError,
                      "'" + type_name(v) + "' object has no attribute '" + std::string(attr) + "'");
            i = j;
        } else {  // '['
            size_t j = field.find(']', i);
            if (j == std::string_view::npos) value_error("Missing ']' in format string");
            std::string_view key = field.substr(i + 1, j - i - 1);
            bool digits = !key.empty();
            for (char c : key)
                if (c < '0' || c > '9') digits = false;
            Value k =
                digits ? Value::integer(std::stoll(std::string(key))) : make_str(std::string(key));
            Value nv = get_item(v, k);
            v = std::move(nv);
            i = j + 1;
        }
    }
    return v;
}
}  // namespace

namespace {
std::string str_format_impl(std::string_view fmt, const CallArgs& args, size_t& auto_idx,
                            int& mode);
}

std::string str_format(std::string_view fmt, const CallArgs& args) {
    size_t auto_idx = 0;
    int mode = 0;  // 0 unknown, 1 automatic, 2 manual
    return str_format_impl(fmt, args, auto_idx, mode);
}

namespace {
std::string str_format_impl(std::string_view fmt, const CallArgs& args, size_t& auto_idx,
                            int& mode) {
    std::string out;
    out.reserve(fmt.size() + 16);
    for (size_t i = 0; i < fmt.size();) {
        char c = fmt[i];
        if (c == '}') {
            if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
                out += '}';
                i += 2;
                continue;
            }
            value_error("Single '}' encountered in format string");
        }
        if (c != '{') {
            out += c;
            ++i;
            continue;
        }
        if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
            out += '{';
            i += 2;
            continue;
        }
        // Find the matching '}' allowing one level of nested {} in the spec.
        size_t j = i + 1;
        int depth = 1;
        while (j < fmt.size()) {
            if (fmt[j] == '{')
                ++depth;
            else if (fmt[j] == '}' && --depth == 0)
                break;
            ++j;
        }
        if (j >= fmt.size()) value_error("Single '{' encountered in format string");
        std::string_view inner = fmt.substr(i + 1, j - i - 1);
        i = j + 1;
        size_t colon = std::string_view::npos, bang = std::string_view::npos;
        for (size_t k = 0, br = 0; k < inner.size(); ++k) {
            if (inner[k] == '[')
                br = 1;
            else if (inner[k] == ']')
                br = 0;
            else if (!br && inner[k] == '!' && bang == std::string_view::npos &&
                     colon == std::string_view::npos)
                bang = k;
            else if (!br && inner[k] == ':') {
                colon = k;
                break;
            }
        }
        std::string_view field = inner.substr(0, std::min(bang, colon));
        char conv = 0;
        if (bang != std::string_view::npos) {
            size_t end = colon == std::string_view::npos ? inner.size() : colon;
            if (end != bang + 2) value_error("expected ':' after conversion specifier");
            conv = inner[bang + 1];
            if (conv != 'r' && conv != 's' && conv != 'a')
                value_error(std::string("Unknown conversion specifier ") + conv);
        }
        Value v = format_field_value(field, args, auto_idx, mode);
        std::string spec;
        if (colon != std::string_view::npos) {
            std::string_view raw = inner.substr(colon + 1);
            if (raw.find('{') != std::string_view::npos)
                spec = str_format_impl(raw, args, auto_idx, mode);  // nested
            else
                spec = std::string(raw);
        }
        if (conv == 'r' || conv == 'a')
            v = make_str(repr(v));
        else if (conv == 's')
            v = make_str(to_str(v));
        out += format_spec(v, spec);
    }
    return out;
}
}  // namespace

}  // namespace weft
