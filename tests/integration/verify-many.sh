#!/bin/bash
# "verify": "rebuild" where the second build differs in many files with
# long names: kiln-worker's status line names as many as fit in the line
# kilnd reads and counts the others, so the target succeeds as
# unreproducible, naming the first files, instead of failing for want of
# a result.
. "$(dirname "$0")/lib.sh"

command -v git >/dev/null || { echo "SKIP: git missing"; exit 77; }
GO_REPO=$(make_repo go-hello "$SRCDIR/tests/fixtures/go-hello")
start_kilnd -w 1

# 150 files whose names are 60 bytes long, each with the time in it.
post_job "{\"repo\": \"$GO_REPO\", \"ref\": \"main\", \"verify\": \"rebuild\",
    \"targets\": [\"linux/amd64\"], \"recipe\": {\"kind\": \"command\",
    \"command\": \"for i in \$(seq 100 249); do date +%s%N > /out/a-rather-long-file-name-that-differs-on-each-build-\$i.txt; done\"}}"
expect_status 201 "the job is accepted"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 300
expect_json .state succeeded "an unreproducible build with many differences still succeeds"
expect_json '.targets[0].reproducible' false "it is unreproducible"
expect_json '.targets[0].differences | length > 0' true "differing files are named"
expect_json '.targets[0].differences[0]' \
	a-rather-long-file-name-that-differs-on-each-build-100.txt \
	"the first in byte order comes first"
expect_json '(.targets[0].differences | length) + .targets[0].more_differences' \
	150 "the others are counted"
finish
