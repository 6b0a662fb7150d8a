// The reference GraphQL-over-WebSocket server nbsocket's `protocol="graphql-ws"` is tested against: graphql-ws
// (6.4.2, graphql-transport-ws) `useServer` on a `ws` WebSocketServer, with graphql 16.
//
//   node graphql_server.js --port 0      prints "listening <port>" once it listens on 127.0.0.1
//
// connection_init must carry {"token": "good"}; anything else is refused with 4403 Forbidden (onConnect).
// Schema:
//   query    hello(name)             "Hello, <name or world>!"
//            fail(message)           a resolver error (data null, errors [{message}])
//            slow(ms)                answers ms after that long
//            connections             connections opened so far
//            operations              every operation id this server started, over all connections, in order
//   mutation add(a, b)               a + b
//            drop(afterMs, code)     true; then closes this connection (code 1012 unless given) after afterMs
//            raw(text, afterMs)      true; then sends `text` as is on this connection after afterMs
//                                    (messages a test needs the server to send: unknown ids, malformed ones)
//   subscription ticks(n, delayMs)   {n: 1..n}, delayMs apart
//            boom(after)             `after` ticks, then an error from the source stream
"use strict";

const { WebSocketServer } = require("ws");
const { useServer } = require("graphql-ws/use/ws");
const { buildSchema } = require("graphql");

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const schema = buildSchema(`
  type Query {
    hello(name: String): String!
    fail(message: String!): String
    slow(ms: Int!): Int!
    connections: Int!
    operations: [String!]!
  }
  type Mutation {
    add(a: Int!, b: Int!): Int!
    drop(afterMs: Int, code: Int): Boolean!
    raw(text: String!, afterMs: Int): Boolean!
  }
  type Tick { n: Int! }
  type Subscription {
    ticks(n: Int!, delayMs: Int): Tick!
    boom(after: Int!): Tick!
  }
`);

let connections = 0;
const operations = [];

const roots = {
  query: {
    hello: ({ name }) => `Hello, ${name ?? "world"}!`,
    fail: ({ message }) => {
      throw new Error(message);
    },
    slow: async ({ ms }) => {
      await sleep(ms);
      return ms;
    },
    connections: () => connections,
    operations: () => operations,
  },
  mutation: {
    add: ({ a, b }) => a + b,
    drop: ({ afterMs, code }, ctx) => {
      setTimeout(() => ctx.extra.socket.close(code ?? 1012, "dropped on purpose"), afterMs ?? 0);
      return true;
    },
    raw: ({ text, afterMs }, ctx) => {
      setTimeout(() => ctx.extra.socket.send(text), afterMs ?? 0);
      return true;
    },
  },
  subscription: {
    ticks: async function* ({ n, delayMs }) {
      for (let i = 1; i <= n; i++) {
        if (delayMs) await sleep(delayMs);
        yield { ticks: { n: i } };
      }
    },
    boom: async function* ({ after }) {
      for (let i = 1; i <= after; i++) yield { boom: { n: i } };
      throw new Error("boom");
    },
  },
};

const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(option("--port", "0")) });
wss.on("connection", () => {
  connections += 1;
});
useServer(
  {
    schema,
    roots,
    context: (ctx) => ctx,
    onConnect: (ctx) => ctx.connectionParams?.token === "good",
    onSubscribe: (ctx, id) => {
      operations.push(id);
    },
  },
  wss,
);
wss.on("listening", () => process.stdout.write(`listening ${wss.address().port}\n`));
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    for (const client of wss.clients) client.terminate();
    wss.close(() => process.exit(0));
  });
}
