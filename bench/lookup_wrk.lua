-- wrk script of bench/lookup.py (one script for every target, so wrk does the same work per
-- response whatever it measures: each body is checked for an expected piece of text).
--
--   wrk -t2 -c16 -d20s -s bench/lookup_wrk.lua URL -- get EXPECTED [COOKIE]
--   wrk -t2 -c16 -d20s -s bench/lookup_wrk.lua URL -- post EXPECTED INVOICES
--   wrk -t2 -c16 -d20s -s bench/lookup_wrk.lua URL -- api EXPECTED INVOICES API_TOKEN
--
-- "get" sends the same GET to URL, with the Cookie header COOKIE if given. "post" sends
-- POST /lookup for a random registered invoice n in 1..INVOICES with the fields its holder
-- would type, as a browser on the page sends it (no cookie, no token: the form is sessionless;
-- Sec-Fetch-Site: same-origin); "api" the same fields as JSON to POST /api/v1/lookup with the
-- bearer token. The formulas are those of bench/lookup_seed.py: number %08d of n, issue date
-- 2025-01-01 + (n mod 365) days, last 6 of the check code (n * 7919) mod 10^6, and n mod 20 = 0
-- is pending (skipped here).
-- A response that is not 200 or lacks EXPECTED counts as "unexpected". At the end one line
-- "WRK_JSON {...}" gives the counts and latency percentiles in microseconds.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

local function invoice()
  local n = math.random(1, invoices)
  if n % 20 == 0 then
    n = n - 1
  end
  return n, os.date("!%Y-%m-%d", 1735689600 + (n % 365) * 86400), (n * 7919) % 1000000
end

local function lookup_request()
  local n, date, check = invoice()
  local body = string.format(
    "code=011002600111&number=%08d&issue_date=%s&check_code_last6=%06d", n, date, check
  )
  return wrk.format("POST", "/lookup", nil, body)
end

local function api_request()
  local n, date, check = invoice()
  local body = string.format(
    '{"code":"011002600111","number":"%08d","issue_date":"%s","check_code_last6":"%06d"}',
    n, date, check
  )
  return wrk.format("POST", "/api/v1/lookup", nil, body)
end

function init(args)
  mode = args[1]
  expected = args[2]
  unexpected = 0
  first_unexpected = ""
  math.randomseed(id * 7919 + os.time())
  if mode == "get" and args[3] then
    wrk.headers["Cookie"] = args[3]
  end
  if mode == "post" then
    invoices = tonumber(args[3])
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    wrk.headers["Sec-Fetch-Site"] = "same-origin"
    request = lookup_request
  end
  if mode == "api" then
    invoices = tonumber(args[3])
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Authorization"] = "Bearer " .. args[4]
    request = api_request
  end
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, expected, 1, true) then
    unexpected = unexpected + 1
    if first_unexpected == "" then
      first_unexpected = tostring(status) .. " " .. string.sub(body or "", 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local bad = 0
  local sample = ""
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("unexpected")
    local first = thread:get("first_unexpected")
    if sample == "" and first ~= "" then
      sample = first
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, '
      .. '"unexpected": %d, "mean": %.1f, "p50": %d, "p90": %d, "p95": %d, "p99": %d, '
      .. '"max": %d, "sample": "%s"}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, bad, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max,
    (string.gsub(sample, '[%c"\\]', " "))
  ))
end
