-- bench/report.lua: what post.lua and get.lua share.  Loaded with
-- dofile() by each of them after it sets `expected` (the status that
-- counts as success); defines wrk's setup(), response() and done().
local threads = {}

local counter = 0

function setup(thread)
	counter = counter + 1
	thread:set("thread_no", counter)
	table.insert(threads, thread)
end

-- Per-thread counters (each wrk thread has its own Lua state).
function reset_counts()
	ok = 0
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
