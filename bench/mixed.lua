-- bench/mixed.lua: wrk script for bench/soak: one POST /v1/jobs for every
-- three GET /v1/jobs/{id} (ids of the jobs this run created, else 1).
-- Statuses other than 200/201 and the 503s of a full queue are counted as
-- errors; done() prints "soak-result {json}" for bench/soak.

local n = 0
local maxid = tonumber(os.getenv("SOAK_MAXID") or "1")
local body = '{"repo":"https://git.example.com/app.git","ref":"main",' ..
	'"targets":["linux/amd64","linux/arm64"]}'
counts = {}
local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	counts = {}
end

function request()
	n = n + 1
	if n % 4 == 0 then
		return wrk.format("POST", "/v1/jobs",
			{ ["Content-Type"] = "application/json" }, body)
	end
	return wrk.format("GET", "/v1/jobs/" .. math.random(1, maxid))
end

function response(status, headers, body)
	counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
	local total = {}
	for _, t in ipairs(threads) do
		local c = t:get("counts")
		for k, v in pairs(c) do
			total[k] = (total[k] or 0) + v
		end
	end
	local parts = {}
	for k, v in pairs(total) do
		table.insert(parts, string.format('"%d":%d', k, v))
	end
	io.write(string.format('soak-result {"requests":%d,"duration_us":%d,' ..
		'"p50_us":%d,"p99_us":%d,"socket_errors":%d,"status":{%s}}\n',
		summary.requests, summary.duration, latency:percentile(50),
		latency:percentile(99), summary.errors.connect +
		summary.errors.read + summary.errors.write +
		summary.errors.timeout, table.concat(parts, ",")))
end
