// The chat simulator page: polls /api/chats and draws each customer's conversation the way
// WhatsApp shows it; every tap or message goes to the simulator's server, which signs it and
// posts it to the bot exactly as Meta does. No build step, no dependencies.
"use strict";

// The chat shown is remembered, so coming back from the Checkout page shows it again.
const state = {
  active: localStorage.getItem("sandbox.active"), chats: [], drawn: "", flow: null, staffDrawn: "", ordersDrawn: "",
  cart: {}, // the active customer's cart from product messages: retailer id -> quantity
};
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => {
    if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v);
  });
  children.forEach((c) => node.append(c));
  return node;
}

async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json", "X-Staff-Panel": "1" }, body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function select(waId) {
  if (waId !== state.active) { state.cart = {}; drawCart(); } // a cart is one customer's
  state.active = waId;
  state.drawn = "";
  localStorage.setItem("sandbox.active", waId);
}

function activeChat() {
  return state.chats.find((c) => c.wa_id === state.active);
}

async function poll() {
  try {
    const data = await api("/api/chats");
    state.chats = data.customers;
    $("connection").textContent = data.connected ? "Connected to the bot." : "Waiting for the bot…";
    draw();
    const staff = await api("/api/staff").catch(() => null);  // none without the shop inbox
    if (staff) drawHandovers(staff.events);
    const paid = await api("/api/staff/orders").catch(() => null);  // none without the token
    if (paid) drawOrders(paid.orders);
  } catch (error) {
    $("connection").textContent = "Simulator unreachable: " + error.message;
  }
}

// The shop staff's panel: the hand-over webhook's events, one box per hand-over reference.
function eventLine(event) {
  if (event.type === "handover.started") {
    const said = event.transcript.length ? `\n“${event.transcript.join("”\n“")}”` : "";
    return `Asked for a person (${event.handover.reason.replace("_", " ")}).${said}`;
  }
  if (event.type === "handover.message") return `Customer: ${event.message.text || `(${event.message.kind})`}`;
  return `Ended by ${event.ended_by}: the bot answers again.`;
}

function drawHandovers(events) {
  const signature = JSON.stringify(events.map((e) => e.id));
  if (signature === state.staffDrawn) return;
  state.staffDrawn = signature;
  const typed = {};
  document.querySelectorAll(".handover input").forEach((i) => { typed[i.dataset.ref] = i.value; });
  const refs = [...new Set(events.map((e) => e.handover.ref))];
  $("handovers").replaceChildren(...refs.map((ref) => {
    const mine = events.filter((e) => e.handover.ref === ref);
    const open = !mine.some((e) => e.type === "handover.ended");
    const box = el("div", { class: "handover", "data-ref": ref },
      el("h3", {}, `${ref} · ${open ? "waiting for you" : "back with the bot"}`),
      ...mine.map((e) => el("div", { class: "event" }, eventLine(e))));
    if (open) {
      const input = el("input", { placeholder: "Reply as the shop", "data-ref": ref, maxlength: "4096" });
      input.value = typed[ref] || "";
      box.append(input,
        el("button", { type: "button", class: "reply", onclick: () => staffReply(ref, input) }, "Reply"),
        el("button", { type: "button", class: "resume", onclick: () => staffSend(`/api/staff/${ref}/resume`, {}) }, "Give back to the bot"));
    }
    return box;
  }));
}

// Paid orders (the bot's orders API): ship, mark delivered, refund all or part.
function orderState(order) {
  if (order.amount > 0 && order.amount_refunded >= order.amount) return "refunded";
  const part = order.amount_refunded ? `, ${(order.amount_refunded / 100).toFixed(2)} refunded` : "";
  return `${order.fulfilment}${part}`;
}

