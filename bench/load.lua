-- wrk script for every HTTP benchmark; BENCH_MODE picks the request:
--   order: POST a unique `order.paid` event (ids from BENCH_RUN, thread and counter) for
--          customer BENCH_CUSTOMER (default bm_) .. random(1, BENCH_COUNT)
--   first: the same, each of a customer the service has not seen (enrolled by the order)
--   path:  GET BENCH_PREFIX .. random(1, BENCH_COUNT)
--   token: GET BENCH_PREFIX with a random widget token from the file BENCH_TOKENS
--   post:  POST BENCH_PREFIX with an empty body
-- `done` prints one line, BENCH_RESULT {json}, that bench/infra.py reads.

local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("thread_no", next_thread)
  table.insert(threads, thread)
  next_thread = next_thread + 1
end

function init(args)
  mode = os.getenv("BENCH_MODE") or "path"
  run = os.getenv("BENCH_RUN") or "run"
  prefix = os.getenv("BENCH_PREFIX") or "/"
  count = tonumber(os.getenv("BENCH_COUNT") or "1")
  customer_prefix = os.getenv("BENCH_CUSTOMER") or "bm_"
  -- wrk calls request() once on its first thread to check the script and never sends that
  -- request: start that thread's count at -1 so `generated` counts requests really sent.
  generated = thread_no == 1 and -1 or 0
  math.randomseed(thread_no * 7919 + os.time())
  local key = os.getenv("BENCH_KEY")
  if key and key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. key
  end
  if mode == "token" then
    tokens = {}
    for line in io.lines(os.getenv("BENCH_TOKENS")) do
      table.insert(tokens, line)
    end
  end
  if mode == "order" or mode == "first" then
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
  end
  if mode == "post" then
    wrk.method = "POST"
  end
end

local order_body = '{"id":"evt_%s","type":"order.paid","occurred_at":"%s","order":' ..
  '{"id":"ord_%s","customer_id":"%s","email":"%s@example.com","currency":"USD",' ..
  '"lines":[{"sku":"SKU%d","quantity":%d,"unit_price":%d,"discount":0}],' ..
  '"shipping":500,"tax":800}}'

function request()
  generated = generated + 1
  if mode == "order" or mode == "first" then
    local id = run .. "_" .. thread_no .. "_" .. generated
    local customer = customer_prefix .. math.random(1, count)
    if mode == "first" then
      customer = "bn_" .. id
    end
    local body = string.format(order_body, id, os.date("!%Y-%m-%dT%H:%M:%SZ"), id, customer,
      customer, math.random(1, 50), math.random(1, 3), math.random(500, 9000))
    return wrk.format(nil, prefix, nil, body)
  elseif mode == "token" then
    local headers = {["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]}
    return wrk.format("GET", prefix, headers)
  elseif mode == "post" then
    return wrk.format(nil, prefix)
  end
  return wrk.format("GET", prefix .. math.random(1, count))
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("generated") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"non2xx":%d,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"generated":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect, e.read, e.write, e.timeout, total))
end
