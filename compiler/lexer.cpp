// lexer.cpp — Weft's tokenizer.
//
// A single forward pass over the bytes, tracking line and column (columns count code points,
// so a caret lines up under non-ASCII text). Layout follows Python's tokenizer: a stack of
// indentation widths produces Indent/Dedent at the start of each logical line; blank and
// comment-only lines are invisible; inside brackets newlines are ignored. The source is
// validated as UTF-8 up front so every later step may assume well-formed text. F-strings are
// not split here: their raw body is handed to the parser, which re-lexes each replacement field
// with tokenize_expression() at its true position.
#include "compiler/lexer.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace weft {

namespace {

constexpr size_t kMaxBracketDepth = 200;
constexpr size_t kMaxIndentLevels = 100;

struct KeywordEntry {
    std::string_view word;
    TokenKind kind;
};

constexpr KeywordEntry kKeywords[] = {
    {"and", TokenKind::KwAnd},         {"as", TokenKind::KwAs},
    {"assert", TokenKind::KwAssert},   {"break", TokenKind::KwBreak},
    {"case", TokenKind::KwCase},       {"continue", TokenKind::KwContinue},
    {"def", TokenKind::KwDef},         {"elif", TokenKind::KwElif},
    {"else", TokenKind::KwElse},       {"except", TokenKind::KwExcept},
    {"finally", TokenKind::KwFinally}, {"for", TokenKind::KwFor},
    {"from", TokenKind::KwFrom},       {"if", TokenKind::KwIf},
    {"import", TokenKind::KwImport},   {"in", TokenKind::KwIn},
    {"is", TokenKind::KwIs},           {"lambda", TokenKind::KwLambda},
    {"match", TokenKind::KwMatch},     {"not", TokenKind::KwNot},
    {"or", TokenKind::KwOr},           {"pass", TokenKind::KwPass},
    {"raise", TokenKind::KwRaise},     {"return", TokenKind::KwReturn},
    {"try", TokenKind::KwTry},         {"while", TokenKind::KwWhile},
    {"with", TokenKind::KwWith},       {"actor", TokenKind::KwActor},
    {"agent", TokenKind::KwAgent},     {"concurrent", TokenKind::KwConcurrent},
    {"lazy", TokenKind::KwLazy},       {"race", TokenKind::KwRace},
    {"select", TokenKind::KwSelect},   {"sequential", TokenKind::KwSequential},
    {"spawn", TokenKind::KwSpawn},     {"struct", TokenKind::KwStruct},
    {"None", TokenKind::KwNone},       {"null", TokenKind::KwNone},
    {"True", TokenKind::KwTrue},       {"true", TokenKind::KwTrue},
    {"False", TokenKind::KwFalse},     {"false", TokenKind::KwFalse},
};

bool is_ident_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_ident_char(char c) {
    return is_ident_start(c) || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Length of the well-formed UTF-8 sequence at s[i], or 0 if it is malformed (overlong forms,
// surrogates and code points above U+10FFFF are rejected, as RFC 3629 requires).
size_t utf8_sequence_length(std::string_view s, size_t i, uint32_t* cp_out) {
    auto b0 = static_cast<uint8_t>(s[i]);
    if (b0 < 0x80) {
        if (cp_out) *cp_out = b0;
        return 1;
    }
    size_t len;
    uint32_t cp;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
        cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        cp = b0 & 0x0F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        cp = b0 & 0x07;
    } else {
        return 0;
    }
    if (i + len > s.size()) return 0;
    for (size_t k = 1; k < len; ++k) {
        auto b = static_cast<uint8_t>(s[i + k]);
        if ((b & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    if (cp_out) *cp_out = cp;
    return len;
}

std::string hex4(uint32_t cp) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "U+%04X", cp);
    return buf;
}

class Lexer {
  public:
    Lexer(std::string_view src, const std::string& path, ast::Pos start, bool expression_mode)
        : src_(src),
          path_(path),
          line_(start.line),
          col_(start.col),
          expression_mode_(expression_mode) {}

    std::vector<Token> run();

  private:
    [[noreturn]] void fail(ast::Pos p, std::string msg, bool incomplete = false) {
        throw CompileError(Diagnostic{path_, p, std::move(msg)}, incomplete && !expression_mode_);
    }
    ast::Pos here() const { return ast::Pos{line_, col_}; }
    char peek(size_t k = 0) const { return i_ + k < src_.size() ? src_[i_ + k] : '\0'; }
    bool at_end(size_t k = 0) const { return i_ + k >= src_.size(); }
    void advance() {
        char c = src_[i_++];
        if (c == '\n') {
            ++line_;
            col_ = 1;
        } else if ((static_cast<uint8_t>(c) & 0xC0) != 0x80) {
            ++col_;
        }
    }
    void advance(size_t n) {
        for (size_t k = 0; k < n; ++k)
            advance();
    }
    Token& emit(TokenKind k, ast::Pos p) {
        tokens_.emplace_back();
        tokens_.back().kind = k;
        tokens_.back().pos = p;
        return tokens_.back();
    }

    void validate_utf8();
    void handle_line_start();
    void lex_name_or_prefixed_string();
    void lex_number();
    void lex_string(ast::Pos start, bool raw, bool bytes, bool fstring);
    void lex_operator();
    [[noreturn]] void invalid_character();

    std::string_view src_;
    const std::string& path_;
    size_t i_ = 0;
    uint32_t line_, col_;
    bool expression_mode_;
    std::vector<Token> tokens_;
    std::vector<uint32_t> indents_{0};
    struct OpenBracket {
        char ch;
        ast::Pos pos;
    };
    std::vector<OpenBracket> brackets_;
};

void Lexer::validate_utf8() {
    uint32_t line = line_, col = col_;
    for (size_t i = 0; i < src_.size();) {
        size_t n = utf8_sequence_length(src_, i, nullptr);
        if (n == 0) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "invalid UTF-8 byte 0x%02x in source",
                          static_cast<unsigned>(static_cast<uint8_t>(src_[i])));
            fail(ast::Pos{line, col}, buf);
        }
        if (src_[i] == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
        i += n;
    }
}

// At the start of a logical line outside brackets: measure the indentation, skip blank and
// comment-only lines, and emit Indent/Dedent tokens.
void Lexer::handle_line_start() {
    for (;;) {
        uint32_t width = 0;
        bool saw_tab = false;
        ast::Pos tab_pos;
        while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\f')) {
            if (peek() == '\t' && !saw_tab) {
                saw_tab = true;
                tab_pos = here();
            }
            if (peek() == ' ') ++width;
            advance();
        }
        if (at_end()) return;
        char c = peek();
        if (c == '\n') {
            advance();
            continue;
        }
        if (c == '#') {
            while (!at_end() && peek() != '\n')
                advance();
            continue;
        }
        if (c == '\\' && peek(1) == '\n' && tokens_.empty()) {
            // A continuation line before any token: treat like whitespace.
            advance(2);
            continue;
        }
        if (saw_tab) fail(tab_pos, "tab in indentation; use spaces");
        if (width > indents_.back()) {
            if (indents_.size() > kMaxIndentLevels) fail(here(), "too many levels of indentation");
            indents_.push_back(width);
            emit(TokenKind::Indent, here());
        } else if (width < indents_.back()) {
            while (width < indents_.back()) {
                indents_.pop_back();
                emit(TokenKind::Dedent, here());
            }
            if (width != indents_.back()) {
                fail(here(), "unindent does not match any outer indentation level");
            }
        }
        return;
    }
}

void Lexer::invalid_character() {
    uint32_t cp = 0;
    size_t n = utf8_sequence_length(src_, i_, &cp);
    if (n == 0) cp = static_cast<uint8_t>(src_[i_]);
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
        fail(here(), "invalid non-printable character " + hex4(cp));
    }
    std::string ch(src_.substr(i_, n == 0 ? 1 : n));
    fail(here(), "invalid character '" + ch + "' (" + hex4(cp) + ")");
}

