# plot.gp - p50 login cost against store size, for bench.sh.
# gnuplot -e "datafile='…'; outfile='…'; permit=N; google=N" plot.gp
set terminal pngcairo size 900,540 font ",11" noenhanced
set output outfile
set title "Full PAM transaction (pam_start_confdir, authenticate, acct_mgmt, pam_end), p50"
set xlabel "keys in the store"
set ylabel "microseconds"
set logscale x
set xrange [500:2000000]
set yrange [0:*]
set key top left
set grid ytics
set format x "%.0s%c"
plot datafile using 1:2 with linespoints lw 2 pt 7 title "pam_viamkey, valid key", \
     datafile using 1:3 with linespoints lw 2 pt 5 title "pam_viamkey, wrong secret", \
     datafile using 1:4 with linespoints lw 2 pt 9 title "pam_viamkey, unknown key", \
     datafile using 1:5 with linespoints lw 2 pt 13 title "pam_vkref (reference), valid key", \
     google with lines lw 2 dt 2 title "pam_google_authenticator (TOTP)", \
     permit with lines lw 2 dt 3 title "pam_permit (floor)"
