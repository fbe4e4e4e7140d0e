# Latency and throughput versus candidates per request; written by towerrt bench --plot.
# Run from this folder: gnuplot dims.gp
datafile = 'dims.dat'
titles = "precision=f32/threads=1 precision=f32/threads=2 precision=bf16/threads=1 precision=bf16/threads=2 precision=int8/threads=1 precision=int8/threads=2"
n = 6
set logscale x
set grid
set key outside right top noenhanced
set xlabel 'candidates per request (k)'
set format x '10^{%L}'
png = (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) ? 'pngcairo' : 'png'
do for [fmt in 'png svg'] {
  if (fmt eq 'png') { set terminal png size 1200,650 } else { set terminal svg size 1200,650 dynamic background rgb 'white' }
  if (fmt eq 'png' && png eq 'pngcairo') { set terminal pngcairo size 1200,650 }
  set title "towerrt request latency (p50 solid, p99 dashed) - AMD EPYC" noenhanced
  set ylabel 'latency (ms)'
  set logscale y
  set output 'dims-latency.'.fmt
  plot for [i=0:n-1] datafile index i using 1:($2/1000) with linespoints lw 2 lc i+1 dt 1 title word(titles, i+1).' p50', \
       for [i=0:n-1] datafile index i using 1:($4/1000) with linespoints lw 1 lc i+1 dt 2 title word(titles, i+1).' p99'
  set title "towerrt throughput (candidates per second, one request at a time) - AMD EPYC" noenhanced
  set ylabel 'candidates per second'
  set output 'dims-throughput.'.fmt
  plot for [i=0:n-1] datafile index i using 1:6 with linespoints lw 2 lc i+1 title word(titles, i+1)
}