void Lexer::lex_name_or_prefixed_string() {
    ast::Pos start = here();
    size_t b = i_;
    while (!at_end() && is_ident_char(peek()))
        advance();
    std::string_view word = src_.substr(b, i_ - b);
    char q = peek();
    if ((q == '"' || q == '\'') && word.size() <= 2) {
        bool raw = false, bytes = false, fstr = false, ok = true;
        for (char c : word) {
            switch (c) {
                case 'r':
                case 'R':
                    ok = ok && !raw;
                    raw = true;
                    break;
                case 'b':
                case 'B':
                    ok = ok && !bytes;
                    bytes = true;
                    break;
                case 'f':
                case 'F':
                    ok = ok && !fstr;
                    fstr = true;
                    break;
                case 'u':
                case 'U':
                    ok = ok && word.size() == 1;
                    break;
                default:
                    ok = false;
            }
        }
        if (ok && !(bytes && fstr)) {
            lex_string(start, raw, bytes, fstr);
            return;
        }
    }
    for (const auto& kw : kKeywords) {
        if (kw.word == word) {
            emit(kw.kind, start);
            return;
        }
    }
    emit(TokenKind::Name, start).text = std::string(word);
}

void Lexer::lex_number() {
    ast::Pos start = here();
    auto bad = [&](const char* what) { fail(start, std::string("invalid ") + what + " literal"); };
    // Collects digits accepted by `ok`, with single underscores between digits.
    auto collect = [&](auto ok, std::string& digits, const char* what) {
        bool last_underscore = false;
        while (!at_end()) {
            char c = peek();
            if (c == '_') {
                if (last_underscore || digits.empty()) bad(what);
                last_underscore = true;
                advance();
                continue;
            }
            if (!ok(c)) break;
            digits += c;
            last_underscore = false;
            advance();
        }
        if (last_underscore) bad(what);
    };

    if (peek() == '0' && (peek(1) == 'x' || peek(1) == 'X' || peek(1) == 'b' || peek(1) == 'B' ||
                          peek(1) == 'o' || peek(1) == 'O')) {
        char kind = static_cast<char>(peek(1) | 0x20);
        advance(2);
        int base = kind == 'x' ? 16 : kind == 'b' ? 2 : 8;
        const char* what = kind == 'x' ? "hexadecimal" : kind == 'b' ? "binary" : "octal";
        if (peek() == '_') advance();  // 0x_ff is allowed, as in Python
        std::string digits;
        collect(
            [&](char c) {
                int v = hex_value(c);
                return v >= 0 && v < base;
            },
            digits, what);
        if (digits.empty() || is_ident_char(peek())) bad(what);
        uint64_t v = 0;
        for (char c : digits) {
            uint64_t d = static_cast<uint64_t>(hex_value(c));
            if (v > (UINT64_MAX - d) / static_cast<uint64_t>(base)) {
                fail(start, "integer literal too large");
            }
            v = v * static_cast<uint64_t>(base) + d;
        }
        Token& t = emit(TokenKind::Int, start);
        if (v > static_cast<uint64_t>(INT64_MAX)) {
            if (v != static_cast<uint64_t>(INT64_MAX) + 1) fail(start, "integer literal too large");
            t.int_is_min_magnitude = true;
            t.int_value = INT64_MIN;
        } else {
            t.int_value = static_cast<int64_t>(v);
        }
        return;
    }

    std::string text;  // digits without underscores, for strtod/strtoull
    bool is_float = false;
    collect(is_digit, text, "decimal");
    if (peek() == '.' && !(peek(1) == '.' && peek(2) == '.')) {
        is_float = true;
        advance();
        text += '.';
        if (is_digit(peek())) {
            std::string frac;
            collect(is_digit, frac, "decimal");
            text += frac;
        } else if (peek() == '_') {
            bad("decimal");
        }
    }
    if ((peek() == 'e' || peek() == 'E') &&
        (is_digit(peek(1)) || ((peek(1) == '+' || peek(1) == '-') && is_digit(peek(2))))) {
        is_float = true;
        text += 'e';
        advance();
        if (peek() == '+' || peek() == '-') {
            text += peek();
            advance();
        }
        std::string exp;
        collect(is_digit, exp, "decimal");
        text += exp;
    }
    // Duration suffix: ms, s, m, h.
    double unit = 0;
    if (peek() == 'm' && peek(1) == 's' && !is_ident_char(peek(2))) {
        unit = 0.001;
        advance(2);
    } else if ((peek() == 's' || peek() == 'm' || peek() == 'h') && !is_ident_char(peek(1))) {
        unit = peek() == 's' ? 1.0 : peek() == 'm' ? 60.0 : 3600.0;
        advance();
    }
    if (is_ident_char(peek())) bad("decimal");
    if (unit != 0) {
        Token& t = emit(TokenKind::Duration, start);
        t.float_value = std::strtod(text.c_str(), nullptr) * unit;
        return;
    }
    if (is_float) {
        Token& t = emit(TokenKind::Float, start);
        t.float_value = std::strtod(text.c_str(), nullptr);
        return;
    }
    if (text.size() > 1 && text[0] == '0' && text.find_first_not_of('0') != std::string::npos) {
        fail(start,
             "leading zeros in decimal integer literals are not permitted; use an 0o prefix for "
             "octal integers");
    }
    uint64_t v = 0;
    for (char c : text) {
        uint64_t d = static_cast<uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) fail(start, "integer literal too large");
        v = v * 10 + d;
    }
    Token& t = emit(TokenKind::Int, start);
    if (v > static_cast<uint64_t>(INT64_MAX)) {
        if (v != static_cast<uint64_t>(INT64_MAX) + 1) fail(start, "integer literal too large");
        t.int_is_min_magnitude = true;
        t.int_value = INT64_MIN;
    } else {
        t.int_value = static_cast<int64_t>(v);
    }
}

