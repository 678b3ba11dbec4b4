// progress.cpp — the terminal progress bar of the parallel operations (see progress.h).
#include "vm/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "weft/runtime/runtime.hpp"

namespace weft {

namespace {

constexpr double kRedrawSeconds = 0.1;
constexpr int kMinBar = 10, kMaxBar = 40;

bool stderr_is_terminal() {
    if (!isatty(STDERR_FILENO)) return false;
    const char* term = getenv("TERM");
    return !(term && strcmp(term, "dumb") == 0);
}

int terminal_columns() {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

std::string duration_text(double s) {
    char buf[32];
    if (s < 60)
        snprintf(buf, sizeof buf, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
    else
        snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, int(s) % 3600 / 60);
    return buf;
}

// Writes all of `s` to stderr, unbuffered (the bar must not wait behind stdio buffers).
void write_stderr(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = write(STDERR_FILENO, s.data() + off, s.size() - off);
        if (n <= 0) return;  // a closed or broken terminal: drop the bar, never fail the work
        off += size_t(n);
    }
}

}  // namespace

ProgressBar::ProgressBar(std::string label, std::size_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      active_(enabled && total > 0 && stderr_is_terminal()) {
    if (active_) {
        start_ns_ = rt::now_ns();
        std::lock_guard<std::mutex> g(mu_);
        draw(0);
    }
}

ProgressBar::~ProgressBar() {
    finish();
}

void ProgressBar::tick() {
    if (!active_) return;
    std::size_t done = done_.fetch_add(1, std::memory_order_relaxed) + 1;
    std::int64_t now = rt::now_ns();
    if (double(now - last_ns_.load(std::memory_order_relaxed)) / 1e9 < kRedrawSeconds) return;
    std::unique_lock<std::mutex> g(mu_, std::try_to_lock);
    if (g.owns_lock() && active_) draw(done);
}

void ProgressBar::finish() {
    std::lock_guard<std::mutex> g(mu_);
    if (!active_) return;
    draw(done_.load());
    write_stderr("\n");
    active_ = false;
}

void ProgressBar::draw(std::size_t done) {
    std::int64_t now = rt::now_ns();
    last_ns_.store(now, std::memory_order_relaxed);
    double elapsed = double(now - start_ns_) / 1e9;
    int cols = terminal_columns();
    // Room for the text around the bar; the bar shrinks on narrow terminals.
    int width = std::clamp(cols - int(label_.size()) - 48, kMinBar, kMaxBar);
    std::string line = render(label_, done, total_, elapsed, width);
    if (int(line.size()) >= cols) line.resize(size_t(std::max(cols - 1, 0)));
    // \r back to column 0, the line, then clear whatever a longer previous line left.
    write_stderr("\r" + line + "\x1b[K");
    drawn_ = true;
}

std::string ProgressBar::render(const std::string& label, std::size_t done, std::size_t total,
                                double elapsed, int width) {
    double frac = total ? double(done) / double(total) : 1.0;
    int filled = int(frac * width + 1e-9);
    std::string bar(size_t(filled), '#');
    bar.append(size_t(width - filled), '.');
    char buf[160];
    double rate = elapsed > 0 ? double(done) / elapsed : 0;
    std::string eta;
    if (done >= total)
        eta = "in " + duration_text(elapsed);
    else if (rate > 0)
        eta = "ETA " + duration_text(double(total - done) / rate);
    else
        eta = "ETA ?";
    snprintf(buf, sizeof buf, " [%s] %zu/%zu %3.0f%% %.1f/s %s", bar.c_str(), done, total,
             frac * 100, rate, eta.c_str());
    return label + buf;
}

}  // namespace weft
