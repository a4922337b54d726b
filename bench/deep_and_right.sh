#!/bin/sh
# Deep and right (issue 24): every default, the 8-view average at answer time, and (EXTRAS) the settings the defaults
# were chosen against, on the shared phytoplankton sample (../shared/data/phytoplankton: 95 classes x 60, none of
# the reserved FlowCam files) with fit's own seeded stratified split (the run's seed): train, val, calibration
# part, test. Every run: fit (10 epochs), calibrate, evaluate on the test split at 0.9 (JSON in OUT/NAME.json);
# tabulate with python bench/evaluation_table.py --seeds OUT/*.json
#   sh bench/deep_and_right.sh [OUT] [HEADS] [SEEDS] [EXTRAS]   (10-15 minutes a head and seed on 2 CPU cores)
# EXTRAS: "frozen" adds train_stages=0 (the frozen backbone), "views1" one view in training (and train_stages=0),
# "lite2" Lite2 at 260 px and "bf16" OpenVINO bf16 features (these two: the first seed only, train_stages=0).
set -e
cd "$(dirname "$0")/.."
HIER="${HIER:-.venv/bin/hier}"
OUT="${1:-runs/deep_and_right}"
HEADS="${2:-classifier arcface-multihead}"
SEEDS="${3:-0 1 2}"
EXTRAS="${4:-}"
DATA=../shared/data/phytoplankton
mkdir -p "$OUT"
[ -f "$OUT/taxonomy.json" ] || $HIER taxo build --source csv "$DATA/taxonomy.csv" \
    --rank-columns kingdom,phylum,class,order,family,genus,species --label-column folder -o "$OUT/taxonomy.json"
one() {  # NAME FIT_OPTIONS... -- ANSWER_OPTIONS...
    name=$1; shift
    fit=""; while [ "$1" != "--" ]; do fit="$fit $1"; shift; done; shift
    [ -f "$OUT/$name/model.safetensors" ] || /usr/bin/time -f "$name fit %e s %M KB" -a -o "$OUT/times.txt" \
        $HIER fit "$DATA/images" --taxonomy "$OUT/taxonomy.json" $fit --out "$OUT/$name" --force
    $HIER calibrate "$OUT/$name" "$@" >/dev/null
    $HIER evaluate "$OUT/$name" --confidence 0.9 --json "$@" > "$OUT/$name$(echo "$@" | tr -d ' -').json"
    echo "$name $*: $(date +%T)"
}
has() { case " $EXTRAS " in *" $1 "*) return 0;; esac; return 1; }
first=${SEEDS%% *}
for seed in $SEEDS; do
    for head in $HEADS; do
        one "$head-s$seed" --head "$head" --set seed="$seed" --
        one "$head-s$seed" --head "$head" --set seed="$seed" -- --tta
        if has frozen; then one "$head-frozen-s$seed" --head "$head" --set seed="$seed" --set train_stages=0 --; fi
        if has views1; then
            one "$head-views1-s$seed" --head "$head" --set seed="$seed" --set views=1 --set train_stages=0 --; fi
        if [ "$seed" = "$first" ] && has lite2; then
            one "$head-lite2-260-s$seed" --head "$head" --set seed="$seed" --set views=1 --set train_stages=0 \
                --backbone efficientnet_lite2 --image-size 260 --; fi
        if [ "$seed" = "$first" ] && has bf16; then
            one "$head-bf16-s$seed" --head "$head" --set seed="$seed" --set train_stages=0 \
                --set runtime_precision=bf16 --; fi
    done
done
