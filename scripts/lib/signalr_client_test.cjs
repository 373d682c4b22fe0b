// Live notifications end to end with the official client (@microsoft/signalr from npm) against
// a running `handler local`. Run by scripts/test-signalr, which starts the app and passes:
//   SIGNALR_CLIENT_DIR  folder whose node_modules holds @microsoft/signalr
//   API                 http://127.0.0.1:<port>/api/v1
//   ADMIN, MANAGER      employee tokens of tenant contoso (admin, order-manager)
//   OTHER_TENANT_MANAGER  an order-manager token of tenant fabrikam
//   HANDLER, DATA_DIR   to mint client tokens (`handler dev-token --customer ...`)
// Every test runs even when one fails; the exit status is non-zero if any failed.
"use strict";
const { execFileSync } = require("node:child_process");
const common = require("./signalr_common.cjs");

const API = process.env.API;
const WAIT_MS = 5000;
const QUIET_MS = 1500;

function devToken(args) {
  return execFileSync(process.env.HANDLER, ["dev-token", ...args], {
    env: { ...process.env, DATA_DIR: process.env.DATA_DIR },
  }).toString().trim();
}

function claims(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
}

// The user id API Management derives from a token: {tenant}:customer:{id} or {tenant}:employee:{oid|sub}.
function userIdOf(token) {
  const c = claims(token);
  return c.extension_customerId
    ? `${c.tenant_id}:customer:${c.extension_customerId}`
    : `${c.tenant_id}:employee:${c.oid || c.sub}`;
}

const call = (method, route, token, body, extraHeaders) => common.call(API, method, route, token, body, extraHeaders);
const must = (method, route, token, body) => common.must(API, method, route, token, body);

// A connected client that records every `notification` it receives.
async function connect(token, userId = userIdOf(token)) {
  const received = [];
  const connection = common.connect(API, token, userId);
  connection.on("notification", (n) => received.push({ n, at: Date.now() }));
  await connection.start();
  return { connection, received };
}

async function waitFor(received, predicate, ms = WAIT_MS) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const hit = received.find(({ n }) => predicate(n));
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 20));
  }
  return null;
}

const quiet = () => new Promise((r) => setTimeout(r, QUIET_MS));

async function setup() {
  const admin = process.env.ADMIN;
  const product = await must("POST", "/products", admin,
    { name: "Kettle", category: "kitchen", priceCents: 2999, currency: "EUR", stock: 100 });
  const ada = await must("POST", "/customers", admin, { name: "Ada Lovelace", email: "ada@example.org" });
  const bob = await must("POST", "/customers", admin, { name: "Bob Builder", email: "bob@example.org" });
  return { product, ada, bob };
}

async function order(world, customer) {
  return must("POST", "/orders", process.env.ADMIN,
    { customerId: customer.id, items: [{ productId: world.product.id, quantity: 1 }] });
}

async function moveTo(orderId, status) {
  await must("PUT", `/orders/${orderId}/status`, process.env.ADMIN, { status });
}

