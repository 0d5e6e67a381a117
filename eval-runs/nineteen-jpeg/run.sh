#!/usr/bin/env bash
# The nineteen untouched sets through the JPEG (docs/results.md, Next steps' first bullet): the policy alone,
# experiments/read-push with item 37's 128x160 reader, and its oracle:, one --out per set. eval resumes a directory
# episode by episode, and each finished set is committed, so a rerun on a fresh machine goes on where this one stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=scratch/model-c64   # models/tiny-sim-explore with training-runs/reader128-c64's reader in it
if [ ! -f $DIR/state-reader.safetensors ] || ! cmp -s $DIR/state-reader.safetensors training-runs/reader128-c64/state-reader.safetensors; then
  rm -rf $DIR && mkdir -p scratch && cp -r models/tiny-sim-explore $DIR
  cp training-runs/reader128-c64/state-reader.safetensors $DIR/
fi
P=wm-policy,experiments/read-push@$DIR,oracle:experiments/read-push@$DIR
OUT=eval-runs/nineteen-jpeg
for s in 12000 12100 12200 12300 12400 12500 12600 12700 12800 12900 14000 14100 14200 14300 14400 14600 14900 14950 14960; do
  n=4; case $s in 149*) n=8 ;; esac
  [ -f $OUT/$s/report.json ] && continue
  npm run eval -- --policy $P --seed $s --episodes $n --workers 2 --failure-gifs 0 --camera-jpeg 92 --out $OUT/$s
done
