// token.h — the tokens the lexer hands to the parser.
//
// The lexer produces the whole token vector up front (Python-style INDENT/DEDENT/NEWLINE
// included), so the parser can look ahead freely; a token is small and the vector for a
// megabyte of source stays in the tens of megabytes at most. Literal values are decoded by the
// lexer, except f-strings: their raw body is kept with its source position so the parser can
// split it into parts and re-lex each `{expression}` with exact positions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "compiler/ast.h"

namespace weft {

enum class TokenKind : uint8_t {
    EndOfFile,
    Newline,
    Indent,
    Dedent,
    Name,
    Int,       // int_value (int_is_min_magnitude: the literal 9223372036854775808)
    Float,     // float_value
    Duration,  // float_value in seconds (250ms -> 0.25)
    String,    // text = decoded UTF-8
    Bytes,     // text = raw bytes
    FString,   // text = raw body between the quotes; body_pos, raw
    Ellipsis,  // ... or … (accepted only as a placeholder statement)

    // keywords
    KwAnd,
    KwAs,
    KwAssert,
    KwBreak,
    KwCase,
    KwContinue,
    KwDef,
    KwElif,
    KwElse,
    KwExcept,
    KwFinally,
    KwFor,
    KwFrom,
    KwIf,
    KwImport,
    KwIn,
    KwIs,
    KwLambda,
    KwMatch,
    KwNot,
    KwOr,
    KwPass,
    KwRaise,
    KwReturn,
    KwTry,
    KwWhile,
    KwWith,
    KwActor,
    KwAgent,
    KwConcurrent,
    KwLazy,
    KwRace,
    KwSelect,
    KwSequential,
    KwSpawn,
    KwStruct,
    KwNone,
    KwTrue,
    KwFalse,  // also null, true, false

    // brackets and punctuation
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Colon,
    Comma,
    Semicolon,
    Dot,
    Arrow,
    At,
    Assign,

    // operators
    Plus,
    Minus,
    Star,
    Slash,
    DoubleSlash,
    Percent,
    DoubleStar,
    Amp,
    Pipe,
    Caret,
    Tilde,
    LShift,
    RShift,
    Less,
    Greater,
    LessEqual,
    GreaterEqual,
    EqEqual,
    NotEqual,

    // augmented assignment
    PlusEqual,
    MinusEqual,
    StarEqual,
    SlashEqual,
    DoubleSlashEqual,
    PercentEqual,
    DoubleStarEqual,
    AtEqual,
    AmpEqual,
    PipeEqual,
    CaretEqual,
    LShiftEqual,
    RShiftEqual,
};

struct Token {
    TokenKind kind = TokenKind::EndOfFile;
    ast::Pos pos;            // first character of the token
    ast::Pos end;            // just past its last character (runtime tracebacks' carets)
    std::string text;        // Name: the identifier; String/Bytes: value; FString: raw body
    int64_t int_value = 0;   // Int
    double float_value = 0;  // Float, Duration
    bool int_is_min_magnitude = false;  // Int 2**63: valid only right after unary minus
    bool raw = false;                   // FString: r-prefixed
    ast::Pos body_pos;                  // FString: position of the first body character
};

// A short human-readable spelling of a token kind for messages ("')'", "'if'", "newline").
std::string token_kind_spelling(TokenKind k);

// True for the keywords reserved for concurrency and types (actor, agent, concurrent, lazy,
// race, select, sequential, spawn, struct).
bool is_concurrency_keyword(TokenKind k);

}  // namespace weft
