// capabilities_test.cpp — unit tests of CapabilitySet: canonical paths
// (`..`, symlinks, dangling final links), the allows_* checks and covers().
//
// Each filesystem test builds its own tree under a fresh temporary directory,
// so the tests are independent of the machine's files and of each other.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "vm/capabilities.h"
#include "vm/native.h"

namespace weft {
namespace {

namespace stdfs = std::filesystem;

class TempTree : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/weft-caps-unit-XXXXXX";
        root_ = mkdtemp(tmpl);
        root_ = stdfs::canonical(root_).string();
    }
    void TearDown() override { stdfs::remove_all(root_); }
    std::string root_;
};

CapabilitySet with_read(std::vector<std::string> items) {
    CapabilitySet c;
    for (auto& i : items)
        c.read.items.push_back(canonical_path(i));
    return c;
}

TEST_F(TempTree, CanonicalResolvesDotDotAndMissingTail) {
    stdfs::create_directories(root_ + "/a/b");
    EXPECT_EQ(canonical_path(root_ + "/a/./b/../b"), root_ + "/a/b");
    EXPECT_EQ(canonical_path(root_ + "/a/missing/../x"), root_ + "/a/x");
    EXPECT_EQ(canonical_path(root_ + "//a///b/"), root_ + "/a/b");
    EXPECT_EQ(canonical_path("/.."), "/");
}

TEST_F(TempTree, CanonicalFollowsSymlinksIncludingDanglingOnes) {
    stdfs::create_directories(root_ + "/in");
    stdfs::create_directories(root_ + "/out");
    stdfs::create_directory_symlink("../out", root_ + "/in/dirlink");
    stdfs::create_symlink(root_ + "/out/new.txt", root_ + "/in/dangling");
    EXPECT_EQ(canonical_path(root_ + "/in/dirlink/f.txt"), root_ + "/out/f.txt");
    EXPECT_EQ(canonical_path(root_ + "/in/dangling"), root_ + "/out/new.txt");
    // weakly_canonical would have stopped at the dangling link:
    EXPECT_NE(stdfs::weakly_canonical(root_ + "/in/dangling").string(), root_ + "/out/new.txt");
}

TEST_F(TempTree, CanonicalSurvivesSymlinkLoops) {
    stdfs::create_symlink(root_ + "/loop2", root_ + "/loop1");
    stdfs::create_symlink(root_ + "/loop1", root_ + "/loop2");
    std::string c = canonical_path(root_ + "/loop1/x");  // terminates
    EXPECT_FALSE(c.empty());
}

TEST_F(TempTree, ReadGrantCoversSubtreeOnly) {
    stdfs::create_directories(root_ + "/data/sub");
    stdfs::create_directories(root_ + "/data2");
    auto c = with_read({root_ + "/data"});
    EXPECT_TRUE(c.allows_read(root_ + "/data"));
    EXPECT_TRUE(c.allows_read(root_ + "/data/sub/x"));
    EXPECT_FALSE(c.allows_read(root_ + "/data2/x"));  // a prefix of the name is not a parent
    EXPECT_FALSE(c.allows_read(root_ + "/data/../data2"));
    EXPECT_FALSE(c.allows_write(root_ + "/data/x"));
}

TEST_F(TempTree, RelativePathsResolveAgainstWorkingDirectory) {
    stdfs::create_directories(root_ + "/w/in");
    auto c = with_read({root_ + "/w/in"});
    char old[4096];
    ASSERT_NE(getcwd(old, sizeof old), nullptr);
    ASSERT_EQ(chdir((root_ + "/w").c_str()), 0);
    EXPECT_TRUE(c.allows_read("in/file"));
    EXPECT_FALSE(c.allows_read("in/../file"));
    ASSERT_EQ(chdir(old), 0);
}

TEST(Capabilities, NetMatchesHostExactlyWithOptionalPort) {
    CapabilitySet c;
    c.net.items = {"api.example.com", "localhost:8080", "[::1]:9000"};
    EXPECT_TRUE(c.allows_net("api.example.com", 443));
    EXPECT_TRUE(c.allows_net("API.example.com", -1));
    EXPECT_FALSE(c.allows_net("evil.api.example.com", 443));
    EXPECT_FALSE(c.allows_net("example.com", 443));
    EXPECT_TRUE(c.allows_net("localhost", 8080));
    EXPECT_FALSE(c.allows_net("localhost", 8081));
    EXPECT_FALSE(c.allows_net("localhost", -1));
    EXPECT_TRUE(c.allows_net("::1", 9000));
    EXPECT_TRUE(c.allows_net("[::1]", 9000));
    EXPECT_FALSE(c.allows_net("::1", 9001));
}

