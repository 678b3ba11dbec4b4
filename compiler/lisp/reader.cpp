// reader.cpp — the datum reader of the Lisp surface (see reader.h for the contract).
//
// A hand-written recursive reader over the UTF-8 text: columns count code points, as the Weft
// lexer's do, so carets line up under the same characters in both surfaces.
#include "compiler/lisp/reader.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "compiler/diagnostic.h"

namespace weft::lisp {

namespace {

// Brackets nest at most this deep (as in the Weft lexer): lowering and code generation recurse
// over the tree, and an imported module is compiled on a task's fiber stack.
constexpr int kMaxDepth = 200;

class Reader {
public:
    Reader(std::string_view src, const std::string& path) : src_(src), path_(path) {
        // A first line `#!...` is ignored (scripts run with a shebang).
        if (src_.substr(0, 2) == "#!")
            while (i_ < src_.size() && src_[i_] != '\n') advance();
    }

    std::vector<Datum> all() {
        std::vector<Datum> out;
        for (;;) {
            skip_space();
            if (i_ >= src_.size()) break;
            char c = src_[i_];
            if (c == ')' || c == ']' || c == '}') fail(here(), std::string("unexpected '") + c + "'");
            out.push_back(datum(0));
        }
        return out;
    }

private:
    std::string_view src_;
    const std::string& path_;
    size_t i_ = 0;
    uint32_t line_ = 1, col_ = 1;
    ast::Pos outer_;    // the opening bracket of the top-level form being read
    char outer_c_ = '(';

    ast::Pos here() const { return {line_, col_}; }

    [[noreturn]] void fail(ast::Pos p, std::string msg, bool incomplete = false) {
        throw CompileError(Diagnostic{path_, p, std::move(msg)}, incomplete);
    }

    void advance() {
        char c = src_[i_++];
        if (c == '\n') {
            ++line_;
            col_ = 1;
        } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
            // The column counts code points: continuation bytes do not move it; the lead
            // byte moved it already.
            ++col_;
        }
    }

    void skip_space() {
        while (i_ < src_.size()) {
            char c = src_[i_];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '\f' || c == '\v') {
                advance();
            } else if (c == ';') {
                while (i_ < src_.size() && src_[i_] != '\n') advance();
            } else {
                break;
            }
        }
    }

    static bool delimiter(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '\f' || c == '\v' || c == '(' ||
               c == ')' || c == '[' || c == ']' || c == '{' || c == '}' || c == '"' || c == ';' || c == '\'';
    }

    static char closer_of(char open) { return open == '(' ? ')' : open == '[' ? ']' : '}'; }

    Datum datum(int depth) {
        skip_space();
        ast::Pos start = here();
        if (i_ >= src_.size()) fail(start, "unexpected end of input", true);
        char c = src_[i_];
        Datum d;
        d.pos = start;
        if (c == '(' || c == '[' || c == '{') {
            if (depth >= kMaxDepth) fail(start, "too deeply nested");
            if (depth == 0) {
                outer_ = start;
                outer_c_ = c;
            }
            advance();
            char close = closer_of(c);
            for (;;) {
                skip_space();
                // Reported where the top-level form opens: that is where the reader began to
                // read what never ended (an inner bracket may be the one missing its closer).
                if (i_ >= src_.size()) fail(outer_, std::string("'") + outer_c_ + "' was never closed", true);
                char n = src_[i_];
                if (n == ')' || n == ']' || n == '}') {
                    if (n != close)
                        fail(here(), std::string("closing '") + n + "' does not match opening '" + c + "' at " +
                                         std::to_string(start.line) + ":" + std::to_string(start.col));
                    advance();
                    break;
                }
                d.items.push_back(datum(depth + 1));
            }
            d.kind = c == '(' ? DatumKind::List : c == '[' ? DatumKind::Vector : DatumKind::Map;
            if (d.kind == DatumKind::Map && d.items.size() % 2 != 0)
                fail(start, "a map needs an even number of forms (key value pairs), got " +
                                std::to_string(d.items.size()));
            d.end = here();
            return d;
        }
        if (c == ')' || c == ']' || c == '}') fail(start, std::string("unexpected '") + c + "'");
        if (c == '\'') {
            advance();
            skip_space();
            if (i_ >= src_.size()) fail(start, "nothing to quote after \"'\"", true);
            if (src_[i_] == ')' || src_[i_] == ']' || src_[i_] == '}') fail(start, "nothing to quote after \"'\"");
            if (depth >= kMaxDepth) fail(start, "too deeply nested");
            Datum q;
            q.kind = DatumKind::Symbol;
            q.s = "quote";
            q.pos = start;
            q.end = here();
            d.kind = DatumKind::List;
            d.items.push_back(std::move(q));
            d.items.push_back(datum(depth + 1));
            d.end = d.items.back().end;
            return d;
        }
        if (c == '"') return string(start);
        // A token: up to the next delimiter.
        size_t b = i_;
        while (i_ < src_.size() && !delimiter(src_[i_])) advance();
        std::string tok(src_.substr(b, i_ - b));
        d.end = here();
        token(tok, d);
        return d;
    }

