// simtrack.hpp: a small RAII wrapper over the simtrack C API, for C++17.
//
// What it shows: owning the `simtrack_run *` in a move-only class whose
// destructor calls simtrack_finish, so a run is finished on every exit path,
// exceptions included. Copy it into your code base and adapt it: it is an
// example, not an installed header.
//
// Error policy: the constructor throws simtrack::Error if init fails (no
// handle, nothing to track); every other call returns the simtrack_status and
// never throws, so telemetry cannot stop a simulation.
#pragma once

#include <simtrack.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace simtrack {

/// The message of this thread's last failure.
inline std::string last_error() {
    std::string msg(simtrack_last_error(nullptr, 0), '\0');
    if (!msg.empty()) {
        // The buffer includes room for the terminating NUL.
        std::string buf(msg.size() + 1, '\0');
        simtrack_last_error(buf.data(), buf.size());
        msg.assign(buf.c_str());
    }
    return msg;
}

class Error : public std::runtime_error {
public:
    explicit Error(simtrack_status status)
        : std::runtime_error(simtrack_status_str(status) + std::string(": ") + last_error()),
          status_(status) {}
    simtrack_status status() const noexcept { return status_; }

private:
    simtrack_status status_;
};

struct Options {
    const char *name = nullptr;         ///< default: a generated name
    const char *folder = nullptr;       ///< default: "/"
    const char *metadata_json = nullptr;
    const char *tags = nullptr;         ///< comma-separated
    const char *description = nullptr;
};

class Run {
public:
    explicit Run(const Options &opt = {}) {
        simtrack_status st = simtrack_init(opt.name, opt.metadata_json, opt.tags,
                                           opt.description, opt.folder, &run_);
        if (st != SIMTRACK_STATUS_OK) throw Error(st);
    }
    ~Run() { finish(); }

    Run(const Run &) = delete;
    Run &operator=(const Run &) = delete;
    Run(Run &&other) noexcept : run_(std::exchange(other.run_, nullptr)) {}
    Run &operator=(Run &&other) noexcept {
        if (this != &other) {
            finish();
            run_ = std::exchange(other.run_, nullptr);
        }
        return *this;
    }

    /// step < 0: the next step of this metric.
    simtrack_status log(const char *metric, double value, std::int64_t step = -1) noexcept {
        return simtrack_log(run_, metric, value, step);
    }
    simtrack_status event(const char *message) noexcept { return simtrack_event(run_, message); }
    simtrack_status set_metadata(const char *key, double value) noexcept {
        return simtrack_set_metadata_f64(run_, key, value);
    }
    simtrack_status set_metadata(const char *key, std::int64_t value) noexcept {
        return simtrack_set_metadata_i64(run_, key, value);
    }
    simtrack_status set_metadata(const char *key, int value) noexcept {
        return simtrack_set_metadata_i64(run_, key, value);
    }
    simtrack_status set_metadata(const char *key, bool value) noexcept {
        return simtrack_set_metadata_bool(run_, key, value ? 1 : 0);
    }
    simtrack_status set_metadata(const char *key, const char *value) noexcept {
        return simtrack_set_metadata_str(run_, key, value);
    }
    /// category: "code", "input" or "output".
    simtrack_status save(const char *path, const char *category) noexcept {
        return simtrack_save(run_, path, category);
    }
    /// rule: "is above" or "is below"; frequency and window in minutes.
    simtrack_status alert(const char *name, const char *rule, const char *metric,
                          double frequency, double window, double threshold) noexcept {
        return simtrack_alert(run_, name, rule, metric, frequency, window, threshold);
    }
    simtrack_status set_status(const char *status) noexcept {
        return simtrack_set_status(run_, status);
    }
    bool abort_requested() const noexcept { return simtrack_abort_requested(run_) != 0; }
    simtrack_status flush(double timeout_seconds) noexcept {
        return simtrack_flush(run_, timeout_seconds);
    }
    /// Ends the run; later calls (and the destructor) do nothing.
    simtrack_status finish() noexcept {
        return simtrack_finish(std::exchange(run_, nullptr));
    }
    std::string id() const {
        std::string buf(simtrack_run_id(run_, nullptr, 0) + 1, '\0');
        simtrack_run_id(run_, buf.data(), buf.size());
        return buf.c_str();
    }
    simtrack_run *get() const noexcept { return run_; }

private:
    simtrack_run *run_ = nullptr;
};

}  // namespace simtrack
