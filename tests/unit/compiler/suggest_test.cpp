// suggest_test.cpp — "did you mean" hints (compiler/suggest.h) against CPython 3.11: each case
// lists candidates as CPython's dir() orders them (sorted) and the suggestion that `python3.11`
// printed for an AttributeError on a types.SimpleNamespace holding them.
#include <gtest/gtest.h>

#include "compiler/suggest.h"

namespace weft {
namespace {

struct Case {
    const char* name;
    std::vector<std::string> candidates;
    const char* want;
};

TEST(Suggest, MatchesCPython) {
    const Case cases[] = {
        {"nme", {"age", "greet", "name"}, "name"},
        {"gret", {"age", "greet", "name"}, "greet"},
        {"Name", {"age", "greet", "name"}, "name"},
        {"ag", {"age", "greet", "name"}, "age"},
        {"xyz", {"age", "greet", "name"}, ""},
        {"apend",
         {"append", "clear", "copy", "count", "extend", "index", "insert", "pop", "remove", "reverse", "sort"},
         "append"},
        {"valeus", {"valid", "value", "values"}, "value"},
        {"lenght", {"height", "len", "length"}, "height"},
        {"AB", {"aB", "ab", "abc"}, "aB"},
        {"totl", {"tot", "total", "totally"}, "tot"},
        {"a", {"A", "aa", "b"}, "A"},
        {"very_long_attribute_name_that_is_more_than_forty_chars",
         {"very_long_attribute_name_that_is_more_than_forty_charz"},
         "very_long_attribute_name_that_is_more_than_forty_charz"},
        {"fooo", {"foo", "foo0", "fooo2"}, "foo"},
    };
    for (auto& c : cases) {
        SCOPED_TRACE(c.name);
        EXPECT_EQ(closest_name(c.name, c.candidates), c.want);
    }
}

TEST(Suggest, SkipsTheNameItselfAndHugeLists) {
    EXPECT_EQ(closest_name("name", {"name"}), "");
    std::vector<std::string> many(750, "nam");
    EXPECT_EQ(closest_name("name", many), "");  // CPython gives up at 750 candidates
    many.pop_back();
    EXPECT_EQ(closest_name("name", many), "nam");
    EXPECT_EQ(did_you_mean("pritn", {"input", "print"}), ". Did you mean: 'print'?");
    EXPECT_EQ(did_you_mean("zzz", {"print"}), "");
}

}  // namespace
}  // namespace weft
