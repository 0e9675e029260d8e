-- wrk script: POST /login with fixed, correct credentials, as fast as the connections allow.
--
-- Credentials come from the environment (set by bench/run.sh):
--   BENCH_LOGIN_USER, BENCH_LOGIN_PASSWORD
--   BENCH_LOGIN_CSRF    optional: the sign-in form's csrf_token, sent as a form field
--   BENCH_LOGIN_COOKIE  optional: a Cookie header value (the pre-session cookie the token is bound to)
-- A successful sign-in answers 303 (redirect to /private) with a Set-Cookie; anything else is a
-- failure. Status counting and the BENCH/STATUS summary lines come from status.lua.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "status.lua")

local function urlencode(s)
   return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local user = os.getenv("BENCH_LOGIN_USER")
local password = os.getenv("BENCH_LOGIN_PASSWORD")
if not user or not password then
   error("login.lua needs BENCH_LOGIN_USER and BENCH_LOGIN_PASSWORD in the environment")
end

wrk.method = "POST"
wrk.body = "username=" .. urlencode(user) .. "&password=" .. urlencode(password)
local csrf = os.getenv("BENCH_LOGIN_CSRF") or ""
if csrf ~= "" then
   wrk.body = wrk.body .. "&csrf_token=" .. urlencode(csrf)
end
local cookie = os.getenv("BENCH_LOGIN_COOKIE") or ""
if cookie ~= "" then
   wrk.headers["Cookie"] = cookie
end
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
