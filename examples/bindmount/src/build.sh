#!/bin/sh
# A stand-in for a real build: it reads the sources and writes one artifact.
set -e
mkdir -p /out
{
	echo "sources: $(ls /src | wc -l) files"
	echo "lines of words.txt: $(wc -l < /src/words.txt)"
	echo "longest word: $(awk '{ if (length($0) > length(w)) w = $0 } END { print w }' /src/words.txt)"
} > /out/report.txt
