-- wrk script: a read-heavy mix through the gateway. Half the requests load
-- the front page (GET /api/v1/articles?limit=20), half one article with its
-- author, count and latest comments (GET /api/v1/articles/{id}) for a random
-- id in 1..ARTICLES.
local articles = tonumber(os.getenv("ARTICLES") or "200")
local n = 0

request = function()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format("GET", "/api/v1/articles?limit=20")
  end
  return wrk.format("GET", "/api/v1/articles/" .. math.random(1, articles))
end
