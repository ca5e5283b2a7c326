-- wrk: GET /v1/streams/read-{n}, n over the STREAMS streams (default 100) stream-read.sh seeded:
-- a page of a stream with its version, as a client loading an aggregate reads it.
local streams = tonumber(os.getenv("STREAMS") or "100")
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/v1/streams/read-" .. (counter % streams))
end
local bad = 0
response = function(status) if status ~= 200 then bad = bad + 1; if bad < 5 then io.stderr:write("status " .. status .. "\n") end end end
