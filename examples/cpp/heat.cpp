// heat (C++): a 1-D explicit heat solver reporting through the RAII wrapper
// in simtrack.hpp.
//
// What it shows: a simtrack::Run owned by a scope (finished by its destructor
// even if the solver throws), metadata, residual and energy logged every
// step, an alert, abort_requested, saving the output file.
//
// Build and run (simtrack installed in <prefix>):
//   c++ -std=c++17 heat.cpp $(pkg-config --cflags --libs simtrack) -o heat_cpp
//   ./heat_cpp
// or, in this repository: cmake -S . -B build && cmake --build build &&
//   build/examples/cpp/heat_cpp
#include "simtrack.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

int main() {
    const int nx = 200;
    const int nsteps = 2000;
    const double cfl = 0.4;
    const double dx = 1.0 / (nx - 1);

    try {
        simtrack::Run run({"heat-1d-cpp", "/examples/cpp", "{\"nx\": 200}", "heat,cpp,example",
                           "1-D explicit heat equation (C++ example)"});
        run.set_metadata("cfl", cfl);
        run.set_metadata("nsteps", nsteps);
        run.set_metadata("scheme", "ftcs");
        run.alert("heat-diverging", "is above", "residual", 1.0, 1.0, 1.0);

        std::vector<double> u(nx, 0.0), next(nx, 0.0);
        for (int i = nx / 2 - nx / 10; i <= nx / 2 + nx / 10; ++i) u[i] = 1.0;
        next = u;

        double residual = 0.0, energy = 0.0;
        int it = 1;
        for (; it <= nsteps; ++it) {
            residual = 0.0;
            energy = 0.0;
            for (int i = 1; i < nx - 1; ++i) {
                next[i] = u[i] + cfl * (u[i - 1] - 2.0 * u[i] + u[i + 1]);
                residual = std::fmax(residual, std::fabs(next[i] - u[i]));
            }
            for (double v : next) energy += v * dx;
            u.swap(next);
            run.log("residual", residual, it);
            run.log("energy", energy, it);
            if (run.abort_requested()) {
                run.event("abort requested");
                run.set_status("terminated");
                break;
            }
        }

        {
            std::ofstream out("heat-cpp-output.dat");
            for (int i = 0; i < nx; ++i) out << i * dx << ' ' << u[i] << '\n';
        }
        if (run.save("heat-cpp-output.dat", "output") != SIMTRACK_STATUS_OK)
            std::fprintf(stderr, "simtrack: save: %s\n", simtrack::last_error().c_str());
        std::printf("heat_cpp: run %s, %d steps, residual %.3e, energy %.3e\n", run.id().c_str(),
                    it - 1, residual, energy);
        simtrack_status st = run.finish();
        if (st != SIMTRACK_STATUS_OK)
            std::fprintf(stderr, "simtrack: finish: %s\n", simtrack::last_error().c_str());
    } catch (const simtrack::Error &e) {
        // No run could be started: the solver would carry on untracked.
        std::fprintf(stderr, "simtrack: %s\n", e.what());
        return 1;
    }
    return 0;
}
