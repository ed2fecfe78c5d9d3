// simtrack.hpp: the header-only C++ API over the C API (C++17 and later).
//
//   #include <simtrack.hpp>
//   simtrack::Run run({"heat", "/demo", R"({"nx": 128})", "cfd,test"});   // throws simtrack::Error
//   run.log("residual", res, it);
//   if (run.abort_requested()) run.set_status("terminated");
//   // finished when `run` goes out of scope, or run.finish()
//
// Ownership: a Run owns one `simtrack_run *`; it is move-only, and its
// destructor calls simtrack_finish (so a run is finished on every exit path,
// exceptions included).
//
// Errors, by choice:
//   * simtrack::Run         constructor and every call throw simtrack::Error
//                           on failure (Error::status() is the C status);
//   * simtrack::RunNoexcept never throws: the constructor takes a
//                           simtrack_status& out-parameter, every call returns
//                           the simtrack_status. Telemetry then never stops a
//                           simulation.
// Strings are std::string_view (metric names go to the library without a
// copy); sequences are (pointer, count) and, with C++20, std::span.
#pragma once

#include <simtrack.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#if __cplusplus >= 202002L
#include <span>
#endif

namespace simtrack {

/// The message of this thread's last failure.
inline std::string last_error() {
    std::size_t len = simtrack_last_error(nullptr, 0);
    std::string buf(len + 1, '\0');
    simtrack_last_error(buf.data(), buf.size());
    buf.resize(len);
    return buf;
}

/// A failed call: its status and the library's message.
class Error : public std::runtime_error {
public:
    explicit Error(simtrack_status status)
        : std::runtime_error(std::string(simtrack_status_str(status)) + ": " + last_error()),
          status_(status) {}
    simtrack_status status() const noexcept { return status_; }

private:
    simtrack_status status_;
};

/// Arguments of simtrack_init; empty means "not given".
struct Options {
    std::string_view name{};           ///< default: a generated name
    std::string_view folder{};         ///< default: "/"
    std::string_view metadata_json{};  ///< a JSON object
    std::string_view tags{};           ///< comma-separated
    std::string_view description{};
};

namespace detail {

/// A NUL-terminated copy of a string_view, or NULL for an empty one.
class CStr {
public:
    explicit CStr(std::string_view s) : s_(s), empty_(s.empty()) {}
    const char *get() const noexcept { return empty_ ? nullptr : s_.c_str(); }

private:
    std::string s_;
    bool empty_;
};

struct Throwing {
    using result = void;
    static void check(simtrack_status st) {
        if (st != SIMTRACK_STATUS_OK) throw Error(st);
    }
};

struct Returning {
    using result = simtrack_status;
    static simtrack_status check(simtrack_status st) noexcept { return st; }
};

/// The run, with the error policy `P`: Throwing or Returning.
template <class P>
class BasicRun {
public:
    using result = typename P::result;

    BasicRun(BasicRun &&other) noexcept : run_(std::exchange(other.run_, nullptr)) {}
    BasicRun &operator=(BasicRun &&other) noexcept {
        if (this != &other) {
            simtrack_finish(run_);
            run_ = std::exchange(other.run_, nullptr);
        }
        return *this;
    }
    BasicRun(const BasicRun &) = delete;
    BasicRun &operator=(const BasicRun &) = delete;
    ~BasicRun() { simtrack_finish(run_); }

