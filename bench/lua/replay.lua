-- Replays random requests from a file, counts answers by status, prints one JSON line.
-- The file (env BENCH_REQUESTS) has one request a line: METHOD<TAB>PATH<TAB>TOKEN<TAB>BODY
-- (TOKEN and BODY may be empty). Every scenario uses this script, so the client's own cost
-- is the same in each. BENCH_COUNT_HEADER (optional) names a response header whose values
-- are counted too (e.g. X-Cache-Status), looked up by its exact name.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    table.insert(fields, field)
  end
  return fields
end

function init(args)
  statuses = {}
  tags = {}
  requests = {}
  counted = os.getenv("BENCH_COUNT_HEADER")
  if counted == "" then counted = nil end
  local path = os.getenv("BENCH_REQUESTS")
  local extra = os.getenv("BENCH_HEADER")  -- "Name: value", optional
  for line in io.lines(path) do
    local f = split(line)
    local headers = {}
    if f[3] ~= nil and f[3] ~= "" then
      headers["Authorization"] = "Bearer " .. f[3]
    end
    if extra ~= nil and extra ~= "" then
      local name, value = extra:match("^([^:]+):%s*(.*)$")
      headers[name] = value
    end
    local body = nil
    if f[4] ~= nil and f[4] ~= "" then
      body = f[4]
      headers["Content-Type"] = "application/json"
    end
    table.insert(requests, wrk.format(f[1], f[2], headers, body))
  end
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end

function request()
  return requests[math.random(#requests)]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if counted then
    local value = headers[counted] or "-"
    tags[value] = (tags[value] or 0) + 1
  end
end

local function merged(name)
  local total = {}
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get(name)) do
      total[key] = (total[key] or 0) + n
    end
  end
  return total
end

function done(summary, latency, requests)
  local parts = {}
  for status, n in pairs(merged("statuses")) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  local tagged = {}
  for value, n in pairs(merged("tags")) do
    table.insert(tagged, string.format('"%s": %d', value:gsub('[^%w%-_. ]', '?'), n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"statuses": {%s}, "tags": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout,
    table.concat(parts, ", "), table.concat(tagged, ", ")))
end
