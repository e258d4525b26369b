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

local expected = 201
local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	ok = 0          -- per thread (each wrk thread has its own Lua state)
	bad = 0
	bad_status = {}
	first_bad = nil
end

function response(status, headers, body)
	if status == expected then
		ok = ok + 1
	else
		bad = bad + 1
		bad_status[status] = (bad_status[status] or 0) + 1
		if first_bad == nil then
			first_bad = status .. " " .. string.sub(body or "", 1, 200)
		end
	end
end

-- Shared with get.lua (kept inline: wrk loads exactly one script).
local function json_string(s)
	s = string.gsub(s, '[%c"\\]', function(c)
		return string.format("\\u%04x", string.byte(c))
	end)
	return '"' .. s .. '"'
end

function done(summary, latency, requests)
	local total_ok, total_bad, statuses, first = 0, 0, {}, nil
	for _, t in ipairs(threads) do
		total_ok = total_ok + (t:get("ok") or 0)
		total_bad = total_bad + (t:get("bad") or 0)
		for code, n in pairs(t:get("bad_status") or {}) do
			statuses[code] = (statuses[code] or 0) + n
		end
		first = first or t:get("first_bad")
	end
	local parts = {}
	for code, n in pairs(statuses) do
		table.insert(parts, string.format('"%d":%d', code, n))
	end
	local e = summary.errors
	if total_bad > 0 then
		io.write(string.format("non-%d responses: %d", expected, total_bad))
		for code, n in pairs(statuses) do
			io.write(string.format(" [%d: %d]", code, n))
		end
		io.write("\nfirst one: " .. (first or "?") .. "\n")
	end
	io.write(string.format('wrk-result {"expected":%d,"duration_us":%d,' ..
		'"requests":%d,"ok":%d,"bad":%d,"bad_status":{%s},' ..
		'"first_bad":%s,"errors":{"connect":%d,"read":%d,"write":%d,' ..
		'"status":%d,"timeout":%d},"latency_us":{"mean":%.1f,' ..
		'"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
		expected, summary.duration, summary.requests, total_ok,
		total_bad, table.concat(parts, ","),
		json_string(first or ""), e.connect, e.read, e.write,
		e.status, e.timeout, latency.mean, latency.max,
		latency:percentile(50), latency:percentile(90),
		latency:percentile(99), latency:percentile(99.9)))
end