void Lexer::lex_string(ast::Pos start, bool raw, bool bytes, bool fstring) {
    char q = peek();
    bool triple = peek(1) == q && peek(2) == q;
    advance(triple ? 3 : 1);
    ast::Pos body_pos = here();
    size_t body_begin = i_;
    size_t body_end;
    for (;;) {
        if (at_end()) {
            if (triple) {
                fail(start,
                     "unterminated triple-quoted string literal (started at line " +
                         std::to_string(start.line) + ")",
                     true);
            }
            fail(start, "unterminated string literal");
        }
        char c = peek();
        if (c == '\\') {
            advance();
            if (at_end()) continue;  // reported as unterminated above
            advance();
            continue;
        }
        if (c == '\n' && !triple) fail(start, "unterminated string literal");
        if (c == q && (!triple || (peek(1) == q && peek(2) == q))) {
            body_end = i_;
            advance(triple ? 3 : 1);
            break;
        }
        advance();
    }
    std::string_view body = src_.substr(body_begin, body_end - body_begin);
    if (fstring) {
        Token& t = emit(TokenKind::FString, start);
        t.text = std::string(body);
        t.raw = raw;
        t.body_pos = body_pos;
        return;
    }
    std::string value;
    if (bytes) {
        for (char c : body) {
            if (static_cast<uint8_t>(c) >= 0x80) {
                fail(start, "bytes can only contain ASCII literal characters");
            }
        }
    }
    if (raw) {
        value = std::string(body);
    } else {
        std::string err;
        if (!decode_escapes(body, bytes, value, err)) fail(start, err);
    }
    Token& t = emit(bytes ? TokenKind::Bytes : TokenKind::String, start);
    t.text = std::move(value);
}

