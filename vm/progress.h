// progress.h — the progress bar of `parallel_map(..., progress=True)` and its siblings.
//
// The bar goes to stderr and only when stderr is a terminal (isatty): piped or redirected
// output, logs and tests see nothing at all, so `progress=True` can stay on in scripts. It is
// redrawn in place with a carriage return at most every kRedrawSeconds (so a million tiny items
// do not cost a million writes), always once at the end, and then the line is ended so later
// output starts on a fresh line.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

namespace weft {

class ProgressBar {
  public:
    // `label` names the operation ("parallel_map"); `total` is the number of items.
    // `enabled` false (progress=False) makes every call a no-op.
    ProgressBar(std::string label, std::size_t total, bool enabled);
    // Ends the line if anything was drawn.
    ~ProgressBar();
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    // One more item is finished. Called by the tasks doing the items, from any thread; cheap
    // when nothing needs redrawing (an atomic increment and a clock read).
    void tick();
    // The operation is over: draws the final state and ends the line. Caller: the task that
    // runs the operation, after its items' tasks have ended.
    void finish();
    bool active() const { return active_.load(std::memory_order_relaxed); }

    // The line drawn for a state (no carriage return), exposed for tests: label, a bar of
    // `width` cells, "done/total", the percentage, items per second and an estimate of the time
    // left. `elapsed` is in seconds.
    static std::string render(const std::string& label, std::size_t done, std::size_t total,
                              double elapsed, int width);

  private:
    void draw(std::size_t done);  // with mu_ held
    std::string label_;
    std::size_t total_;
    std::atomic<bool> active_;
    std::atomic<std::size_t> done_{0};
    std::mutex mu_;  // one drawer at a time; others skip their redraw
    bool drawn_ = false;
    std::int64_t start_ns_ = 0;
    std::atomic<std::int64_t> last_ns_{0};
};

}  // namespace weft
