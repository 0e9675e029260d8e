-- wrk script: count every response by HTTP status and print a machine-readable summary.
--
-- wrk itself only counts statuses > 399 as errors ("Non-2xx or 3xx responses"), so a 303
-- redirect to the sign-in page would look like a success. This script counts each status
-- per thread and prints, after the run:
--
--   BENCH requests=<n> duration_s=<s> rps=<r> p50_ms=<..> p90_ms=<..> p99_ms=<..> max_ms=<..>
--         err_connect=<n> err_read=<n> err_write=<n> err_timeout=<n> err_status=<n>
--   STATUS <code> <count>        (one line per status seen)
--
-- bench/run.sh parses those lines; wrk's usual human-readable report is printed before them.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   statuses = {}
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local ms = function(us) return string.format("%.3f", us / 1000) end
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%s p90_ms=%s p99_ms=%s max_ms=%s " ..
      "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d\n",
      summary.requests, secs, summary.requests / secs,
      ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
      ms(latency.max), e.connect, e.read, e.write, e.timeout, e.status))
   local total = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses") or {}
      for code, n in pairs(counts) do
         total[code] = (total[code] or 0) + n
      end
   end
   local codes = {}
   for code in pairs(total) do table.insert(codes, code) end
   table.sort(codes)
   for _, code in ipairs(codes) do
      io.write(string.format("STATUS %d %d\n", code, total[code]))
   end
end