void Lexer::lex_operator() {
    ast::Pos start = here();
    char c = peek(), c1 = peek(1), c2 = peek(2);
    auto op = [&](TokenKind k, size_t n) {
        advance(n);
        emit(k, start);
    };
    switch (c) {
        case '(':
        case '[':
        case '{': {
            if (brackets_.size() >= kMaxBracketDepth) fail(start, "too many nested parentheses");
            brackets_.push_back({c, start});
            op(c == '('   ? TokenKind::LParen
               : c == '[' ? TokenKind::LBracket
                          : TokenKind::LBrace,
               1);
            return;
        }
        case ')':
        case ']':
        case '}': {
            if (brackets_.empty()) fail(start, std::string("unmatched '") + c + "'");
            char open = brackets_.back().ch;
            char want = open == '(' ? ')' : open == '[' ? ']' : '}';
            if (c != want) {
                fail(start, std::string("closing parenthesis '") + c +
                                "' does not match opening parenthesis '" + open + "'" +
                                (brackets_.back().pos.line != start.line
                                     ? " on line " + std::to_string(brackets_.back().pos.line)
                                     : ""));
            }
            brackets_.pop_back();
            op(c == ')'   ? TokenKind::RParen
               : c == ']' ? TokenKind::RBracket
                          : TokenKind::RBrace,
               1);
            return;
        }
        case ':':
            if (c1 == '=') fail(start, "assignment expressions (':=') are not supported");
            op(TokenKind::Colon, 1);
            return;
        case ',':
            op(TokenKind::Comma, 1);
            return;
        case ';':
            op(TokenKind::Semicolon, 1);
            return;
        case '.':
            if (c1 == '.' && c2 == '.') return op(TokenKind::Ellipsis, 3);
            return op(TokenKind::Dot, 1);
        case '~':
            op(TokenKind::Tilde, 1);
            return;
        case '+':
            return c1 == '=' ? op(TokenKind::PlusEqual, 2) : op(TokenKind::Plus, 1);
        case '-':
            if (c1 == '>') return op(TokenKind::Arrow, 2);
            return c1 == '=' ? op(TokenKind::MinusEqual, 2) : op(TokenKind::Minus, 1);
        case '*':
            if (c1 == '*') {
                return c2 == '=' ? op(TokenKind::DoubleStarEqual, 3) : op(TokenKind::DoubleStar, 2);
            }
            return c1 == '=' ? op(TokenKind::StarEqual, 2) : op(TokenKind::Star, 1);
        case '/':
            if (c1 == '/') {
                return c2 == '=' ? op(TokenKind::DoubleSlashEqual, 3)
                                 : op(TokenKind::DoubleSlash, 2);
            }
            return c1 == '=' ? op(TokenKind::SlashEqual, 2) : op(TokenKind::Slash, 1);
        case '%':
            return c1 == '=' ? op(TokenKind::PercentEqual, 2) : op(TokenKind::Percent, 1);
        case '@':
            return c1 == '=' ? op(TokenKind::AtEqual, 2) : op(TokenKind::At, 1);
        case '&':
            return c1 == '=' ? op(TokenKind::AmpEqual, 2) : op(TokenKind::Amp, 1);
        case '|':
            return c1 == '=' ? op(TokenKind::PipeEqual, 2) : op(TokenKind::Pipe, 1);
        case '^':
            return c1 == '=' ? op(TokenKind::CaretEqual, 2) : op(TokenKind::Caret, 1);
        case '<':
            if (c1 == '<') {
                return c2 == '=' ? op(TokenKind::LShiftEqual, 3) : op(TokenKind::LShift, 2);
            }
            if (c1 == '>') fail(start, "invalid syntax");
            return c1 == '=' ? op(TokenKind::LessEqual, 2) : op(TokenKind::Less, 1);
        case '>':
            if (c1 == '>') {
                return c2 == '=' ? op(TokenKind::RShiftEqual, 3) : op(TokenKind::RShift, 2);
            }
            return c1 == '=' ? op(TokenKind::GreaterEqual, 2) : op(TokenKind::Greater, 1);
        case '=':
            return c1 == '=' ? op(TokenKind::EqEqual, 2) : op(TokenKind::Assign, 1);
        case '!':
            if (c1 == '=') return op(TokenKind::NotEqual, 2);
            fail(start, "invalid syntax");
        default:
            break;
    }
    // U+2026 HORIZONTAL ELLIPSIS, used as a placeholder in prose and in the spec's examples.
    if (src_.substr(i_, 3) == "\xE2\x80\xA6") {
        advance(3);
        emit(TokenKind::Ellipsis, start);
        return;
    }
    invalid_character();
}