    Datum string(ast::Pos start) {
        Datum d;
        d.kind = DatumKind::Str;
        d.pos = start;
        advance();  // the opening quote
        std::string out;
        for (;;) {
            if (i_ >= src_.size()) fail(start, "string was never closed", true);
            char c = src_[i_];
            if (c == '"') {
                advance();
                break;
            }
            if (c != '\\') {
                out += c;
                advance();
                continue;
            }
            ast::Pos esc = here();
            advance();
            if (i_ >= src_.size()) fail(start, "string was never closed", true);
            char e = src_[i_];
            advance();
            switch (e) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case '0': out += '\0'; break;
                case '\\': out += '\\'; break;
                case '"': out += '"'; break;
                case 'u': out += unicode_escape(esc); break;
                default: {
                    std::string shown(1, e);
                    if (static_cast<unsigned char>(e) >= 0x80 || e == '\n') shown = e == '\n' ? "\\n" : "?";
                    fail(esc, "invalid escape '\\" + shown + "' in string (use \\\\ for a backslash)");
                }
            }
        }
        d.s = std::move(out);
        d.end = here();
        return d;
    }

    // After `\u`: XXXX (four hex digits) or {X...} (1 to 6). Returns the UTF-8 encoding.
    std::string unicode_escape(ast::Pos esc) {
        uint32_t cp = 0;
        auto hex = [](char h) -> int {
            if (h >= '0' && h <= '9') return h - '0';
            if (h >= 'a' && h <= 'f') return h - 'a' + 10;
            if (h >= 'A' && h <= 'F') return h - 'A' + 10;
            return -1;
        };
        if (i_ < src_.size() && src_[i_] == '{') {
            advance();
            int n = 0;
            while (i_ < src_.size() && src_[i_] != '}') {
                int v = hex(src_[i_]);
                if (v < 0 || n >= 6) fail(esc, "invalid \\u{...} escape in string (1 to 6 hex digits)");
                cp = cp * 16 + uint32_t(v);
                ++n;
                advance();
            }
            if (i_ >= src_.size() || n == 0) fail(esc, "invalid \\u{...} escape in string (1 to 6 hex digits)");
            advance();
        } else {
            for (int k = 0; k < 4; ++k) {
                int v = i_ < src_.size() ? hex(src_[i_]) : -1;
                if (v < 0) fail(esc, "invalid \\uXXXX escape in string (4 hex digits)");
                cp = cp * 16 + uint32_t(v);
                advance();
            }
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) fail(esc, "invalid code point in \\u escape");
        std::string out;
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xC0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += char(0xE0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        } else {
            out += char(0xF0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3F));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        }
        return out;
    }

    void token(const std::string& tok, Datum& d) {
        char c0 = tok[0];
        bool numeric = (c0 >= '0' && c0 <= '9') ||
                       ((c0 == '+' || c0 == '-' || c0 == '.') && tok.size() > 1 && tok[1] >= '0' && tok[1] <= '9');
        if (numeric) {
            number(tok, d);
            return;
        }
        if (tok == "nil") {
            d.kind = DatumKind::Nil;
        } else if (tok == "#t" || tok == "true") {
            d.kind = DatumKind::Bool;
            d.b = true;
        } else if (tok == "#f" || tok == "false") {
            d.kind = DatumKind::Bool;
            d.b = false;
        } else if (c0 == ':') {
            if (tok.size() == 1) fail(d.pos, "a keyword needs a name after ':'");
            if (tok.find(':', 1) != std::string::npos) fail(d.pos, "invalid keyword '" + tok + "'");
            d.kind = DatumKind::Keyword;
            d.s = tok.substr(1);
        } else if (c0 == '#') {
            fail(d.pos, "invalid token '" + tok + "' (only #t and #f start with '#')");
        } else {
            d.kind = DatumKind::Symbol;
            d.s = tok;
        }
    }

    void number(const std::string& tok, Datum& d) {
        const char* s = tok.c_str();
        size_t n = tok.size();
        bool neg = s[0] == '-';
        size_t b = (s[0] == '+' || s[0] == '-') ? 1 : 0;
        // Hexadecimal integers: 0xff, -0x10.
        if (n > b + 2 && s[b] == '0' && (s[b + 1] == 'x' || s[b + 1] == 'X')) {
            uint64_t v = 0;
            for (size_t k = b + 2; k < n; ++k) {
                char h = s[k];
                int dig = (h >= '0' && h <= '9')   ? h - '0'
                          : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                          : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                                   : -1;
                if (dig < 0) fail(d.pos, "invalid number '" + tok + "'");
                if (v > (UINT64_MAX - uint64_t(dig)) / 16) fail(d.pos, "integer literal too large: '" + tok + "'");
                v = v * 16 + uint64_t(dig);
            }
            if (v > uint64_t(INT64_MAX) + (neg ? 1 : 0)) fail(d.pos, "integer literal too large: '" + tok + "'");
            d.kind = DatumKind::Int;
            d.i = neg ? int64_t(0 - v) : int64_t(v);
            return;
        }
        bool is_float = false;
        for (size_t k = b; k < n; ++k) {
            char ch = s[k];
            if (ch >= '0' && ch <= '9') continue;
            if (ch == '.' || ch == 'e' || ch == 'E') {
                is_float = true;
                continue;
            }
            if ((ch == '+' || ch == '-') && k > b && (s[k - 1] == 'e' || s[k - 1] == 'E')) continue;
            fail(d.pos, "invalid number '" + tok + "'");
        }
        char* endp = nullptr;
        errno = 0;
        if (!is_float) {
            long long v = strtoll(s, &endp, 10);
            if (errno == ERANGE) fail(d.pos, "integer literal too large: '" + tok + "'");
            if (endp != s + n) fail(d.pos, "invalid number '" + tok + "'");
            d.kind = DatumKind::Int;
            d.i = v;
            return;
        }
        double v = strtod(s, &endp);
        if (endp != s + n || tok.back() == '.' || tok[b] == '.' || tok.back() == 'e' || tok.back() == 'E')
            fail(d.pos, "invalid number '" + tok + "'");
        if (std::isinf(v)) fail(d.pos, "float literal too large: '" + tok + "'");
        d.kind = DatumKind::Float;
        d.f = v;
    }
};

}  // namespace

