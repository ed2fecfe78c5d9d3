// The installed header-only C++ API (simtrack.hpp), built with C++17 and
// C++20 by scripts/test.d/50-package.sh against the unpacked release tarball.
// Runs offline; exits non-zero on the first check that fails.
#include <simtrack.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#define CHECK(cond)                                                     \
    do {                                                                \
        if (!(cond)) {                                                  \
            std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
            return 1;                                                   \
        }                                                               \
    } while (0)

int main() {
    {
        simtrack::Run run({"hpp", "/package", R"({"nx": 8})", "cpp"});
        CHECK(!run.id().empty());
        std::string name = "residual-of-a-longer-name";
        std::string_view metric = std::string_view(name).substr(0, 8);  // "residual", not NUL-terminated
        for (int i = 0; i < 10; i++) run.log(metric, 1.0 / (i + 1), i);
        const char *names[] = {"mass", "energy"};
        double values[] = {1.0, 2.0};
        run.log_many(names, values, 2, 0);
        run.log_many("mass  energy", 6, values, 2, 1);
#if __cplusplus >= 202002L
        std::vector<const char *> n2{"mass", "energy"};
        std::vector<double> v2{3.0, 4.0};
        run.log_many(std::span<const char *const>(n2), std::span<const double>(v2), 2);
#endif
        run.event("hello from C++");
        run.set_metadata("dt", 0.5);
        run.set_metadata("steps", 10);
        run.set_metadata("stable", true);
        run.set_metadata("scheme", "ftcs");
        CHECK(!run.abort_requested());
        bool threw = false;
        try {
            run.set_status("sideways");
        } catch (const simtrack::Error &e) {
            threw = e.status() == SIMTRACK_STATUS_INVALID_ARGUMENT ||
                    e.status() != SIMTRACK_STATUS_OK;
        }
        CHECK(threw);
        simtrack::Run moved = std::move(run);
        moved.finish();
    }
    {
        bool threw = false;
        try {
            simtrack::Run bad({"bad", "", "[1, 2]", ""});
        } catch (const simtrack::Error &e) {
            threw = e.status() != SIMTRACK_STATUS_OK && std::string(e.what()).find("metadata") != std::string::npos;
        }
        CHECK(threw);
    }
    {
        simtrack_status st = SIMTRACK_STATUS_OK;
        simtrack::RunNoexcept bad({"bad", "", "[1, 2]", ""}, st);
        CHECK(st != SIMTRACK_STATUS_OK);
        CHECK(bad.log("x", 1.0) == SIMTRACK_STATUS_NULL_RUN);
        simtrack::RunNoexcept ok({"noexcept"}, st);
        CHECK(st == SIMTRACK_STATUS_OK);
        CHECK(ok.log("x", 1.0) == SIMTRACK_STATUS_OK);
        CHECK(ok.set_status("sideways") != SIMTRACK_STATUS_OK);
        CHECK(ok.finish() == SIMTRACK_STATUS_OK);
        CHECK(ok.log("x", 1.0) == SIMTRACK_STATUS_NULL_RUN);
    }
    std::puts("simtrack.hpp: ok");
    return 0;
}
