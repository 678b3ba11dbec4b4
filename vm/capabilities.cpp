// capabilities.cpp — capability sets and command-line flag parsing.
#include "vm/capabilities.h"

#include <filesystem>

namespace weft {

std::shared_ptr<const CapabilitySet> CapabilitySet::none() {
    static auto s = std::make_shared<const CapabilitySet>();
    return s;
}

std::shared_ptr<const CapabilitySet> CapabilitySet::everything() {
    static auto s = [] {
        auto c = std::make_shared<CapabilitySet>();
        c->net.all = c->read.all = c->write.all = c->run.all = c->env.all = true;
        return std::shared_ptr<const CapabilitySet>(c);
    }();
    return s;
}

namespace {

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == ',') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

std::string canonical_path(const std::string& p) {
    std::error_code ec;
    auto c = std::filesystem::weakly_canonical(std::filesystem::absolute(p, ec), ec);
    return ec ? p : c.string();
}

}  // namespace

bool parse_capability_flag(const std::string& arg, CapabilitySet& caps, std::string& error) {
    error.clear();
    if (arg == "-A" || arg == "--allow-all") {
        caps.net.all = caps.read.all = caps.write.all = caps.run.all = caps.env.all = true;
        return true;
    }
    static const struct {
        const char* flag;
        CapabilitySet::Grant CapabilitySet::*grant;
        bool paths;
    } kinds[] = {
        {"--allow-net", &CapabilitySet::net, false},   {"--allow-read", &CapabilitySet::read, true},
        {"--allow-write", &CapabilitySet::write, true}, {"--allow-run", &CapabilitySet::run, false},
        {"--allow-env", &CapabilitySet::env, false},
    };
    for (auto& k : kinds) {
        std::string f = k.flag;
        if (arg == f) {
            (caps.*k.grant).all = true;
            return true;
        }
        if (arg.rfind(f + "=", 0) == 0) {
            auto items = split_list(arg.substr(f.size() + 1));
            if (items.empty()) {
                error = f + "= needs at least one value";
                return false;
            }
            for (auto& it : items) (caps.*k.grant).items.push_back(k.paths ? canonical_path(it) : it);
            return true;
        }
    }
    return false;
}

}  // namespace weft
