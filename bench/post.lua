-- bench/post.lua: wrk script for POST /v1/jobs (used by bench/ingest).
--
--   wrk -t2 -c64 -d10s --latency -s bench/post.lua http://127.0.0.1:PORT/v1/jobs
--
-- Every request submits the same realistic job.  A 201 is the only success:
-- kilnd answers 201 once the job is committed to its database.  Any other
-- status is counted (per status code) and reported by done(), with the first
-- such response's body.  done() also prints one machine-readable line,
--   wrk-result {...json...}
-- that bench/ingest reads (latencies in microseconds).

wrk.method = "POST"
wrk.body = '{"repo":"https://git.example.com/app.git","ref":"main",' ..
	'"targets":["linux/amd64","linux/arm64","linux/arm/v7"]}'
wrk.headers["Content-Type"] = "application/json"

expected = 201
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

function init(args)
	reset_counts()
end
