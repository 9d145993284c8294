-- wrk script for `make bench`: the news-site mix of loadtest/locustfile.py,
-- against a gateway seeded by `loadgen seed` (scripts/bench.sh).
--
--   MIX=mix   (default) per 1000 requests: 480 article lists, 330 articles,
--             150 comment lists, 20 comment writes, 18 article writes,
--             2 logins (argon2 is deliberately slow, so logins stay rare)
--   MIX=list  only GET /api/v1/articles?limit=20
--
-- Environment from `loadgen seed`: BENCH_TOKEN, BENCH_USERNAME,
-- BENCH_PASSWORD, BENCH_ARTICLE_MIN, BENCH_ARTICLE_MAX.
-- done() prints one line scripts/bench.sh parses:
--   RESULT rps=… p50_ms=… p90_ms=… p99_ms=… max_ms=… requests=… errors=…

local mix = os.getenv("MIX") or "mix"
local token = os.getenv("BENCH_TOKEN") or ""
local username = os.getenv("BENCH_USERNAME") or ""
local password = os.getenv("BENCH_PASSWORD") or ""
local first = tonumber(os.getenv("BENCH_ARTICLE_MIN") or "1")
local last = tonumber(os.getenv("BENCH_ARTICLE_MAX") or "1")

local LIST = "/api/v1/articles?limit=20"
local json = { ["Content-Type"] = "application/json" }
local authed = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }

local threads = 0
function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

local written = 0
function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
end

local function article()
  return math.random(first, last)
end

function request()
  if mix == "list" then
    return wrk.format("GET", LIST)
  end
  local roll = math.random(1000)
  if roll <= 480 then
    return wrk.format("GET", LIST)
  elseif roll <= 810 then
    return wrk.format("GET", "/api/v1/articles/" .. article())
  elseif roll <= 960 then
    return wrk.format("GET", "/api/v1/articles/" .. article() .. "/comments?limit=20")
  elseif roll <= 980 then
    written = written + 1
    return wrk.format("POST", "/api/v1/articles/" .. article() .. "/comments", authed,
      '{"body":"A comment written under load, number ' .. written .. '."}')
  elseif roll <= 998 then
    written = written + 1
    return wrk.format("POST", "/api/v1/articles", authed,
      '{"title":"Written under load ' .. written .. '","body":"Markets moved while the benchmark ran."}')
  else
    return wrk.format("POST", "/api/v1/sessions", json,
      '{"username":"' .. username .. '","password":"' .. password .. '"}')
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    "RESULT rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, errors))
end
