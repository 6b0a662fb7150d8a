// The reference Socket.IO server (socket.io 4.8.4 on Node) nbsocket's Socket.IO protocol is tested against.
//
//   node socketio_server.js [--port N] [--ping-interval MS] [--ping-timeout MS]
//
// Listens on 127.0.0.1 (port 0: a free one) and prints one line `listening <port>` once it accepts
// connections. Pings every second and waits two for the pong (the tests see several heart-beats). connectionStateRecovery is on (as in the socket.io docs), so every event the server
// emits without an ack carries its offset as an extra last argument, and a client that reconnects with
// the `pid` and `offset` it was given gets the events it missed.
//
// Namespace "/" (every socket joins the room "feed"):
//   record(...args)             recorded in /state "received" (bytes as {"$bytes": base64})
//   bin_echo(...args, ack)      acks with its arguments and emits them back as a "bin_echo" event
//   ask(payload)                socket.timeout(ms).emitWithAck("question", payload): the ack (or "timeout")
//                               goes to /state "acks"
//   numbers({count, interval_ms, drop_after, room})
//                               emits "number" {n} for n = 1..count to the room (default: this socket's id)
//                               every interval_ms; after drop_after of them the transport is torn down
//                               (TCP reset, no goodbye: a recoverable disconnect) and the emits go on
//   volatile_string(s)          socket.volatile.emit("plain", s): no offset is added to volatile events
// Namespace "/private": a middleware refuses any auth other than {token: "good"} with an Error whose
// message is "not authorized" and whose data is {code: 4031, hint: "send auth {token}"}.
// Both namespaces: echo(...args, ack) acks with its arguments; drop() tears the transport down at once.
//
// Control over plain HTTP on the same port (for the tests): GET /state -> JSON of what happened
// (received, acks, connections with recovered and the CONNECT auth the server saw, disconnects with
// their reasons, errors the parser raised).

"use strict";

const http = require("http");
const { Server } = require("socket.io");

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? Number(process.argv[at + 1]) : fallback;
}

const state = { received: [], acks: [], connections: [], disconnects: [], errors: [] };

function shown(value) {
  if (Buffer.isBuffer(value)) return { $bytes: value.toString("base64") };
  if (value instanceof ArrayBuffer) return { $bytes: Buffer.from(value).toString("base64") };
  if (ArrayBuffer.isView(value)) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
  if (Array.isArray(value)) return value.map(shown);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, shown(item)]));
  }
  return value;
}

const httpServer = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/state") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(state));
    return;
  }
  res.writeHead(404);
  res.end();
});

const io = new Server(httpServer, {
  pingInterval: option("--ping-interval", 1000),
  pingTimeout: option("--ping-timeout", 2000),
  connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true },
});

function track(socket) {
  state.connections.push({
    nsp: socket.nsp.name,
    id: socket.id,
    recovered: socket.recovered,
    auth: socket.handshake.auth,
  });
  socket.on("disconnect", (reason) => state.disconnects.push({ nsp: socket.nsp.name, id: socket.id, reason }));
  socket.on("error", (err) => state.errors.push({ nsp: socket.nsp.name, id: socket.id, message: String(err && err.message) }));
  socket.on("echo", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    state.received.push({ nsp: socket.nsp.name, event: "echo", args: shown(args) });
    if (ack) ack(...args);
  });
  socket.on("drop", () => drop(socket));
}

function drop(socket) {
  const transport = socket.conn && socket.conn.transport;
  if (transport && transport.socket && typeof transport.socket.terminate === "function") {
    transport.socket.terminate();
  } else {
    socket.conn.close();
  }
}

io.on("connection", (socket) => {
  track(socket);
  socket.join("feed");

  socket.on("record", (...args) => {
    state.received.push({ nsp: "/", event: "record", args: shown(args) });
  });

  socket.on("bin_echo", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    state.received.push({ nsp: "/", event: "bin_echo", args: shown(args) });
    socket.emit("bin_echo", ...args);
    if (ack) ack(...args);
  });

  socket.on("ask", async (payload, timeoutMs) => {
    try {
      const answer = await socket.timeout(timeoutMs || 2000).emitWithAck("question", payload);
      state.acks.push({ event: "question", ok: true, value: shown(answer) });
    } catch (err) {
      state.acks.push({ event: "question", ok: false, error: String(err && err.message) });
    }
  });

  socket.on("numbers", ({ count, interval_ms: intervalMs = 5, drop_after: dropAfter = -1, room } = {}) => {
    const target = room || socket.id;
    let n = 0;
    const timer = setInterval(() => {
      n += 1;
      io.to(target).emit("number", { n });
      if (n === dropAfter) drop(socket);
      if (n >= count) clearInterval(timer);
    }, intervalMs);
  });

  socket.on("volatile_string", (text) => socket.volatile.emit("plain", text));
});

const privateNamespace = io.of("/private");
privateNamespace.use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "good") {
    next();
    return;
  }
  const err = new Error("not authorized");
  err.data = { code: 4031, hint: "send auth {token}" };
  next(err);
});
privateNamespace.on("connection", track);

httpServer.listen(option("--port", 0), "127.0.0.1", () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