std::vector<Token> Lexer::run() {
    validate_utf8();
    if (src_.substr(0, 3) == "\xEF\xBB\xBF") i_ = 3;
    tokens_.reserve(src_.size() / 6 + 16);
    bool at_line_start = !expression_mode_;
    size_t ended = 0;  // tokens before this index have their `end`
    for (;;) {
        for (; ended < tokens_.size(); ++ended)
            if (tokens_[ended].end.line == 0) tokens_[ended].end = here();
        if (at_line_start) {
            handle_line_start();
            at_line_start = false;
        }
        if (at_end()) break;
        char c = peek();
        if (c == ' ' || c == '\t' || c == '\f') {
            advance();
            continue;
        }
        if (c == '#') {
            while (!at_end() && peek() != '\n')
                advance();
            continue;
        }
        if (c == '\n') {
            ast::Pos p = here();
            advance();
            if (brackets_.empty() && !expression_mode_) {
                if (!tokens_.empty() && tokens_.back().kind != TokenKind::Newline) {
                    emit(TokenKind::Newline, p);
                }
                at_line_start = true;
            }
            continue;
        }
        if (c == '\\') {
            ast::Pos p = here();
            if (peek(1) == '\n') {
                advance(2);
                if (at_end()) {
                    fail(p, "unexpected end of file after line continuation character", true);
                }
                continue;
            }
            if (at_end(1))
                fail(p, "unexpected end of file after line continuation character", true);
            fail(p, "unexpected character after line continuation character");
        }
        if (is_ident_start(c)) {
            lex_name_or_prefixed_string();
            continue;
        }
        if (is_digit(c) || (c == '.' && is_digit(peek(1)))) {
            lex_number();
            continue;
        }
        if (c == '"' || c == '\'') {
            lex_string(here(), false, false, false);
            continue;
        }
        lex_operator();
    }
    if (!brackets_.empty()) {
        const auto& b = brackets_.back();
        fail(b.pos, std::string("'") + b.ch + "' was never closed", true);
    }
    ast::Pos end = here();
    if (!expression_mode_) {
        if (!tokens_.empty() && tokens_.back().kind != TokenKind::Newline) {
            emit(TokenKind::Newline, end);
        }
        while (indents_.size() > 1) {
            indents_.pop_back();
            emit(TokenKind::Dedent, end);
        }
    }
    emit(TokenKind::EndOfFile, end);
    return std::move(tokens_);
}

