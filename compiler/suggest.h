// suggest.h — "Did you mean" hints for misspelt names (NameError, AttributeError, unknown
// struct fields), at compile time and at run time.
//
// The algorithm is CPython 3.11's (Python/suggestions.c, _Py_CalculateSuggestions and
// levenshtein_distance), so Weft suggests what Python would for the same names: a Levenshtein
// distance in which inserting, deleting or substituting a character costs 2 and changing only
// its case costs 1; a candidate is taken when at most about a third of the characters involved
// change (distance <= (len(name) + len(candidate) + 3) * 2 / 6), the closest one winning (the
// first of equals). Names longer than 40 characters and lists of 750 candidates or more get no
// suggestion, as in CPython. Header-only: the compiler and the VM both use it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace weft {

namespace suggest_detail {

constexpr size_t kMaxCandidates = 750;
constexpr size_t kMaxStringSize = 40;
constexpr size_t kMoveCost = 2;
constexpr size_t kCaseCost = 1;

inline size_t substitution_cost(char a, char b) {
    if ((a & 31) != (b & 31)) return kMoveCost;
    if (a == b) return 0;
    if (a >= 'A' && a <= 'Z') a = char(a + ('a' - 'A'));
    if (b >= 'A' && b <= 'Z') b = char(b + ('a' - 'A'));
    return a == b ? kCaseCost : kMoveCost;
}

// CPython's levenshtein_distance: the distance, or max_cost + 1 once it must exceed max_cost.
inline size_t distance(std::string_view a, std::string_view b, size_t max_cost) {
    if (a == b) return 0;
    while (!a.empty() && !b.empty() && a.front() == b.front()) {  // common prefix
        a.remove_prefix(1);
        b.remove_prefix(1);
    }
    while (!a.empty() && !b.empty() && a.back() == b.back()) {  // common suffix
        a.remove_suffix(1);
        b.remove_suffix(1);
    }
    if (a.empty() || b.empty()) return (a.size() + b.size()) * kMoveCost;
    if (a.size() > kMaxStringSize || b.size() > kMaxStringSize) return max_cost + 1;
    if (b.size() < a.size()) std::swap(a, b);  // a is the shorter
    if ((b.size() - a.size()) * kMoveCost > max_cost) return max_cost + 1;
    size_t buffer[kMaxStringSize];
    for (size_t i = 0; i < a.size(); ++i) buffer[i] = (i + 1) * kMoveCost;
    size_t result = 0;
    for (size_t bi = 0; bi < b.size(); ++bi) {
        char code = b[bi];
        size_t dist = result = bi * kMoveCost;
        size_t minimum = SIZE_MAX;
        for (size_t ai = 0; ai < a.size(); ++ai) {
            size_t substitute = dist + substitution_cost(code, a[ai]);
            dist = buffer[ai];
            size_t insert_delete = std::min(result, dist) + kMoveCost;
            result = std::min(insert_delete, substitute);
            buffer[ai] = result;
            minimum = std::min(minimum, result);
        }
        if (minimum > max_cost) return max_cost + 1;
    }
    return result;
}

}  // namespace suggest_detail

// The candidate closest to `name` by CPython's rule (see the file comment), or "" when none is
// close enough. `name` itself among the candidates is skipped. Pure; thread-safe.
inline std::string closest_name(std::string_view name, const std::vector<std::string>& candidates) {
    using namespace suggest_detail;
    if (candidates.size() >= kMaxCandidates) return "";
    const std::string* best = nullptr;
    size_t best_distance = SIZE_MAX;
    for (auto& c : candidates) {
        if (c == name) continue;
        size_t max_distance = (name.size() + c.size() + 3) * kMoveCost / 6;
        if (best) max_distance = std::min(max_distance, best_distance - 1);
        size_t d = distance(name, c, max_distance);
        if (d > max_distance) continue;
        if (!best || d < best_distance) {
            best = &c;
            best_distance = d;
        }
    }
    return best ? *best : "";
}

// ". Did you mean: 'x'?" (CPython 3.11's wording) for the closest candidate, or "".
inline std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates) {
    std::string s = closest_name(name, candidates);
    return s.empty() ? "" : ". Did you mean: '" + s + "'?";
}

}  // namespace weft
