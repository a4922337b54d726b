#!/bin/sh
# Deep and right (issue 24): dihedral views in training, the 8-view average at answer time, EfficientNet-Lite2 and
# bf16 features, each against the defaults, on the shared phytoplankton sample (../shared/data/phytoplankton:
# 95 classes x 60, none of the reserved FlowCam files) with fit's own seeded stratified split (the run's seed):
# train, val, calibration part, test. Every run: fit (10 epochs), calibrate, evaluate on the test split at 0.9
# (JSON in OUT/NAME.json); tabulate with python bench/evaluation_table.py OUT/*.json
#   sh bench/deep_and_right.sh [OUT] [HEADS] [SEEDS] [EXTRAS]   (about 15 minutes a head and seed on 2 CPU cores)
# EXTRAS: "lite2 bf16" adds Lite2 at 260 px and OpenVINO bf16 features (the first seed only).
set -e
cd "$(dirname "$0")/.."
HIER="${HIER:-.venv/bin/hier}"
OUT="${1:-runs/deep_and_right}"
HEADS="${2:-arcface-multihead classifier}"
SEEDS="${3:-0 1 2}"
EXTRAS="${4:-}"
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
first=${SEEDS%% *}
for seed in $SEEDS; do
    for head in $HEADS; do
        one "$head-views1-s$seed" --head "$head" --set seed="$seed" --set views=1 --
        one "$head-views8-s$seed" --head "$head" --set seed="$seed" --set views=8 --
        one "$head-views8-s$seed" --head "$head" --set seed="$seed" --set views=8 -- --tta
        if [ "$seed" = "$first" ]; then
            case " $EXTRAS " in *" lite2 "*)
                one "$head-lite2-260-s$seed" --head "$head" --set seed="$seed" --set views=1 \
                    --backbone efficientnet_lite2 --image-size 260 --;; esac
            case " $EXTRAS " in *" bf16 "*)
                one "$head-views8-bf16-s$seed" --head "$head" --set seed="$seed" --set views=8 \
                    --set runtime_precision=bf16 --;; esac
        fi
    done
done
