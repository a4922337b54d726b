#!/bin/sh
# Deep and right (issue 24): dihedral views in training, the 8-view average at answer time, and EfficientNet-Lite2,
# each against today's default, on the shared phytoplankton sample (../shared/data/phytoplankton: 95 classes x 60,
# none of the reserved FlowCam files) with fit's own seeded stratified split (seed 0): train, val, calibration part,
# test. Every run: fit (10 epochs), calibrate, evaluate on the test split at 0.9 (JSON in OUT/NAME.json).
#   sh bench/deep_and_right.sh [OUT] [HEADS]      (about 30 minutes on 2 CPU cores)
set -e
cd "$(dirname "$0")/.."
HIER="${HIER:-.venv/bin/hier}"
OUT="${1:-runs/deep_and_right}"
HEADS="${2:-arcface-multihead classifier}"
DATA=../shared/data/phytoplankton
mkdir -p "$OUT"
[ -f "$OUT/taxonomy.json" ] || $HIER taxo build --source csv "$DATA/taxonomy.csv" \
    --rank-columns kingdom,phylum,class,order,family,genus,species --label-column folder -o "$OUT/taxonomy.json"
one() {  # NAME FIT_OPTIONS... -- ANSWER_OPTIONS...
    name=$1; shift
    fit=""; while [ "$1" != "--" ]; do fit="$fit $1"; shift; done; shift
    [ -f "$OUT/$name/model.safetensors" ] || $HIER fit "$DATA/images" --taxonomy "$OUT/taxonomy.json" $fit --out "$OUT/$name" --force
    $HIER calibrate "$OUT/$name" "$@" >/dev/null
    $HIER evaluate "$OUT/$name" --confidence 0.9 --json "$@" > "$OUT/$name$(echo "$@" | tr -d ' -').json"
    echo "$name $*: $(date +%T)"
}
for head in $HEADS; do
    one "$head-lite0" --head "$head" --set seed=0 --
    one "$head-lite0-views8" --head "$head" --set seed=0 --set views=8 --
    one "$head-lite0-views8" --head "$head" --set seed=0 --set views=8 -- --tta
    one "$head-lite2-260" --head "$head" --set seed=0 --backbone efficientnet_lite2 --image-size 260 --
done
