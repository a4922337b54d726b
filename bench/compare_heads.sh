#!/bin/sh
# The head-by-head comparison of docs/results.md (about an hour on 2 CPU cores); extra arguments go to
# bench/compare_heads.py (--quick for a one-minute smoke run).
cd "$(dirname "$0")/.." && exec "${PYTHON:-.venv/bin/python}" bench/compare_heads.py --out runs/compare_heads --figures docs/img "$@"
