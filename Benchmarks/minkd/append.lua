-- wrk script: single-event appends, each request to its own stream (expectedVersion "any").
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  counter = 0
end

request = function()
  counter = counter + 1
  local path = "/v1/streams/bench-" .. tid .. "-" .. (counter % 1000)
  local body = '{"events":[{"type":"Benchmarked","data":{"n":' .. counter .. ',"note":"a small payload"}}]}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end

response = function(status, headers, body)
  if status ~= 201 then
    io.stderr:write("unexpected status " .. status .. "\n")
  end
end
