#!/bin/sh
# A script printing residuals the way many Fortran codes do (a `D` exponent),
# one value that is not a number, an output file, and the exit code $1.
k=1
while [ "$k" -le 10 ]; do
    echo "step $k: residual = $((1000 / k)).5D-03"
    k=$((k + 1))
done
echo "step 11: residual = ********"
echo "mesh written" > mesh.out
echo "done" >&2
exit "${1:-0}"
