#!/usr/bin/env bash
# Creates (once) the private virtual environments of the peers, pinned, under
# $target/peers/ (the simvue one is shared with scripts/test.d/20-simvue-conformance.sh).
#   bench/peers/venvs.sh [simvue wandb mlflow aim]   (default: all four)
# Prints nothing when every venv already holds its pinned version.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"

SIMVUE_VERSION=2.6.2
WANDB_VERSION=0.31.0
MLFLOW_VERSION=3.17.2
AIM_VERSION=3.29.1

venv_dir() {
    case "$1" in
        simvue) echo "$target/simvue-venv-$SIMVUE_VERSION" ;;
        wandb) echo "$target/peers/venv-wandb-$WANDB_VERSION" ;;
        mlflow) echo "$target/peers/venv-mlflow-$MLFLOW_VERSION" ;;
        aim) echo "$target/peers/venv-aim-$AIM_VERSION" ;;
    esac
}

pin() {
    case "$1" in
        simvue) echo "$SIMVUE_VERSION" ;;
        wandb) echo "$WANDB_VERSION" ;;
        mlflow) echo "$MLFLOW_VERSION" ;;
        aim) echo "$AIM_VERSION" ;;
    esac
}

ensure() {
    local name=$1 dir version
    dir="$(realpath -m "$(venv_dir "$name")")"
    version="$(pin "$name")"
    if "$dir/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$name') != '$version')" 2>/dev/null &&
        "$dir/bin/python" -c "import psutil" 2>/dev/null; then
        return 0
    fi
    echo "-- creating $dir with $name==$version"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$name==$version" psutil
}

if [ "${1:-}" = "--path" ]; then
    realpath -m "$(venv_dir "$2")"
    exit 0
fi

peers=("$@")
[ ${#peers[@]} -gt 0 ] || peers=(simvue wandb mlflow aim)
for p in "${peers[@]}"; do
    ensure "$p"
done
