# The roofline of one core with each kernel as a point; written by towerrt bench --roofline --plot.
set logscale xy
set grid
set key below maxcolumns 3 noenhanced
set xlabel 'multiply-adds per byte of item rows / weights read (scalar kernels left out unless --include-scalar)'
set ylabel 'GMAC/s'
set xrange [0.1:1e3]
set yrange [1:906]
bw = 20.661
do for [fmt in 'png svg'] {
  if (fmt eq 'png') { set terminal png size 1200,800 } else { set terminal svg size 1200,800 dynamic background rgb 'white' }
  if (fmt eq 'png' && strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 1200,800 font ',10' }
  set output 'roofline-roofline.'.fmt
  set title "towerrt kernels against the roofs of one core: AMD EPYC\n(read bandwidth 20.7 GB/s from a 512 MiB buffer; L2-resident points sit left of the slope's reach)" noenhanced
  plot bw * x with lines lw 2 lc rgb 'black' dt 2 title sprintf('DRAM read %.1f GB/s', bw), \
       57.393 with lines lw 2 lc 1 title 'vfmadd231ps zmm (avx512f) 57 GMAC/s', \
       57.601 with lines lw 2 lc 2 title 'vfmadd231ps ymm (avx2+fma) 58 GMAC/s', \
       226.503 with lines lw 2 lc 3 title 'vpdpbusd zmm (avx512-vnni) 227 GMAC/s', \
       105.987 with lines lw 2 lc 4 title 'vpmaddubsw+vpmaddwd ymm (avx2) 106 GMAC/s', \
       116.302 with lines lw 2 lc 5 title 'vdpbf16ps zmm (avx512-bf16) 116 GMAC/s', \
       'roofline-roofline.dat' using 1:2 with points pt 7 ps 1.3 lc rgb '#c00000' title 'kernels (measured)', \
       '' using 1:2:($4 > 0 ? stringcolumn(3) : '') with labels left offset 1,0.4 font ',8' noenhanced notitle, \
       '' using 1:2:($4 < 0 ? stringcolumn(3) : '') with labels right offset -1,-0.4 font ',8' noenhanced notitle
}
