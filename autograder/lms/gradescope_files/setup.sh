#!/usr/bin/env bash
# Gradescope builds the autograder image with this once, as root on its Ubuntu base image: it installs the
# project shipped in the zip (made by `autograder gradescope-zip`), with the CPU build of torch, into a venv
# at $ROOT/venv (run_autograder uses it). Newer Ubuntu images refuse system-wide pip installs (PEP 668) and
# may lack pip and venv altogether, so those come from apt first.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
cd "$ROOT/source"
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends python3-venv python3-pip
fi
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet --upgrade pip
"$ROOT/venv/bin/python" -m pip install --quiet torch==2.14.1 torchvision==0.29.1 \
    --index-url https://download.pytorch.org/whl/cpu
"$ROOT/venv/bin/python" -m pip install --quiet -e .