std::vector<Datum> read_all(std::string_view source, const std::string& path) {
    Reader r(source, path);
    return r.all();
}

const char* kind_name(DatumKind k) {
    switch (k) {
        case DatumKind::Nil: return "nil";
        case DatumKind::Bool: return "boolean";
        case DatumKind::Int: return "integer";
        case DatumKind::Float: return "float";
        case DatumKind::Str: return "string";
        case DatumKind::Keyword: return "keyword";
        case DatumKind::Symbol: return "symbol";
        case DatumKind::List: return "list";
        case DatumKind::Vector: return "vector";
        case DatumKind::Map: return "map";
    }
    return "datum";
}

std::string datum_to_string(const Datum& d) {
    switch (d.kind) {
        case DatumKind::Nil: return "nil";
        case DatumKind::Bool: return d.b ? "#t" : "#f";
        case DatumKind::Int: return std::to_string(d.i);
        case DatumKind::Float: {
            char buf[64];
            snprintf(buf, sizeof buf, "%.17g", d.f);
            return buf;
        }
        case DatumKind::Str: {
            std::string out = "\"";
            for (char c : d.s) {
                if (c == '"' || c == '\\') out += '\\';
                if (c == '\n') {
                    out += "\\n";
                    continue;
                }
                out += c;
            }
            return out + "\"";
        }
        case DatumKind::Keyword: return ":" + d.s;
        case DatumKind::Symbol: return d.s;
        case DatumKind::List:
        case DatumKind::Vector:
        case DatumKind::Map: {
            std::string out = d.kind == DatumKind::List ? "(" : d.kind == DatumKind::Vector ? "[" : "{";
            for (size_t k = 0; k < d.items.size(); ++k) {
                if (k) out += ' ';
                out += datum_to_string(d.items[k]);
            }
            return out + (d.kind == DatumKind::List ? ")" : d.kind == DatumKind::Vector ? "]" : "}");
        }
    }
    return "";
}

}  // namespace weft::lisp
