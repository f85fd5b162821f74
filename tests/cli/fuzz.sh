# fuzz.sh - the libFuzzer targets of tests/fuzz/ inside tests/run: built with
# `ninja fuzz` (clang), each replays its committed corpus and then fuzzes
# for $FUZZ_SECONDS (20) seconds; see tests/fuzz/run. The targets carry
# their own ASan+UBSan build, so they run in the release pass only and the
# sanitizer pass says so in one line.
case ${MQLUA_BUILD:-build} in
*build-asan*)
	echo "ok - fuzz.sh: the fuzz targets run in the release pass only (they are ASan+UBSan builds themselves)"
	exit 0
	;;
esac
exec tests/fuzz/run