TEST(Capabilities, RunMatchesBasenameOrResolvedPath) {
    CapabilitySet c;
    c.run.items = {"echo", "/bin/sh"};
    EXPECT_TRUE(c.allows_run("echo"));
    EXPECT_TRUE(c.allows_run("/usr/bin/echo"));
    EXPECT_FALSE(c.allows_run("touch"));
    EXPECT_TRUE(c.allows_run("/bin/sh"));
    EXPECT_TRUE(c.allows_run("sh"));  // PATH lookup resolves to the same file
    EXPECT_FALSE(c.allows_run("bash"));
}

TEST(Capabilities, EnvMatchesNamesExactly) {
    CapabilitySet c;
    c.env.items = {"HOME"};
    EXPECT_TRUE(c.allows_env("HOME"));
    EXPECT_FALSE(c.allows_env("HOMEX"));
    EXPECT_FALSE(c.allows_env("home"));
    c.env.all = true;
    EXPECT_TRUE(c.allows_env("ANYTHING"));
}

TEST(Capabilities, CoversRejectsWidening) {
    CapabilitySet held;
    held.read.items = {"/data"};
    held.net.items = {"example.com:443"};
    std::string excess;
    CapabilitySet narrower;
    narrower.read.items = {"/data/sub"};
    narrower.net.items = {"example.com:443"};
    EXPECT_TRUE(held.covers(narrower, excess));
    CapabilitySet wider = narrower;
    wider.read.items = {"/"};
    EXPECT_FALSE(held.covers(wider, excess));
    EXPECT_EQ(excess, "read '/'");
    CapabilitySet any_port;
    any_port.net.items = {"example.com"};
    EXPECT_FALSE(held.covers(any_port, excess));
    CapabilitySet all_env;
    all_env.env.all = true;
    EXPECT_FALSE(held.covers(all_env, excess));
    EXPECT_EQ(excess, "all env access");
    EXPECT_TRUE(CapabilitySet::everything()->covers(wider, excess));
    EXPECT_TRUE(held.covers(*CapabilitySet::none(), excess));
}

TEST(Capabilities, ParsesFlags) {
    CapabilitySet c;
    std::string err;
    EXPECT_TRUE(parse_capability_flag("--allow-net=a.com,b.com:80", c, err));
    EXPECT_EQ(c.net.items, (std::vector<std::string>{"a.com", "b.com:80"}));
    EXPECT_TRUE(parse_capability_flag("--allow-read=/usr/../etc", c, err));
    EXPECT_EQ(c.read.items, (std::vector<std::string>{"/etc"}));
    EXPECT_TRUE(parse_capability_flag("--allow-env", c, err));
    EXPECT_TRUE(c.env.all);
    EXPECT_FALSE(parse_capability_flag("--allow-run=", c, err));
    EXPECT_FALSE(err.empty());
    EXPECT_FALSE(parse_capability_flag("--workers=2", c, err));
    EXPECT_TRUE(err.empty());
    EXPECT_TRUE(parse_capability_flag("-A", c, err));
    EXPECT_TRUE(c.write.all && c.run.all && c.net.all);
}

TEST(Capabilities, OwnSourcesAreReadableByTheirProgramOnly) {
    CapabilitySet c;
    c.own_sources = std::make_shared<SourceFiles>();
    c.own_sources->add("/srv/app/main.weft");
    EXPECT_TRUE(c.allows_read("/srv/app/main.weft"));
    EXPECT_FALSE(c.allows_read("/srv/app/other.weft"));
    // Another program's sources (another VM's list) grant nothing here, nor to a set without.
    CapabilitySet other;
    other.own_sources = std::make_shared<SourceFiles>();
    other.own_sources->add("/srv/app/lib.weft");
    EXPECT_FALSE(c.allows_read("/srv/app/lib.weft"));
    EXPECT_FALSE(CapabilitySet::none()->allows_read("/srv/app/main.weft"));
}

TEST(Capabilities, RunResolvesAgainstCwdAndChildPath) {
    CapabilitySet c;
    c.run.items = {"/bin/sh"};
    EXPECT_TRUE(c.allows_run("sh"));
    EXPECT_TRUE(c.allows_run("bin/sh", "/"));   // relative to cwd=, as the exec resolves it
    EXPECT_FALSE(c.allows_run("bin/sh", "/tmp/no-such-dir-weft"));
    std::string path = "/usr/bin";
    EXPECT_TRUE(c.allows_run("sh", "", &path));
    std::string empty_path = "/nonexistent-weft";
    EXPECT_FALSE(c.allows_run("sh", "", &empty_path));
}

TEST(Capabilities, NulByteIsRefusedBeforeTheCheck) {
    EXPECT_THROW(reject_nul(std::string("/etc/shadow\0/../ok", 18)), WeftError);
    EXPECT_NO_THROW(reject_nul("/etc/shadow"));
}

}  // namespace
}  // namespace weft
