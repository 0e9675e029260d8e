-- wrk script: renewal throughput. Each wrk thread drives one chain of refresh-token renewals on
-- its own connection (run with -t N -c N): POST /api/token/refresh with the chain's current
-- refresh token, then the refresh token of the answer, and so on. Every request is a real
-- renewal (a conditional update, an insert, the session read and a token signed); a chain that
-- sent a used value would end its session and see 401s, which the STATUS lines would show.
--
-- BENCH_REFRESH_FILE names a file with one starting refresh token per line (one per thread).
-- The summary lines are status.lua's (loaded from BENCH_DIR).

dofile(os.getenv("BENCH_DIR") .. "/status.lua")

local count = 0
local base_setup = setup

function setup(thread)
   count = count + 1
   thread:set("chain", count)
   base_setup(thread)
end

function init(args)
   statuses = {}
   local i = 0
   for line in io.lines(os.getenv("BENCH_REFRESH_FILE")) do
      i = i + 1
      if i == chain then refresh = line end
   end
end

function request()
   return wrk.format("POST", "/api/token/refresh", { ["Content-Type"] = "application/json" },
      '{"refresh_token":"' .. refresh .. '"}')
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   local next_value = body:match('"refresh_token":"(lkr_[^"]+)"')
   if next_value then refresh = next_value end
end
