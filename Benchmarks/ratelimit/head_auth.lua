-- wrk: GET /v1/events/head with a bearer token (MINK_TOKEN): the cheapest authenticated request.
local token = os.getenv("MINK_TOKEN")
request = function()
  return wrk.format("GET", "/v1/events/head", {["Authorization"] = "Bearer " .. token})
end
local bad = 0
response = function(status) if status ~= 200 then bad = bad + 1; if bad < 5 then io.stderr:write("status " .. status .. "\n") end end end