// Replaces CR LF and lone CR by LF so the rest of the lexer sees one kind of line break.
std::string normalize_newlines(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r') {
            out += '\n';
            if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
        } else {
            out += s[i];
        }
    }
    return out;
}

}  // namespace

bool decode_escapes(std::string_view body, bool is_bytes, std::string& out, std::string& error) {
    out.reserve(out.size() + body.size());
    for (size_t i = 0; i < body.size(); ++i) {
        char c = body[i];
        if (c != '\\' || i + 1 >= body.size()) {
            out += c;
            continue;
        }
        char e = body[++i];
        switch (e) {
            case '\n':
                break;
            case '\\':
                out += '\\';
                break;
            case '\'':
                out += '\'';
                break;
            case '"':
                out += '"';
                break;
            case 'n':
                out += '\n';
                break;
            case 't':
                out += '\t';
                break;
            case 'r':
                out += '\r';
                break;
            case 'a':
                out += '\a';
                break;
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'v':
                out += '\v';
                break;
            case '0':
            case '1':
            case '2':
            case '3':
            case '4':
            case '5':
            case '6':
            case '7': {
                uint32_t v = static_cast<uint32_t>(e - '0');
                for (int k = 0;
                     k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7';
                     ++k) {
                    v = v * 8 + static_cast<uint32_t>(body[++i] - '0');
                }
                if (is_bytes) {
                    out += static_cast<char>(v & 0xFF);
                } else {
                    append_utf8(out, v);
                }
                break;
            }
            case 'x':
            case 'u':
            case 'U': {
                if (is_bytes && e != 'x') {
                    out += '\\';
                    out += e;
                    break;
                }
                int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                uint32_t v = 0;
                for (int k = 0; k < n; ++k) {
                    int h = i + 1 < body.size() ? hex_value(body[i + 1]) : -1;
                    if (h < 0) {
                        error = std::string("truncated \\") + e +
                                (e == 'x'   ? "XX"
                                 : e == 'u' ? "XXXX"
                                            : "XXXXXXXX") +
                                " escape";
                        return false;
                    }
                    v = v * 16 + static_cast<uint32_t>(h);
                    ++i;
                }
                if (e == 'x' && is_bytes) {
                    out += static_cast<char>(v);
                } else {
                    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
                        error = std::string("illegal Unicode character in \\") + e + " escape";
                        return false;
                    }
                    append_utf8(out, v);
                }
                break;
            }
            default:
                out += '\\';
                out += e;
        }
    }
    return true;
}

std::vector<Token> tokenize(std::string_view source, const std::string& path) {
    if (source.find('\r') != std::string_view::npos) {
        std::string normalized = normalize_newlines(source);
        return Lexer(normalized, path, ast::Pos{1, 1}, false).run();
    }
    return Lexer(source, path, ast::Pos{1, 1}, false).run();
}

