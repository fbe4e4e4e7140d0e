#!/bin/bash
OLD=/work/wt12c/build-old/towerrt; NEW=/work/main/build-rel/towerrt
common="bench --synthetic --workdir /tmp/ba/syn --isa best --precision f32,bf16,int8 --threads 1 --fe trained --k 1000,10000 --repetitions 3 --seconds 2 --quiet"
for r in 1 2 3; do
  echo "== round $r $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  $OLD $common --csv /tmp/ba/old-r$r.csv > /tmp/ba/old-r$r.txt 2>&1
  $NEW $common --csv /tmp/ba/new-r$r.csv > /tmp/ba/new-r$r.txt 2>&1
done
