// The live view of `handler local` in headless Chromium (Debian's, driven by playwright-core
// from npm): a user pastes their dev token, connects, an order of theirs ships, and the page
// shows the notification within a second of the status change. Run by scripts/test-live-view:
//   PLAYWRIGHT_DIR  folder whose node_modules holds playwright-core
//   CHROMIUM        the browser executable
//   BASE            http://127.0.0.1:<port>
//   ADMIN           an admin token of tenant contoso; HANDLER, DATA_DIR to mint the client's
"use strict";
const path = require("node:path");
const { execFileSync } = require("node:child_process");
const { chromium } = require(path.join(process.env.PLAYWRIGHT_DIR, "node_modules", "playwright-core"));

const BASE = process.env.BASE;
const API = `${BASE}/api/v1`;
const LIMIT_MS = 1000;

async function must(method, route, body) {
  const response = await fetch(`${API}${route}`, {
    method,
    headers: { authorization: `Bearer ${process.env.ADMIN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${route}: HTTP ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true, args: ["--no-sandbox"] });
  let failed = false;
  try {
    const product = await must("POST", "/products",
      { name: "Kettle", category: "kitchen", priceCents: 2999, currency: "EUR", stock: 10 });
    const customer = await must("POST", "/customers", { name: "Ada Lovelace", email: "ada@example.org" });
    const token = execFileSync(process.env.HANDLER, ["dev-token", "--tenant", "contoso", "--customer", customer.id]).toString().trim();
    const order = await must("POST", "/orders",
      { customerId: customer.id, items: [{ productId: product.id, quantity: 1 }] });
    await must("PUT", `/orders/${order.id}/status`, { status: "confirmed" });

    const page = await browser.newPage();
    await page.goto(`${BASE}/live`);
    await page.fill("#token", token);
    await page.click("#connect");
    await page.waitForFunction(() => document.getElementById("status").textContent === "connected", null, { timeout: 10000 });
    // Earlier notifications of the order may still arrive; wait for the one that matters.
    const changed = Date.now();
    await must("PUT", `/orders/${order.id}/status`, { status: "shipped" });
    await page.waitForSelector('li[data-category="order.shipped"]', { timeout: 10000 });
    const elapsed = Date.now() - changed;
    const text = await page.textContent('li[data-category="order.shipped"]');
    if (!text.includes(order.id)) throw new Error(`the page shows ${JSON.stringify(text)}, not the order's notification`);
    if (elapsed > LIMIT_MS) throw new Error(`the notification appeared ${elapsed} ms after the status change (limit ${LIMIT_MS} ms)`);
    console.log(`ok   the live view shows the shipped order's notification ${elapsed} ms after the status change`);
  } catch (error) {
    failed = true;
    console.log(`FAIL live view: ${error.message}`);
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
})();