std::vector<Token> tokenize_expression(std::string_view text, const std::string& path,
                                       ast::Pos start) {
    return Lexer(text, path, start, true).run();
}

std::string token_kind_spelling(TokenKind k) {
    switch (k) {
        case TokenKind::EndOfFile:
            return "end of file";
        case TokenKind::Newline:
            return "newline";
        case TokenKind::Indent:
            return "indent";
        case TokenKind::Dedent:
            return "dedent";
        case TokenKind::Name:
            return "name";
        case TokenKind::Int:
            return "integer";
        case TokenKind::Float:
            return "float";
        case TokenKind::Duration:
            return "duration";
        case TokenKind::String:
            return "string";
        case TokenKind::Bytes:
            return "bytes";
        case TokenKind::FString:
            return "f-string";
        case TokenKind::Ellipsis:
            return "'...'";
        case TokenKind::LParen:
            return "'('";
        case TokenKind::RParen:
            return "')'";
        case TokenKind::LBracket:
            return "'['";
        case TokenKind::RBracket:
            return "']'";
        case TokenKind::LBrace:
            return "'{'";
        case TokenKind::RBrace:
            return "'}'";
        case TokenKind::Colon:
            return "':'";
        case TokenKind::Comma:
            return "','";
        case TokenKind::Semicolon:
            return "';'";
        case TokenKind::Dot:
            return "'.'";
        case TokenKind::Arrow:
            return "'->'";
        case TokenKind::At:
            return "'@'";
        case TokenKind::Assign:
            return "'='";
        case TokenKind::Plus:
            return "'+'";
        case TokenKind::Minus:
            return "'-'";
        case TokenKind::Star:
            return "'*'";
        case TokenKind::Slash:
            return "'/'";
        case TokenKind::DoubleSlash:
            return "'//'";
        case TokenKind::Percent:
            return "'%'";
        case TokenKind::DoubleStar:
            return "'**'";
        case TokenKind::Amp:
            return "'&'";
        case TokenKind::Pipe:
            return "'|'";
        case TokenKind::Caret:
            return "'^'";
        case TokenKind::Tilde:
            return "'~'";
        case TokenKind::LShift:
            return "'<<'";
        case TokenKind::RShift:
            return "'>>'";
        case TokenKind::Less:
            return "'<'";
        case TokenKind::Greater:
            return "'>'";
        case TokenKind::LessEqual:
            return "'<='";
        case TokenKind::GreaterEqual:
            return "'>='";
        case TokenKind::EqEqual:
            return "'=='";
        case TokenKind::NotEqual:
            return "'!='";
        case TokenKind::PlusEqual:
            return "'+='";
        case TokenKind::MinusEqual:
            return "'-='";
        case TokenKind::StarEqual:
            return "'*='";
        case TokenKind::SlashEqual:
            return "'/='";
        case TokenKind::DoubleSlashEqual:
            return "'//='";
        case TokenKind::PercentEqual:
            return "'%='";
        case TokenKind::DoubleStarEqual:
            return "'**='";
        case TokenKind::AtEqual:
            return "'@='";
        case TokenKind::AmpEqual:
            return "'&='";
        case TokenKind::PipeEqual:
            return "'|='";
        case TokenKind::CaretEqual:
            return "'^='";
        case TokenKind::LShiftEqual:
            return "'<<='";
        case TokenKind::RShiftEqual:
            return "'>>='";
        default:
            break;
    }
    for (const auto& kw : kKeywords) {
        if (kw.kind == k) {
            std::string out(1, '\'');
            out.append(kw.word);
            out.push_back('\'');
            return out;
        }
    }
    return "token";
}

bool is_concurrency_keyword(TokenKind k) {
    switch (k) {
        case TokenKind::KwActor:
        case TokenKind::KwAgent:
        case TokenKind::KwConcurrent:
        case TokenKind::KwLazy:
        case TokenKind::KwRace:
        case TokenKind::KwSelect:
        case TokenKind::KwSequential:
        case TokenKind::KwSpawn:
        case TokenKind::KwStruct:
            return true;
        default:
            return false;
    }
}

}  // namespace weft