function drawOrders(orders) {
  const signature = JSON.stringify(orders);
  if (signature === state.ordersDrawn) return;
  state.ordersDrawn = signature;
  $("orders").replaceChildren(...orders.map((order) => {
    const base = `/api/staff/orders/${encodeURIComponent(order.order_id)}`;
    const amount = `${(order.amount / 100).toFixed(2)} ${order.currency.toUpperCase()}`;
    const box = el("div", { class: "handover order", "data-order": order.order_id },
      el("h3", {}, `${order.order_id} · ${amount} · ${orderState(order)}`));
    if (order.tracking_url) box.append(el("div", { class: "event" }, `${order.carrier}: ${order.tracking_url}`));
    box.append(
      el("button", { type: "button", class: "ship", onclick: () => {
        const carrier = prompt("Carrier", order.carrier || "DHL");
        const link = carrier && prompt("Tracking link (https://…)", order.tracking_url || "https://tracking.example/");
        if (link) staffSend(`${base}/ship`, { carrier, tracking_url: link });
      } }, "Ship"),
      el("button", { type: "button", class: "deliver", onclick: () => staffSend(`${base}/deliver`, {}) }, "Delivered"),
      el("button", { type: "button", class: "refund", onclick: () => {
        const cents = prompt("Refund how much, in cents (500 = 5.00)? Empty: all that is left", "");
        if (cents === null) return;
        if (cents.trim() && !/^[0-9]+$/.test(cents.trim())) { alert("A whole number of cents, e.g. 500"); return; }
        staffSend(`${base}/refund`, cents.trim() ? { amount: Number(cents) } : {});
      } }, "Refund"));
    return box;
  }));
}

function staffReply(ref, input) {
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  staffSend(`/api/staff/${ref}/reply`, { text });
}

async function staffSend(path, body) {
  try {
    const answer = await api(path, body);
    // A shipment or delivery is recorded even when the customer's turn did not tell them.
    if (answer.told === false) alert(`Recorded, but the customer was NOT told: ${answer.reason}`);
  } catch (error) { alert(error.message); }
  poll();
}

function draw() {
  const list = $("customers");
  list.replaceChildren(...state.chats.map((c) => el("li", {
    class: c.wa_id === state.active ? "active" : "", "data-wa-id": c.wa_id,
    onclick: () => { select(c.wa_id); draw(); },
  }, `${c.name} (+${c.wa_id})`)));
  const chat = activeChat();
  $("text").disabled = $("send").disabled = !chat;
  if (!chat) return;
  $("chat-title").textContent = `${chat.name} · +${chat.wa_id}`;
  const signature = JSON.stringify(chat.messages.map((m) => [m.id, m.status]));
  if (signature === state.drawn) return;
  state.drawn = signature;
  const box = $("messages");
  box.replaceChildren(...chat.messages.map(bubble));
  box.scrollTop = box.scrollHeight;
}

function bubble(message) {
  const who = message.from;
  const node = el("div", { class: `bubble ${who}`, "data-message-id": message.id });
  if (who === "customer") node.append(message.text);
  else botContent(node, message);
  const time = new Date(message.at * 1000).toLocaleTimeString();
  // What WhatsApp reported back to the bot's webhook for this message (sent/delivered/read).
  const ticks = { sent: " ✓", delivered: " ✓✓", read: " ✓✓ read" }[message.status] || "";
  node.append(el("span", { class: "meta", title: message.status || "" }, time + ticks));
  return el("div", { class: `row ${who}` }, node);
}

function optionButton(label, onclick, cls) {
  return el("button", { type: "button", class: cls || "option", onclick }, label);
}

function botContent(node, message) {
  const body = message.body;
  if (body.type === "text") { node.append(body.text.body); return; }
  if (body.type === "image") {
    node.append(el("a", { href: body.image.link, target: "_blank" }, "🖼 image"), "\n", body.image.caption || "");
    return;
  }
  if (body.type === "template") {
    node.append(el("span", { class: "kind" }, `template ${body.template.name}`), "\n");
    const params = (body.template.components || []).flatMap((c) => c.parameters || []);
    node.append(params.map((p) => p.text).join(" "));
    return;
  }
  const interactive = body.interactive;
  if (interactive.header && interactive.header.text) node.append(interactive.header.text, "\n");
  node.append(interactive.body ? interactive.body.text : "");
  const options = el("div", { class: "options" });
  const action = interactive.action;
  // Product messages from the Meta catalog: each item can go into the cart, which WhatsApp
  // sends to the bot as an `order` message (POST /api/customers/{wa_id}/order).
  const sections = interactive.type === "product_list" ? action.sections
    : interactive.type === "product" ? [{ title: "", product_items: [action] }] : [];
  sections.forEach((s) => {
    if (s.title) options.append(el("div", { class: "kind" }, s.title));
    s.product_items.forEach((item) => options.append(optionButton(
      `＋ ${item.product_retailer_id}`, () => addToCart(item.product_retailer_id), "add-to-cart")));
  });
  if (interactive.type === "catalog_message") options.append(el("div", { class: "kind" }, "🛍 View catalog"));
  if (interactive.type === "button") {
    action.buttons.forEach((b) => options.append(
      optionButton(b.reply.title, () => reply(message.id, b.reply.id), "reply")));
  } else if (interactive.type === "list") {
    action.sections.forEach((s) => s.rows.forEach((r) => options.append(
      optionButton(`☰ ${r.title}`, () => reply(message.id, r.id), "row"))));
  } else if (interactive.type === "cta_url") {
    options.append(el("a", { href: action.parameters.url, target: "_blank", class: "cta" },
      `↗ ${action.parameters.display_text}`));
  } else if (interactive.type === "flow") {
    options.append(optionButton(action.parameters.flow_cta, () => openFlow(message.id), "flow-cta"));
  }
  node.append(options);
}