    /// Logs one value; step < 0: the metric's next step.
    result log(std::string_view metric, double value, std::int64_t step = -1) {
        return P::check(simtrack_log_n(run_, metric.data(), metric.size(), value, step));
    }
    /// Logs `count` values at one step: `names` holds `count` names of
    /// `name_len` bytes each, blank- or NUL-padded (a Fortran-style table).
    result log_many(const char *names, std::size_t name_len, const double *values,
                    std::size_t count, std::int64_t step = -1) {
        return P::check(simtrack_log_many_fixed(run_, count, names, name_len, values, step));
    }
    /// Logs `count` values named by `metrics` (NUL-terminated) at one step.
    result log_many(const char *const *metrics, const double *values, std::size_t count,
                    std::int64_t step = -1) {
        return P::check(simtrack_log_many(run_, count, metrics, values, step));
    }
#if __cplusplus >= 202002L
    result log_many(std::span<const char *const> metrics, std::span<const double> values,
                    std::int64_t step = -1) {
        if (metrics.size() != values.size()) {
            return P::check(SIMTRACK_STATUS_INVALID_ARGUMENT);
        }
        return log_many(metrics.data(), values.data(), values.size(), step);
    }
#endif
    result event(std::string_view message) {
        return P::check(simtrack_event(run_, CStr(message).get()));
    }
    result set_metadata(std::string_view key, double value) {
        return P::check(simtrack_set_metadata_f64(run_, CStr(key).get(), value));
    }
    result set_metadata(std::string_view key, std::int64_t value) {
        return P::check(simtrack_set_metadata_i64(run_, CStr(key).get(), value));
    }
    result set_metadata(std::string_view key, int value) {
        return set_metadata(key, static_cast<std::int64_t>(value));
    }
    result set_metadata(std::string_view key, bool value) {
        return P::check(simtrack_set_metadata_bool(run_, CStr(key).get(), value ? 1 : 0));
    }
    result set_metadata(std::string_view key, std::string_view value) {
        return P::check(simtrack_set_metadata_str(run_, CStr(key).get(), CStr(value).get()));
    }
    result set_metadata(std::string_view key, const char *value) {
        return set_metadata(key, std::string_view(value));
    }
    /// category: "code", "input" or "output".
    result save(std::string_view path, std::string_view category) {
        return P::check(simtrack_save(run_, CStr(path).get(), CStr(category).get()));
    }
    /// rule: "is above" or "is below"; frequency and window in minutes.
    result alert(std::string_view name, std::string_view rule, std::string_view metric,
                 double frequency, double window, double threshold) {
        return P::check(simtrack_alert(run_, CStr(name).get(), CStr(rule).get(),
                                       CStr(metric).get(), frequency, window, threshold));
    }
    /// status: "completed", "failed" or "terminated" (recorded at finish).
    result set_status(std::string_view status) {
        return P::check(simtrack_set_status(run_, CStr(status).get()));
    }
    bool abort_requested() const noexcept { return simtrack_abort_requested(run_) == 1; }
    result flush(double timeout_seconds) {
        return P::check(simtrack_flush(run_, timeout_seconds));
    }
    /// Finishes now (the destructor then does nothing).
    result finish() { return P::check(simtrack_finish(std::exchange(run_, nullptr))); }
    /// The library's run id ("" for a no-op run).
    std::string id() const {
        std::size_t len = simtrack_run_id(run_, nullptr, 0);
        std::string buf(len + 1, '\0');
        simtrack_run_id(run_, buf.data(), buf.size());
        buf.resize(len);
        return buf;
    }
    /// The C handle, for calls this header does not wrap (still owned here).
    simtrack_run *get() const noexcept { return run_; }

protected:
    BasicRun() = default;
    simtrack_status init(const Options &o) noexcept {
        try {
            return simtrack_init(CStr(o.name).get(), CStr(o.metadata_json).get(),
                                 CStr(o.tags).get(), CStr(o.description).get(),
                                 CStr(o.folder).get(), &run_);
        } catch (...) {  // std::bad_alloc while copying the strings
            return SIMTRACK_STATUS_INTERNAL;
        }
    }
    simtrack_run *run_ = nullptr;
};

}  // namespace detail

/// A run whose failures throw simtrack::Error.
class Run : public detail::BasicRun<detail::Throwing> {
public:
    explicit Run(const Options &options = {}) { detail::Throwing::check(init(options)); }
};

/// A run whose calls return simtrack_status and never throw.
class RunNoexcept : public detail::BasicRun<detail::Returning> {
public:
    /// On failure `status` says why and every call returns SIMTRACK_STATUS_NULL_RUN.
    RunNoexcept(const Options &options, simtrack_status &status) noexcept {
        status = init(options);
    }
};

}  // namespace simtrack
