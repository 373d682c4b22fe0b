// What the SignalR test and benchmark scripts share: API calls with a token, and a client
// connection through the app's negotiate (the official @microsoft/signalr from
// SIGNALR_CLIENT_DIR). Without API Management in local mode the client sends its own
// x-ms-signalr-userid, which the app checks against the token.
"use strict";
const path = require("node:path");
const signalR = require(path.join(process.env.SIGNALR_CLIENT_DIR, "node_modules", "@microsoft", "signalr"));

async function call(api, method, route, token, body, extraHeaders = {}) {
  const response = await fetch(`${api}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...extraHeaders },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function must(api, method, route, token, body) {
  const reply = await call(api, method, route, token, body);
  if (reply.status >= 300) throw new Error(`${method} ${route}: HTTP ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
}

// A connection (not started) of `userId` to the notifications hub, over WebSockets.
function connect(api, token, userId) {
  return new signalR.HubConnectionBuilder()
    .withUrl(`${api}/notifications`, {
      accessTokenFactory: () => token,
      headers: { "x-ms-signalr-userid": userId },
      transport: signalR.HttpTransportType.WebSockets,
    })
    .configureLogging(signalR.LogLevel.None)
    .build();
}

module.exports = { signalR, call, must, connect };
