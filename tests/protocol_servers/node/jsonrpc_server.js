// The reference JSON-RPC 2.0 peer nbsocket's `protocol="jsonrpc"` is tested against: json-rpc-2.0's
// JSONRPCServerAndClient (1.8.1) over `ws`, one peer per connection, as that library's README wires it.
//
//   node jsonrpc_server.js --port 0      prints "listening <port>" once it listens on 127.0.0.1
//
// Methods the client calls (params by position or by name where it makes sense):
//   add(a, b)                a + b
//   echo(params)             the params as they came
//   fail({code, message, data})   a JSONRPCErrorException: that code, message and data
//   throw({message})         a plain Error: the library answers code 0 with its message
//   sleep([seconds])         answers `seconds` after that long
//   notify_me({n, method, distinct})   answers n, then sends n notifications `method` with {"n": i}
//                            (with distinct: true, the i-th is named `${method}${i}`)
//   ask({method, params, null_id})     sends the CLIENT a request and reports what it answered:
//                            {"response": <the client's raw response>, "checks": {...}} (or {"timeout": true});
//                            null_id: true sends it with "id": null (the library's client cannot track that id,
//                            so the raw responses are watched here)
//   log(params)              as a notification: recorded, see logged()
//   logged()                 the params of every `log` notification this connection sent
//   calls()                  the methods this server was called with so far, over every connection, in order
//   drop_after({ms, code})   answers nothing; closes this connection (code 1012 unless given) after ms
//   connections()            how many connections were opened so far
//
// Anything the client sends that is not JSON is answered with the library's parse error (id null).
"use strict";

const { WebSocketServer } = require("ws");
const {
  JSONRPCClient,
  JSONRPCErrorException,
  JSONRPCServer,
  JSONRPCServerAndClient,
  isJSONRPCResponse,
} = require("json-rpc-2.0");

const ASK_TIMEOUT_MS = 5000;

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

const calls = [];
let connections = 0;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function serve(ws) {
  connections += 1;
  const logged = [];
  const responses = []; // every response the client sent, raw, oldest first
  const waiters = []; // {id, resolve} for ask()
  let nextRequest = 1;

  const peer = new JSONRPCServerAndClient(
    new JSONRPCServer({ errorListener: () => {} }),
    new JSONRPCClient((payload) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(payload));
    }),
    { errorListener: () => {} },
  );
  const method = (name, fn) =>
    peer.addMethod(name, (params) => {
      calls.push(name);
      return fn(params);
    });

  method("add", (params) => (Array.isArray(params) ? params[0] + params[1] : params.a + params.b));
  method("echo", (params) => params);
  method("fail", (params) => {
    throw new JSONRPCErrorException(params.message, params.code, params.data);
  });
  method("throw", (params) => {
    throw new Error(params.message);
  });
  method("sleep", async (params) => {
    await sleep(params[0] * 1000);
    return params[0];
  });
  method("notify_me", (params) => {
    const n = params.n ?? 1;
    const name = params.method ?? "tick";
    setImmediate(() => {
      for (let i = 1; i <= n; i++) peer.notify(params.distinct ? `${name}${i}` : name, { n: i });
    });
    return n;
  });
  method("ask", async (params) => {
    const id = params.null_id ? null : `srv-${nextRequest++}`;
    const request = { jsonrpc: "2.0", id, method: params.method };
    if (params.params !== undefined) request.params = params.params;
    const answered = new Promise((resolve) => waiters.push({ id, resolve }));
    ws.send(JSON.stringify(request));
    const response = await Promise.race([answered, sleep(ASK_TIMEOUT_MS).then(() => null)]);
    if (response === null) return { timeout: true };
    const checks = {
      is_response: isJSONRPCResponse(response),
      id_matches: response.id === id,
      has_result: "result" in response,
      has_error: "error" in response,
      error_code_is_integer: response.error ? Number.isInteger(response.error.code) : null,
      error_message_is_string: response.error ? typeof response.error.message === "string" : null,
    };
    return { response, checks };
  });
  method("log", (params) => {
    logged.push(params);
    return null;
  });
  method("logged", () => logged);
  method("calls", () => calls);
  method("connections", () => connections);
  method("drop_after", (params) => {
    setTimeout(() => ws.close(params.code ?? 1012, "dropped on purpose"), params.ms ?? 0);
    return new Promise(() => {}); // never answered
  });

  ws.on("message", async (data) => {
    let payload;
    try {
      payload = JSON.parse(data.toString());
    } catch {
      ws.send(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } }));
      return;
    }
    for (const item of Array.isArray(payload) ? payload : [payload]) {
      if (item && typeof item === "object" && isJSONRPCResponse(item)) {
        responses.push(item);
        const at = waiters.findIndex((w) => w.id === item.id);
        if (at >= 0) waiters.splice(at, 1)[0].resolve(item);
      }
    }
    try {
      await peer.receiveAndSend(payload);
    } catch {
      // an invalid JSON-RPC message: the library only reports it (errorListener) and answers nothing
    }
  });
  ws.on("close", () => peer.rejectAllPendingRequests("connection closed"));
}

const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(option("--port", "0")) });
wss.on("connection", serve);
wss.on("listening", () => process.stdout.write(`listening ${wss.address().port}\n`));
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    for (const client of wss.clients) client.terminate();
    wss.close(() => process.exit(0));
  });
}
