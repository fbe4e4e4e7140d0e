# The roofline of one core with each kernel as a point; written by towerrt bench --roofline --plot.
set logscale xy
set grid
set key below maxcolumns 3 noenhanced
set xlabel 'multiply-adds per byte of item rows / weights read (scalar kernels left out unless --include-scalar)'
set ylabel 'GMAC/s'
set xrange [0.1:1e3]
set yrange [1:423]
bw = 22.635
do for [fmt in 'png svg'] {
  if (fmt eq 'png') { set terminal png size 1200,800 } else { set terminal svg size 1200,800 dynamic background rgb 'white' }
  if (fmt eq 'png' && strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 1200,800 font ',10' }
  set output 'roofline-avx2-roofline.'.fmt
  set title "towerrt kernels against the roofs of one core: AMD EPYC, TOWERRT_ISA=avx2\n(read bandwidth 22.6 GB/s from a 512 MiB buffer; L2-resident points sit left of the slope's reach)" noenhanced
  plot bw * x with lines lw 2 lc rgb 'black' dt 2 title sprintf('DRAM read %.1f GB/s', bw), \
       57.720 with lines lw 2 lc 1 title 'vfmadd231ps ymm (avx2+fma) 58 GMAC/s', \
       105.740 with lines lw 2 lc 2 title 'vpmaddubsw+vpmaddwd ymm (avx2) 106 GMAC/s', \
       'roofline-avx2-roofline.dat' using 1:2 with points pt 7 ps 1.3 lc rgb '#c00000' title 'kernels (measured)', \
       '' using 1:2:($4 > 0 ? stringcolumn(3) : '') with labels left offset 1,0.4 font ',8' noenhanced notitle, \
       '' using 1:2:($4 < 0 ? stringcolumn(3) : '') with labels right offset -1,-0.4 font ',8' noenhanced notitle
}
