// Live-notification benchmark against a running `handler local`, with the official client
// (@microsoft/signalr from npm). Run by scripts/bench-signalr, which passes:
//   SIGNALR_CLIENT_DIR, API, ADMIN, HANDLER (to mint client tokens), EVENTS, CONNECTIONS, PID
// 1. Latency: one connected client; EVENTS times, an order of its customer is created and its
//    status changed to confirmed; the time from sending the status change to the client's
//    receipt of `order.confirmed` for that order. Prints p50, p99, max.
// 2. Connections: CONNECTIONS clients (distinct customers) connected at once, then the server's
//    RSS (from /proc/PID/status) before and after, and one push reaching a sample of them.
"use strict";
const fs = require("node:fs");
const { execFileSync } = require("node:child_process");
const common = require("./signalr_common.cjs");

const API = process.env.API;
const EVENTS = Number(process.env.EVENTS || 1000);
const CONNECTIONS = Number(process.env.CONNECTIONS || 1000);

const must = (method, route, body) => common.must(API, method, route, process.env.ADMIN, body);

function rssMiB(pid) {
  const line = fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  return Number(line.split(/\s+/)[1]) / 1024;
}

async function connect(token, userId) {
  const connection = common.connect(API, token, userId);
  await connection.start();
  return connection;
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function latency(product, customer) {
  const token = execFileSync(process.env.HANDLER, ["dev-token", "--tenant", "bench", "--customer", customer.id]).toString().trim();
  const connection = await connect(token, `bench:customer:${customer.id}`);
  const waiting = new Map();
  connection.on("notification", (n) => {
    const resolve = n.category === "order.confirmed" && waiting.get(n.orderId);
    if (resolve) resolve(performance.now());
  });
  const samples = [];
  for (let i = 0; i < EVENTS; i += 1) {
    const order = await must("POST", "/orders", { customerId: customer.id, items: [{ productId: product.id, quantity: 1 }] });
    const received = new Promise((resolve, reject) => {
      waiting.set(order.id, resolve);
      setTimeout(() => reject(new Error(`no notification for order ${order.id} within 10 s`)), 10000);
    });
    const sent = performance.now();
    await must("PUT", `/orders/${order.id}/status`, { status: "confirmed" });
    samples.push((await received) - sent);
    waiting.delete(order.id);
  }
  await connection.stop();
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), max: samples[samples.length - 1] };
}

async function connections(pid) {
  const before = rssMiB(pid);
  const open = [];
  const started = performance.now();
  for (let i = 0; i < CONNECTIONS; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(CONNECTIONS, i + 50); j += 1) {
      const id = `cust-${j}`;
      const token = execFileSync(process.env.HANDLER, ["dev-token", "--tenant", "benchconn", "--customer", id]).toString().trim();
      batch.push(connect(token, `benchconn:customer:${id}`));
    }
    open.push(...(await Promise.all(batch)));
  }
  const elapsed = performance.now() - started;
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssMiB(pid);
  await Promise.all(open.map((c) => c.stop()));
  return { count: open.length, seconds: elapsed / 1000, before, after };
}

(async () => {
  const product = await must("POST", "/products", { name: "Kettle", category: "kitchen", priceCents: 100, currency: "EUR", stock: 1000000 });
  const customer = await must("POST", "/customers", { name: "Bench Customer", email: "bench@example.org" });
  const lat = await latency(product, customer);
  console.log(`| order status change -> client receipt, ${EVENTS} events | p50 ${lat.p50.toFixed(1)} ms | p99 ${lat.p99.toFixed(1)} ms | max ${lat.max.toFixed(1)} ms |`);
  const conn = await connections(Number(process.env.PID));
  console.log(`| ${conn.count} concurrent connections (opened in ${conn.seconds.toFixed(1)} s) | RSS ${conn.before.toFixed(1)} MiB before | ${conn.after.toFixed(1)} MiB with them open | ${(((conn.after - conn.before) * 1024) / conn.count).toFixed(1)} KiB per connection |`);
  process.exit(0);
})().catch((error) => {
  console.error(`bench failed: ${error.message}`);
  process.exit(1);
});
