// The reference libraries' own message checks, asked line by line: the oracle of nbsocket's property tests.
//
//   node oracle.js      then one JSON request per stdin line, one JSON answer per stdout line:
//
//   {"graphql": "<text>"}    graphql-ws 6.4.2's parseMessage (JSON.parse + validateMessage) ->
//                            {"valid": true, "type": ...} or {"valid": false, "reason": "<its error message>"}
//   {"jsonrpc": "<text>"}    json-rpc-2.0 1.8.1's classification of a parsed payload (an object or a batch) ->
//                            {"request": isJSONRPCRequest, "response": isJSONRPCResponse} (arrays: of every member)
//                            or {"json": false} when JSON.parse refuses the text
"use strict";

const readline = require("readline");
const { parseMessage } = require("graphql-ws");
const { isJSONRPCRequest, isJSONRPCResponse } = require("json-rpc-2.0");

function graphql(text) {
  try {
    const message = parseMessage(text);
    return { valid: true, type: message.type };
  } catch (error) {
    return { valid: false, reason: String(error && error.message) };
  }
}

function jsonrpc(text) {
  let payload;
  try {
    payload = JSON.parse(text);
  } catch {
    return { json: false };
  }
  const check = (item) => ({
    request: item !== null && typeof item === "object" && !Array.isArray(item) && isJSONRPCRequest(item),
    response: item !== null && typeof item === "object" && !Array.isArray(item) && isJSONRPCResponse(item),
  });
  return Array.isArray(payload) ? { batch: payload.map(check) } : check(payload);
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const request = JSON.parse(line);
  const answer = "graphql" in request ? graphql(request.graphql) : jsonrpc(request.jsonrpc);
  process.stdout.write(JSON.stringify(answer) + "\n");
});
lines.on("close", () => process.exit(0));
