# Latency and throughput versus candidates per request, one panel per item-store precision;
# written by towerrt bench --plot. Run from this folder: gnuplot avx2.gp
datafile = 'avx2.dat'
# series (data blocks in order): towerrt|towerrt|towerrt
set logscale x
set grid
set key below maxcolumns 2 noenhanced
set xlabel 'candidates per request (k)'
set format x '10^{%L}'
set logscale y
png = (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) ? 'pngcairo' : 'png'
do for [fmt in 'png svg'] {
  if (fmt eq 'png') { set terminal png size 1860,578 } else { set terminal svg size 1860,578 dynamic background rgb 'white' }
  if (fmt eq 'png' && png eq 'pngcairo') { set terminal pngcairo size 1860,578 font ',10' }
  set output 'avx2-latency.'.fmt
  set multiplot layout 1,3 title "towerrt request latency: p50 solid with filled points, p99 dashed with open points\nmodel: user_fields=4 item_fields=1 multi_len=6 user_dense=1 item_dense=1 emb=32 towers=300-300-128 user_heads=32 item_heads=32\nhead_dim=64 fe_layers=0,1,2 bn=1 catalog=100000 seed=1, 32 x 32 heads of 64 dims; catalog 100000 items\nthreads per request 1; AMD EPYC, 2 logical CPUs, best ISA avx512-bf16, TOWERRT_ISA=avx2" noenhanced
  set ylabel 'latency (ms)'
  set title 'f32 item store' noenhanced
  plot \
    datafile index 0 using 1:($2/1000) with linespoints lw 2 pt 7 ps 0.8 lc 1 title 'towerrt', \
    datafile index 0 using 1:($4/1000) with linespoints lw 1.5 pt 6 ps 0.8 lc 1 dt (8,4) notitle
  set title 'bf16 item store' noenhanced
  plot \
    datafile index 1 using 1:($2/1000) with linespoints lw 2 pt 7 ps 0.8 lc 1 title 'towerrt', \
    datafile index 1 using 1:($4/1000) with linespoints lw 1.5 pt 6 ps 0.8 lc 1 dt (8,4) notitle
  set title 'int8 item store' noenhanced
  plot \
    datafile index 2 using 1:($2/1000) with linespoints lw 2 pt 7 ps 0.8 lc 1 title 'towerrt', \
    datafile index 2 using 1:($4/1000) with linespoints lw 1.5 pt 6 ps 0.8 lc 1 dt (8,4) notitle
  unset multiplot
  set output 'avx2-throughput.'.fmt
  set multiplot layout 1,3 title "towerrt throughput, one request at a time; dotted: the compute bound (roof of the precision / MaxSim MACs per candidate)\nmodel: user_fields=4 item_fields=1 multi_len=6 user_dense=1 item_dense=1 emb=32 towers=300-300-128 user_heads=32 item_heads=32\nhead_dim=64 fe_layers=0,1,2 bn=1 catalog=100000 seed=1, 32 x 32 heads of 64 dims; catalog 100000 items\nthreads per request 1; AMD EPYC, 2 logical CPUs, best ISA avx512-bf16, TOWERRT_ISA=avx2" noenhanced
  set ylabel 'candidates per second'
  set title 'f32 item store' noenhanced
  plot \
    datafile index 0 using 1:6 with linespoints lw 2 pt 7 ps 0.8 lc 1 title 'towerrt', \
    datafile index 0 using 1:7 with lines lw 1.5 lc 1 dt (2,3) notitle
  set title 'bf16 item store' noenhanced
  plot \
    datafile index 1 using 1:6 with linespoints lw 2 pt 7 ps 0.8 lc 1 title 'towerrt', \
    datafile index 1 using 1:7 with lines lw 1.5 lc 1 dt (2,3) notitle
  set title 'int8 item store' noenhanced
  plot \
    datafile index 2 using 1:6 with linespoints lw 2 pt 7 ps 0.8 lc 1 title 'towerrt', \
    datafile index 2 using 1:7 with lines lw 1.5 lc 1 dt (2,3) notitle
  unset multiplot
}
# compute roofs used (one core): f32 58 GMAC/s (vfmadd231ps zmm (avx512f)), bf16 116 GMAC/s (vdpbf16ps zmm (avx512-bf16)), int8 229 GMAC/s (vpdpbusd zmm (avx512-vnni))
