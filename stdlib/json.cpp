// json.cpp — the `json` module: parse(s) and dump(v, indent=None,
// sort_keys=False, ensure_ascii=True), compatible with Python's json.loads and
// json.dumps (same defaults, separators, escapes, error messages).
//
// Why a parser written here rather than simdjson or nlohmann-json (neither is
// installed; both are Debian packages): both build their own document first,
// which would then be copied into Weft values; this parser builds the Weft
// values directly in one pass. Python compatibility also needs things those
// libraries do not give: NaN/Infinity literals, errors as "Expecting value: line
// 1 column 5 (char 4)" with code-point columns, and integers that do not fit in
// 64 bits becoming floats. JSON's grammar is small (RFC 8259); the parser is a
// recursive descent over bytes with a depth limit (kMaxDepth) so hostile input
// cannot exhaust a fiber's stack.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/collections.h"
#include "vm/lib_internal.h"
#include "vm/lisp_prims.h"

namespace weft {

namespace {

constexpr int kMaxDepth = 500;

class Parser {
  public:
    explicit Parser(std::string_view s) : s_(s) {}

    Value parse_document() {
        skip_ws();
        Value v = value(0);
        skip_ws();
        if (i_ != s_.size()) fail("Extra data", i_);
        return v;
    }

  private:
    [[noreturn]] void fail(const char* msg, size_t at) {
        // Python reports line, column (1-based, in code points) and the code-point offset.
        size_t line = 1, col = 1, chars = 0;
        for (size_t k = 0; k < at && k < s_.size(); ++k) {
            unsigned char c = (unsigned char)s_[k];
            if ((c & 0xC0) == 0x80) continue;
            ++chars;
            if (c == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        throw WeftError(ErrorKind::ValueError, std::string(msg) + ": line " + std::to_string(line) +
                                                   " column " + std::to_string(col) + " (char " +
                                                   std::to_string(chars) + ")");
    }

    void skip_ws() {
        while (i_ < s_.size() &&
               (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
            ++i_;
    }

    bool literal(const char* word) {
        size_t n = strlen(word);
        if (s_.compare(i_, n, word) == 0) {
            i_ += n;
            return true;
        }
        return false;
    }

    Value value(int depth) {
        if (i_ >= s_.size()) fail("Expecting value", i_);
        char c = s_[i_];
        switch (c) {
            case '{':
                return object(depth + 1);
            case '[':
                return array(depth + 1);
            case '"':
                return make_str(string());
            case 't':
                if (literal("true")) return Value::boolean(true);
                break;
            case 'f':
                if (literal("false")) return Value::boolean(false);
                break;
            case 'n':
                if (literal("null")) return Value();
                break;
            case 'N':
                if (literal("NaN")) return Value::number(std::nan(""));
                break;
            case 'I':
                if (literal("Infinity")) return Value::number(HUGE_VAL);
                break;
            case '-':
                if (s_.compare(i_, 9, "-Infinity") == 0) {
                    i_ += 9;
                    return Value::number(-HUGE_VAL);
                }
                return number();
            default:
                if (c >= '0' && c <= '9') return number();
        }
        fail("Expecting value", i_);
    }

    Value number() {
        size_t start = i_;
        if (s_[i_] == '-') ++i_;
        if (i_ >= s_.size() || !isdigit((unsigned char)s_[i_])) fail("Expecting value", start);
        if (s_[i_] == '0') {
            ++i_;
        } else {
            while (i_ < s_.size() && isdigit((unsigned char)s_[i_]))
                ++i_;
        }
        bool is_float = false;
        if (i_ + 1 < s_.size() && s_[i_] == '.' && isdigit((unsigned char)s_[i_ + 1])) {
            is_float = true;
            i_ += 2;
            while (i_ < s_.size() && isdigit((unsigned char)s_[i_]))
                ++i_;
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            size_t k = i_ + 1;
            if (k < s_.size() && (s_[k] == '+' || s_[k] == '-')) ++k;
            if (k < s_.size() && isdigit((unsigned char)s_[k])) {
                is_float = true;
                i_ = k;
                while (i_ < s_.size() && isdigit((unsigned char)s_[i_]))
                    ++i_;
            }
        }
        const char* b = s_.data() + start;
        const char* e = s_.data() + i_;
        if (!is_float) {
            int64_t n;
            auto r = std::from_chars(b, e, n);
            if (r.ec == std::errc() && r.ptr == e) return Value::integer(n);
            // Too large for 64 bits: a float, as documented.
        }
        double d;
        auto r = std::from_chars(b, e, d);
        if (r.ec == std::errc::result_out_of_range) {
            // Overflow to +-inf, underflow to 0, like float().
            d = strtod(std::string(b, e).c_str(), nullptr);
        } else if (r.ec != std::errc()) {
            fail("Expecting value", start);
        }
        return Value::number(d);
    }

    unsigned hex4(size_t at) {
        if (at + 4 > s_.size()) fail("Invalid \\uXXXX escape", at - 1);
        unsigned v = 0;
        for (size_t k = at; k < at + 4; ++k) {
            char c = s_[k];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= unsigned(c - 'A' + 10);
            else
                fail("Invalid \\uXXXX escape", at - 1);
        }
        return v;
    }

    std::string string() {
        size_t start = i_;
        ++i_;  // opening quote
        std::string out;
        for (;;) {
            size_t run = i_;
            while (i_ < s_.size() && s_[i_] != '"' && s_[i_] != '\\' &&
                   (unsigned char)s_[i_] >= 0x20)
                ++i_;
            out.append(s_.data() + run, i_ - run);
            if (i_ >= s_.size()) fail("Unterminated string starting at", start);
            char c = s_[i_];
            if (c == '"') {
                ++i_;
                return out;
            }
            if (c != '\\') fail("Invalid control character at", i_);
            if (i_ + 1 >= s_.size()) fail("Unterminated string starting at", start);
            char esc = s_[i_ + 1];
            switch (esc) {
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '/':
                    out += '/';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    unsigned cp = hex4(i_ + 2);
                    size_t next = i_ + 6;
                    if (cp >= 0xD800 && cp <= 0xDBFF && s_.compare(next, 2, "\\u") == 0) {
                        unsigned lo = hex4(next + 2);
                        if (lo >= 0xDC00 && lo <= 0xDFFF) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            next += 6;
                        }
                    }
                    if (cp >= 0xD800 && cp <= 0xDFFF)
                        fail("Lone surrogate in \\uXXXX escape (not representable in UTF-8)", i_);
                    lib::utf8_append(out, cp);
                    i_ = next;
                    continue;
                }
                default:
                    fail("Invalid \\escape", i_);
            }
            i_ += 2;
        }
    }

    Value array(int depth) {
        if (depth > kMaxDepth) fail("Nesting too deep", i_);
        ++i_;
        std::vector<Value> items;
        skip_ws();
        if (i_ < s_.size() && s_[i_] == ']') {
            ++i_;
            return make_list();
        }
        for (;;) {
            skip_ws();
            items.push_back(value(depth));
            skip_ws();
            if (i_ < s_.size() && s_[i_] == ']') {
                ++i_;
                return make_list(std::move(items));
            }
            if (i_ >= s_.size() || s_[i_] != ',') fail("Expecting ',' delimiter", i_);
            ++i_;
        }
    }

    Value object(int depth) {
        if (depth > kMaxDepth) fail("Nesting too deep", i_);
        ++i_;
        Value d = make_dict();
        skip_ws();
        if (i_ < s_.size() && s_[i_] == '}') {
            ++i_;
            return d;
        }
        for (;;) {
            skip_ws();
            if (i_ >= s_.size() || s_[i_] != '"')
                fail("Expecting property name enclosed in double quotes", i_);
            Value key = make_str(string());
            skip_ws();
            if (i_ >= s_.size() || s_[i_] != ':') fail("Expecting ':' delimiter", i_);
            ++i_;
            skip_ws();
            Value v = value(depth);
            set_item(d, key, std::move(v));
            skip_ws();
            if (i_ < s_.size() && s_[i_] == '}') {
                ++i_;
                return d;
            }
            if (i_ >= s_.size() || s_[i_] != ',') fail("Expecting ',' delimiter", i_);
            ++i_;
            skip_ws();
        }
    }

    std::string_view s_;
    size_t i_ = 0;
};

Value json_parse(CallContext&, const CallArgs& a) {
    stdlib::Params p(a, "parse", {"s"}, 1);
    const Value* v = p.get(0);
    if (v->is(ObjType::Str)) return Parser(v->as<StrObj>()->data).parse_document();
    if (v->is(ObjType::Bytes)) {
        const std::string& b = v->as<BytesObj>()->data;
        size_t bad = lib::utf8_validate(b);
        if (bad != std::string::npos)
            throw WeftError(ErrorKind::ValueError,
                            "JSON bytes are not valid UTF-8 (invalid byte at offset " +
                                std::to_string(bad) + ")");
        return Parser(b).parse_document();
    }
    p.bad(0, "str or bytes");
}

// ---------------------------------------------------------------------------
// dump

class Dumper {
  public:
    Dumper(CallContext& cx, std::string indent, bool has_indent, bool sort_keys, bool ensure_ascii)
        : cx_(cx),
          indent_(std::move(indent)),
          has_indent_(has_indent),
          sort_keys_(sort_keys),
          ensure_ascii_(ensure_ascii) {}

    void value(const Value& v, int level) {
        if (level > kMaxDepth)
            throw WeftError(ErrorKind::ValueError, "value too deeply nested for JSON");
        switch (v.tag()) {
            case Tag::None:
                out += "null";
                return;
            case Tag::Bool:
                out += v.as_bool() ? "true" : "false";
                return;
            case Tag::Int:
                out += std::to_string(v.as_int());
                return;
            case Tag::Float:
                number(v.as_float());
                return;
            case Tag::Object:
                break;
        }
        if (v.is(ObjType::Promise) && promise_resolver) {
            // A deferred call's promise inside the value is inspected here: force it.
            value(promise_resolver(v), level);
            return;
        }
        switch (v.as_obj()->type) {
            case ObjType::Str:
                string(v.as<StrObj>()->data);
                return;
            case ObjType::List:
                sequence(v.as<ListObj>()->items, level);
                return;
            case ObjType::Tuple:
                sequence(v.as<TupleObj>()->items, level);
                return;
            case ObjType::Dict:
                dict(v.as<DictObj>(), level);
                return;
            case ObjType::Struct: {
                auto* s = v.as<StructObj>();
                if (s->error) break;
                std::vector<std::pair<std::string, const Value*>> items;
                for (size_t k = 0; k < s->fields.size(); ++k)
                    items.emplace_back(s->type->fields[k].name, &s->fields[k]);
                if (sort_keys_)
                    std::stable_sort(items.begin(), items.end(),
                                     [](auto& x, auto& y) { return x.first < y.first; });
                object(items, level);
                return;
            }
            case ObjType::Opaque:
                // A Lisp keyword (`:name`, vm/lisp_prims.h) is written as its name.
                if (is_keyword(v)) {
                    string(keyword_name(v));
                    return;
                }
                break;
            default:
                break;
        }
        throw WeftError(ErrorKind::TypeError,
                        "Object of type " + type_name(v) + " is not JSON serializable");
    }

    std::string out;

  private:
    void number(double d) {
        if (std::isnan(d))
            out += "NaN";
        else if (std::isinf(d))
            out += d > 0 ? "Infinity" : "-Infinity";
        else
            out += float_repr(d);
    }

    void newline(int level) {
        out += '\n';
        for (int k = 0; k < level; ++k)
            out += indent_;
    }

    void string(std::string_view s) {
        static const char* kHex = "0123456789abcdef";
        auto u = [&](unsigned cp) {
            out += "\\u";
            for (int sh = 12; sh >= 0; sh -= 4)
                out += kHex[(cp >> sh) & 0xF];
        };
        out += '"';
        for (size_t i = 0; i < s.size();) {
            unsigned char c = (unsigned char)s[i];
            switch (c) {
                case '"':
                    out += "\\\"";
                    ++i;
                    continue;
                case '\\':
                    out += "\\\\";
                    ++i;
                    continue;
                case '\n':
                    out += "\\n";
                    ++i;
                    continue;
                case '\r':
                    out += "\\r";
                    ++i;
                    continue;
                case '\t':
                    out += "\\t";
                    ++i;
                    continue;
                case '\b':
                    out += "\\b";
                    ++i;
                    continue;
                case '\f':
                    out += "\\f";
                    ++i;
                    continue;
                default:
                    break;
            }
            if (c < 0x20 || (ensure_ascii_ && c == 0x7F)) {
                u(c);
                ++i;
            } else if (c < 0x80 || !ensure_ascii_) {
                out += char(c);
                ++i;
            } else {
                uint32_t cp = lib::utf8_decode(s, i);
                if (cp >= 0x10000) {
                    cp -= 0x10000;
                    u(0xD800 + (cp >> 10));
                    u(0xDC00 + (cp & 0x3FF));
                } else {
                    u(cp);
                }
            }
        }
        out += '"';
    }

    void sequence(const std::vector<Value>& items, int level) {
        if (items.empty()) {
            out += "[]";
            return;
        }
        out += '[';
        for (size_t k = 0; k < items.size(); ++k) {
            if (k) out += has_indent_ ? "," : ", ";
            if (has_indent_) newline(level + 1);
            value(items[k], level + 1);
        }
        if (has_indent_) newline(level);
        out += ']';
    }

    // A dict key as JSON text: str as is; int, float, bool and None converted as Python does.
    std::string key_text(const Value& k) {
        if (k.is(ObjType::Str)) return k.as<StrObj>()->data;
        if (is_keyword(k)) return keyword_name(k);
        if (k.is_bool()) return k.as_bool() ? "true" : "false";
        if (k.is_none()) return "null";
        if (k.is_int()) return std::to_string(k.as_int());
        if (k.is_float()) {
            double d = k.as_float();
            if (std::isnan(d)) return "NaN";
            if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
            return float_repr(d);
        }
        throw WeftError(ErrorKind::TypeError,
                        "keys must be str, int, float, bool or None, not " + type_name(k));
    }

    void dict(const DictObj* d, int level) {
        std::vector<const HashEntry*> entries;
        for (size_t k = 0; k < d->table.end_index(); ++k)
            if (d->table.entry(k).live) entries.push_back(&d->table.entry(k));
        if (sort_keys_)
            std::stable_sort(
                entries.begin(), entries.end(),
                [](const HashEntry* x, const HashEntry* y) { return value_less(x->key, y->key); });
        std::vector<std::pair<std::string, const Value*>> items;
        items.reserve(entries.size());
        for (auto* e : entries)
            items.emplace_back(key_text(e->key), &e->value);
        object(items, level);
    }

    void object(const std::vector<std::pair<std::string, const Value*>>& items, int level) {
        if (items.empty()) {
            out += "{}";
            return;
        }
        out += '{';
        for (size_t k = 0; k < items.size(); ++k) {
            if (k) out += has_indent_ ? "," : ", ";
            if (has_indent_) newline(level + 1);
            string(items[k].first);
            out += ": ";
            value(*items[k].second, level + 1);
        }
        if (has_indent_) newline(level);
        out += '}';
    }

    CallContext& cx_;
    std::string indent_;
    bool has_indent_;
    bool sort_keys_;
    bool ensure_ascii_;
};

Value json_dump(CallContext& cx, const CallArgs& a) {
    stdlib::Params p(a, "dump", {"v", "indent", "sort_keys", "ensure_ascii"}, 1);
    std::string indent;
    bool has_indent = false;
    if (p.has(1)) {
        has_indent = true;
        const Value* iv = p.get(1);
        if (iv->is(ObjType::Str)) {
            indent = iv->as<StrObj>()->data;
        } else {
            int64_t n = p.integer(1);
            if (n > 0) indent.assign(size_t(std::min<int64_t>(n, 64)), ' ');
        }
    }
    Dumper d(cx, indent, has_indent, p.flag_or(2, false), p.flag_or(3, true));
    d.value(*p.get(0), 0);
    return make_str(std::move(d.out));
}

}  // namespace

namespace stdlib {

Value json_parse_text(std::string_view text) {
    return Parser(text).parse_document();
}

std::string json_dump_text(CallContext& cx, const Value& v) {
    Dumper d(cx, "", false, false, true);
    d.value(v, 0);
    return std::move(d.out);
}

}  // namespace stdlib

void init_json_module(ModuleObj& m) {
    stdlib::define_fn(m, "parse", json_parse);
    stdlib::define_fn(m, "dump", json_dump);
}

}  // namespace weft
