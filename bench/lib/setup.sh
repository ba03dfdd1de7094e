# bench/lib/setup.sh: set-up shared by the bench scripts (sourced from the
# repository root, after the script's `cd`).

# omniglot_zips: $data, the Omniglot folder (ML_DATA_DIR, default
# ../shared/data), and $zips, its two background sets as one --dataset list.
omniglot_zips() {
  data="${ML_DATA_DIR:-../shared/data}/omniglot"
  zips="$data/images_background_small1.zip,$data/images_background_small2.zip"
}

# ab_copies A_BIN B_BIN: $tmp, a folder removed at exit, holding copies of the
# two binaries as $tmp/A and $tmp/B, so that a rebuild while an A/B runs
# changes neither side.
ab_copies() {
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp "$1" "$tmp/A"
  cp "$2" "$tmp/B"
}
