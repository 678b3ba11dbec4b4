// diagnostic.cpp — renders a compile error the way a Python programmer expects to read it:
// `path:line:col: message`, the offending source line, and a caret under the column.
#include "compiler/diagnostic.h"

#include <string>

namespace weft {

std::string format_diagnostic(const Diagnostic& d, std::string_view source) {
    std::string out = d.path + ":" + std::to_string(d.pos.line) + ":" + std::to_string(d.pos.col) +
                      ": " + d.message + "\n";
    if (d.pos.line == 0) return out;
    // Find the line (lines are separated by LF, CR LF or CR, as the lexer counts them).
    size_t begin = 0;
    uint32_t line = 1;
    while (line < d.pos.line && begin < source.size()) {
        char c = source[begin++];
        if (c == '\n' || (c == '\r' && (begin >= source.size() || source[begin] != '\n'))) {
            ++line;
        }
    }
    if (line != d.pos.line) return out;
    size_t end = begin;
    while (end < source.size() && source[end] != '\n' && source[end] != '\r')
        ++end;
    std::string_view text = source.substr(begin, end - begin);
    out.append(text);
    out += '\n';
    // The caret line: one blank per code point before the column, tabs kept as tabs.
    uint32_t col = 1;
    for (size_t i = 0; i < text.size() && col < d.pos.col; ++i) {
        auto b = static_cast<unsigned char>(text[i]);
        if ((b & 0xC0) == 0x80) continue;
        out += text[i] == '\t' ? '\t' : ' ';
        ++col;
    }
    for (; col < d.pos.col; ++col)
        out += ' ';
    out += "^\n";
    return out;
}

}  // namespace weft
