"""The bench/peers workloads for one Python peer, in its own venv (the same
protocol as c_workload.c; read by peers.py):

    python peer_worker.py PEER calls NAME N BLOCKS
    python peer_worker.py PEER bulk NAME POINTS

PEER: simvue-offline, simvue-online, wandb-offline, mlflow-file,
mlflow-server, aim. Where each one writes comes from the environment
(BENCH_DIR, SIMVUE_URL/SIMVUE_TOKEN, MLFLOW_TRACKING_URI) set by peers.py.
Each peer is driven through its documented public API, one call per step:
W1 one metric per call, W2 a dict of ten metrics per call; W3 (bulk) the W2
call POINTS/10 times, with MLflow's documented asynchronous logging
(synchronous=False) since one HTTP request per call is its synchronous mode.
"""

import os
import sys
import time

NAMES = [f"m{k}" for k in range(10)]


class Peer:
    def __init__(self, kind, name):
        self.kind = kind
        d = os.environ.get("BENCH_DIR", ".")
        if kind.startswith("simvue"):
            from simvue import Run

            self.run = Run(mode="offline" if kind == "simvue-offline" else "online")
            self.run.init(name=name, folder="/bench", tags=["bench"])
        elif kind == "wandb-offline":
            import wandb

            self.run = wandb.init(project="bench", name=name, dir=d, mode="offline")
        elif kind.startswith("mlflow"):
            import mlflow

            self.mlflow = mlflow
            if kind == "mlflow-file":
                mlflow.set_tracking_uri("file://" + os.path.join(d, "mlruns"))
            mlflow.start_run(run_name=name)
        elif kind == "aim":
            from aim import Run

            self.run = Run(repo=d, experiment="bench")
        else:
            raise SystemExit(f"unknown peer {kind}")

    def log1(self, value, step):
        k = self.kind
        if k.startswith("simvue"):
            self.run.log_metrics({"residual": value}, step=step)
        elif k == "wandb-offline":
            self.run.log({"residual": value}, step=step)
        elif k.startswith("mlflow"):
            self.mlflow.log_metric("residual", value, step=step)
        else:
            self.run.track(value, name="residual", step=step)

    def log10(self, values, step, bulk=False):
        k = self.kind
        if k.startswith("simvue"):
            self.run.log_metrics(values, step=step)
        elif k == "wandb-offline":
            self.run.log(values, step=step)
        elif k.startswith("mlflow"):
            self.mlflow.log_metrics(values, step=step, synchronous=not bulk)
        else:
            self.run.track(values, step=step)

    def close(self):
        k = self.kind
        if k.startswith("simvue"):
            self.run.close()
        elif k == "wandb-offline":
            self.run.finish()
        elif k.startswith("mlflow"):
            self.mlflow.end_run()
        else:
            self.run.close()


def main():
    kind, mode, name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    blocks = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    peer = Peer(kind, name)
    clock = time.monotonic
    out = []
    if mode == "calls":
        w1 = []
        step = 0
        for b in range(-1, blocks):
            t0 = clock()
            for _ in range(n):
                peer.log1(1.0 / (step + 1), step)
                step += 1
            if b >= 0:
                w1.append((clock() - t0) * 1e9 / n)
        w2 = []
        for b in range(-1, blocks):
            t0 = clock()
            for _ in range(n):
                peer.log10({m: float(step + i) for i, m in enumerate(NAMES)}, step)
                step += 1
            if b >= 0:
                w2.append((clock() - t0) * 1e9 / n)
        out.append("w1_ns " + " ".join(f"{x:.2f}" for x in w1))
        out.append("w2_ns " + " ".join(f"{x:.2f}" for x in w2))
    else:
        first = clock()
        for step in range(n // 10):
            peer.log10({m: float(step + i) for i, m in enumerate(NAMES)}, step, bulk=True)
        out.append(f"first_log {first:.6f}")
        out.append(f"last_log {clock():.6f}")
    t0 = clock()
    peer.close()
    t1 = clock()
    out.append(f"finish_s {t1 - t0:.6f}")
    out.append(f"closed_at {t1:.6f}")
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
