#!/usr/bin/env bash
# Does `hier predict --confidence C` after `hier calibrate` keep its promise, for every built-in head?
# Trains each head briefly on the synthetic benchmark, calibrates on its val split, then scores
# 3,202 fresh images (a second synthetic draw, seed 1: same taxonomy, images never seen) and prints
# the fraction correct at 0.8, 0.9 and 0.95 with its Clopper-Pearson upper bound.
#   bash bench/calibration_promise.sh [WORK_DIR]
set -euo pipefail
H="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/hier"
PY="$(dirname "$H")/python"
WORK="${1:-$(mktemp -d -t hier-bench-calibration-XXXX)}"
cd "$WORK"
[ -d synth ] || "$H" data synth synth --images 4000 --size 32 --unseen 3 > /dev/null
[ -d fresh ] || "$H" data synth fresh --images 4000 --size 32 --unseen 3 --seed 1 > /dev/null
echo "head                T       leaf   correct at 0.8 / 0.9 / 0.95 (upper bound) on fresh images"
for head in classifier arcface spheremulti spheremultihier arcface-multihead; do
  [ -f "runs/$head/model.safetensors" ] || "$H" fit synth --taxonomy synth/taxonomy.json --head "$head" --backbone smallcnn --epochs 4 \
      --image-size 32 --batch-size 64 --set backbone_options.width=16 --out "runs/$head" --force > /dev/null 2>&1
  "$H" calibrate "runs/$head" synth > /dev/null 2>&1
  "$H" evaluate "runs/$head" fresh --split train --json 2> /dev/null > "runs/$head.fresh.json"
  "$PY" - "$head" "runs/$head.fresh.json" <<'PY'
import json, sys
head, r = sys.argv[1], json.load(open(sys.argv[2]))
levels = "  ".join(f"{v['correct']:.3f} ({v['correct_upper_bound']:.3f})" for v in r["at_levels"].values())
print(f"{head:18} {r['temperature']:6.2f}  {r['leaf_accuracy']:.3f}  {levels}   n={r['images']}")
PY
done
