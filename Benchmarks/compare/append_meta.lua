-- wrk: single-event appends with metadata (correlation, user, custom), 10,000 streams per thread.
local counter = 0
local tid = 0
local n = 0
function setup(thread) thread:set("tid", n); n = n + 1 end
request = function()
  counter = counter + 1
  local body = '{"events":[{"type":"Benchmarked","metadata":{"correlationId":"corr-' .. counter .. '","userId":"user-7","custom":{"source":"bench","region":"eu"}},"data":{"n":' .. counter .. ',"note":"a small payload"}}]}'
  return wrk.format("POST", "/v1/streams/bench-" .. tid .. "-" .. (counter % 10000), {["Content-Type"] = "application/json"}, body)
end
local bad = 0
response = function(status) if status ~= 201 then bad = bad + 1; if bad < 5 then io.stderr:write("status " .. status .. "\n") end end end