const tests = {
  async "the customer's client receives the notification of their shipped order; other customers and tenants receive nothing"(world) {
    const adaToken = devToken(["--tenant", "contoso", "--customer", world.ada.id]);
    const bobToken = devToken(["--tenant", "contoso", "--customer", world.bob.id]);
    // Another tenant's client bound to a customer with the same id: a different user.
    const strangerToken = devToken(["--tenant", "fabrikam", "--customer", world.ada.id]);
    const ada = await connect(adaToken);
    const bob = await connect(bobToken);
    const stranger = await connect(strangerToken);
    try {
      const placed = await order(world, world.ada);
      await moveTo(placed.id, "confirmed");
      const changed = Date.now();
      await moveTo(placed.id, "shipped");
      const hit = await waitFor(ada.received, (n) => n.category === "order.shipped" && n.orderId === placed.id);
      if (!hit) throw new Error(`no order.shipped notification within ${WAIT_MS} ms (got ${ada.received.length} others)`);
      if (hit.n.recipient?.kind !== "customer" || hit.n.recipient?.id !== world.ada.id)
        throw new Error(`the notification is not addressed to the customer: ${JSON.stringify(hit.n)}`);
      const listed = await must("GET", "/notifications", adaToken);
      if (!listed.items.some((item) => item.id === hit.n.id))
        throw new Error("the pushed notification is not the stored one (its id is not listed)");
      await quiet();
      if (bob.received.length) throw new Error(`another customer received ${bob.received.length} notifications`);
      if (stranger.received.length) throw new Error(`a client of another tenant received ${stranger.received.length} notifications`);
      return `received ${hit.at - changed} ms after the status change`;
    } finally {
      await Promise.all([ada, bob, stranger].map((c) => c.connection.stop()));
    }
  },

  // Dev employee tokens of a tenant share one subject (one user), so this checks the tenant
  // boundary of role groups; the role boundary is a unit test of the hub (local/signalr/hub.rs).
  async "a role-addressed notification reaches the tenant's employees of that role, not another tenant's"(world) {
    const manager = await connect(process.env.MANAGER);
    const otherTenant = await connect(process.env.OTHER_TENANT_MANAGER);
    try {
      const placed = await order(world, world.bob);
      await must("DELETE", `/orders/${placed.id}`, process.env.ADMIN);
      const hit = await waitFor(manager.received, (n) => n.category === "order.cancelled" && n.orderId === placed.id);
      if (!hit) throw new Error(`the order-manager got no order.cancelled notification within ${WAIT_MS} ms`);
      await quiet();
      if (otherTenant.received.length) throw new Error(`another tenant's order-manager received ${otherTenant.received.length}`);
    } finally {
      await Promise.all([manager, otherTenant].map((c) => c.connection.stop()));
    }
  },

  // Pushes leave in commit order, so once the delivered notification arrived, a push of the
  // shipped one (committed before it) would have arrived too.
  async "a customer who switched realtime off for shipped receives nothing for it, but still sees it listed"(world) {
    const cy = await must("POST", "/customers", process.env.ADMIN, { name: "Cy Quiet", email: "cy@example.org" });
    const cyToken = devToken(["--tenant", "contoso", "--customer", cy.id]);
    await must("PUT", `/customers/${cy.id}/preferences`, cyToken, { eventTypes: { "order.shipped": { realtime: false } } });
    const client = await connect(cyToken);
    try {
      const placed = await order(world, cy);
      await moveTo(placed.id, "confirmed");
      await moveTo(placed.id, "shipped");
      await moveTo(placed.id, "delivered");
      const delivered = await waitFor(client.received, (n) => n.category === "order.delivered" && n.orderId === placed.id);
      if (!delivered) throw new Error(`no order.delivered notification within ${WAIT_MS} ms (realtime is on for it)`);
      const shipped = client.received.filter(({ n }) => n.category === "order.shipped");
      if (shipped.length) throw new Error(`received ${shipped.length} order.shipped notifications with realtime off`);
      const listed = await must("GET", "/notifications", cyToken);
      if (!listed.items.some((item) => item.category === "order.shipped" && item.orderId === placed.id))
        throw new Error("the shipped notification is not stored (GET /notifications does not list it)");
    } finally {
      await client.connection.stop();
    }
  },

  async "a message sent with POST /notifications is pushed to the customer"(world) {
    const adaToken = devToken(["--tenant", "contoso", "--customer", world.ada.id]);
    const ada = await connect(adaToken);
    try {
      const sent = await must("POST", "/notifications", process.env.ADMIN,
        { customerId: world.ada.id, title: "Your parcel", message: "It left our warehouse today." });
      const hit = await waitFor(ada.received, (n) => n.id === sent.id);
      if (!hit) throw new Error(`the sent message was not pushed within ${WAIT_MS} ms`);
      if (hit.n.title !== "Your parcel") throw new Error(`pushed ${JSON.stringify(hit.n)}, not the message sent`);
    } finally {
      await ada.connection.stop();
    }
  },

  async "a spoofed user id is refused (403), and the client cannot connect with it"(world) {
    const bobToken = devToken(["--tenant", "contoso", "--customer", world.bob.id]);
    const adaId = `contoso:customer:${world.ada.id}`;
    const reply = await call("POST", "/notifications/negotiate", bobToken, undefined, { "x-ms-signalr-userid": adaId });
    if (reply.status !== 403) throw new Error(`negotiate with another user's id answered ${reply.status}, not 403`);
    let refused = false;
    try {
      const spoofed = await connect(bobToken, adaId);
      await spoofed.connection.stop();
    } catch (error) {
      refused = /403/.test(String(error));
    }
    if (!refused) throw new Error("the SignalR client connected with another user's id");
  },

  async "the service refuses a connection without a token of its own"() {
    const base = API.replace(/\/api\/v1$/, "");
    const reply = await fetch(`${base}/signalr/client/negotiate?hub=notifications&negotiateVersion=1`, {
      method: "POST",
      headers: { authorization: `Bearer ${process.env.ADMIN}` },
    });
    if (reply.status !== 401) throw new Error(`the service's negotiate with an app token answered ${reply.status}, not 401`);
  },
};

(async () => {
  let world;
  try {
    world = await setup();
  } catch (error) {
    console.log(`FAIL setup: ${error.message}`);
    process.exit(1);
  }
  let failed = 0;
  for (const [name, test] of Object.entries(tests)) {
    try {
      const detail = await test(world);
      console.log(`ok   ${name}${detail ? ` (${detail})` : ""}`);
    } catch (error) {
      failed += 1;
      console.log(`FAIL ${name}: ${error.message}`);
    }
  }
  console.log(`signalr client tests: ${Object.keys(tests).length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
