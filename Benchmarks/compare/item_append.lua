-- wrk: single-event ItemAdded appends (the orders/skus/streams projections of projections.sh
-- handle them), 1,000 streams per thread. DELAY_MS (environment) paces each connection: about
-- connections * 1000 / DELAY_MS appends/s in all (the live benchmark's background load).
local counter = 0
local tid = 0
local n = 0
local pause = tonumber(os.getenv("DELAY_MS") or "0")
function setup(thread) thread:set("tid", n); n = n + 1 end
request = function()
  counter = counter + 1
  local s = tid .. "-" .. (counter % 1000)
  local body = '{"events":[{"type":"ItemAdded","data":{"orderId":"bg' .. s .. '","sku":"s' .. (counter % 50) .. '","price":1.5}}]}'
  return wrk.format("POST", "/v1/streams/bg-" .. s, {["Content-Type"] = "application/json"}, body)
end
if pause > 0 then delay = function() return pause end end
local bad = 0
response = function(status) if status ~= 201 then bad = bad + 1; if bad < 5 then io.stderr:write("status " .. status .. "\n") end end end
