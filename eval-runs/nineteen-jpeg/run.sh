#!/usr/bin/env bash
# The nineteen untouched sets through the JPEG (docs/results.md, items 42 and 43): the policy alone,
# experiments/read-push with item 37's reader (both shipped as wm-cem-read and models/tiny-sim-explore* since item
# 41), and its oracle:, one --out per set; then, in the same directories, the same preset with the --objective vanilla
# twin and the same reader, for the issue's Self-Flow-against-vanilla row. eval resumes a directory episode by episode
# and each set is committed as it finishes, so a rerun on a fresh machine goes on where the last one stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
READER=models/tiny-sim-explore/state-reader.safetensors
model() { # model DIR SOURCE: SOURCE's model directory with READER's reader in it
  if [ ! -f $1/state-reader.safetensors ] || ! cmp -s $1/state-reader.safetensors $READER; then
    rm -rf $1 && mkdir -p scratch && cp -r $2 $1 && cp $READER $1/
  fi
}
model scratch/model-c64 models/tiny-sim-explore
model scratch/model-c64-vanilla models/tiny-sim-explore-vanilla
CANDIDATE=experiments/read-push@scratch/model-c64
MAIN=wm-policy,$CANDIDATE,oracle:$CANDIDATE
TWIN=experiments/read-push@scratch/model-c64-vanilla
OUT=eval-runs/nineteen-jpeg
SETS="12000 12100 12200 12300 12400 12500 12600 12700 12800 12900 14000 14100 14200 14300 14400 14600 14900 14950 14960"
run() { # run SET POLICIES
  local n=4
  case $1 in 149*) n=8 ;; esac
  npm run eval -- --policy $2 --seed $1 --episodes $n --workers 2 --failure-gifs 0 --camera-jpeg 92 --out $OUT/$1
}
# A set's pass is done once its report.json names the pass's last preset.
for s in $SETS; do grep -q "\"oracle:$CANDIDATE\"" $OUT/$s/report.json 2>/dev/null || run $s $MAIN; done
for s in $SETS; do grep -q "\"$TWIN\"" $OUT/$s/report.json 2>/dev/null || run $s $MAIN,$TWIN; done