function addToCart(retailerId) {
  state.cart[retailerId] = (state.cart[retailerId] || 0) + 1;
  drawCart();
}

function drawCart() {
  const items = Object.entries(state.cart);
  $("cart").classList.toggle("hidden", items.length === 0);
  $("cart-items").textContent = "🛒 " + items.map(([id, quantity]) => `${quantity} × ${id}`).join(", ");
}

function sendCart() {
  const items = Object.entries(state.cart).map(([id, quantity]) => ({ retailer_id: id, quantity }));
  state.cart = {};
  drawCart();
  send(`/api/customers/${state.active}/order`, { items });
}

async function send(path, body) {
  try { await api(path, body); } catch (error) { alert(error.message); }
  poll();
}

function reply(messageId, replyId) {
  send(`/api/customers/${state.active}/reply`, { message_id: messageId, reply_id: replyId });
}

async function openFlow(messageId) {
  try {
    const screen = await api(`/api/customers/${state.active}/flows/${messageId}`, {});
    state.flow = { customer: state.active, messageId };
    drawFlow(screen);
  } catch (error) { alert(error.message); }
}

function drawFlow(screen) {
  if (screen.closed) { closeFlow(); poll(); return; }
  $("flow").classList.remove("hidden");
  $("flow-title").textContent = screen.title;
  const problem = screen.client_error || screen.error_message;
  $("flow-error").textContent = problem || "";
  $("flow-error").classList.toggle("hidden", !problem);
  const form = $("flow-form");
  form.replaceChildren(...screen.components.map(component));
  form.dataset.screen = screen.screen;
}

function component(c) {
  if (c.type === "text") return el("div", { class: c.style }, c.text);
  if (c.type === "input") {
    return el("div", {}, el("label", { for: `f-${c.name}` }, c.label),
      el("input", { type: "text", id: `f-${c.name}`, name: c.name }));
  }
  if (c.type === "choice" && c.style === "Dropdown") {
    const select = el("select", { id: `f-${c.name}`, name: c.name },
      el("option", { value: "" }, "Choose…"));
    c.options.forEach((o) => select.append(el("option", { value: o.id }, o.title)));
    return el("div", {}, el("label", { for: `f-${c.name}` }, c.label), select);
  }
  if (c.type === "choice") {
    return el("fieldset", { id: `f-${c.name}` }, el("legend", {}, c.label),
      ...c.options.map((o) => el("label", {},
        el("input", { type: "radio", name: c.name, value: o.id }),
        ` ${o.title}`, o.description ? el("div", { class: "TextCaption" }, o.description) : "")));
  }
  if (c.type === "footer") return el("button", { type: "submit", class: "footer", id: "flow-submit" }, c.label);
  return el("div", {});
}

async function submitFlow(event) {
  event.preventDefault();
  const form = Object.fromEntries(new FormData($("flow-form")).entries());
  const { customer, messageId } = state.flow;
  try {
    drawFlow(await api(`/api/customers/${customer}/flows/${messageId}/submit`, { form }));
  } catch (error) { alert(error.message); }
}

function closeFlow() {
  $("flow").classList.add("hidden");
  state.flow = null;
}

$("add-customer").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const customer = await api("/api/customers", { name: $("customer-name").value });
    $("customer-name").value = "";
    select(customer.wa_id);
    poll();
  } catch (error) { alert(error.message); }
});
$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("text").value = "";
  send(`/api/customers/${state.active}/text`, { text });
});
$("send-cart").addEventListener("click", sendCart);
$("clear-cart").addEventListener("click", () => { state.cart = {}; drawCart(); });
$("flow-form").addEventListener("submit", submitFlow);
$("flow-close").addEventListener("click", closeFlow);
poll();
setInterval(poll, 800);
