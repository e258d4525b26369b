-- bench/get.lua: wrk script for GET /v1/jobs/{id} (used by bench/ingest).
--
--   KILN_MAX_ID=12345 wrk -t2 -c64 -d10s --latency -s bench/get.lua \
--       http://127.0.0.1:PORT
--   wrk ... -s bench/get.lua http://127.0.0.1:PORT -- 12345
--
-- Each request asks for a job id drawn uniformly from 1..MAX (the wrk
-- argument after "--", else $KILN_MAX_ID, else 1), so the reads spread over
-- the jobs already in the database instead of hitting one cached row.
-- Anything but 200 is counted and reported by done(), which also prints
-- one machine-readable line, "wrk-result {...json...}", for bench/ingest
-- (latencies in microseconds).

expected = 200
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

function init(args)
	max_id = tonumber(args[1] or os.getenv("KILN_MAX_ID") or "1") or 1
	if max_id < 1 then
		max_id = 1
	end
	math.randomseed(os.time() * 1000 + (thread_no or 0))
	reset_counts()
end

function request()
	return wrk.format("GET", "/v1/jobs/" .. math.random(1, max_id))
end
