// The few parts of the pages that move: charts (uPlot), the operator's live numbers, the buyer's feed, and the
// contributor's wallet (an injected EIP-1193 provider, window.ethereum). Everything else is plain server-rendered HTML.
"use strict";

const palette = ["#0b5fff", "#c2410c", "#047857", "#7c3aed"];

function drawChart(element, spec) {
  const width = Math.max(280, element.clientWidth || 600);
  const series = [{ label: spec.xLabel || (spec.time ? "time" : "x") }].concat(
    spec.series.map((s, i) => ({ label: s.label, stroke: palette[i % palette.length], width: 2, points: { show: spec.x.length < 40 } })));
  const options = { width, height: 240, scales: { x: { time: !!spec.time } }, series, axes: [spec.time ? {} : { values: wholeNumbers }, { values: byIncrement, size: 60 }] };
  element.replaceChildren();
  const plot = new uPlot(options, [spec.x].concat(spec.series.map(s => s.values)), element);
  // One x alone (a single day or epoch) gets a range around it: uPlot's own would span from 0, or a thousand days.
  if (spec.x.length === 1) {
    const pad = spec.time ? 43200 : 1;
    plot.setScale("x", { min: spec.x[0] - pad, max: spec.x[0] + pad });
  }
  return plot;
}

// Axis labels in English digits whatever the browser's locale, with as many decimals as the step between ticks needs
// (uPlot's default formats with the locale, so a quality axis read "0,000" in a locale with a decimal comma).
const byIncrement = (u, splits, axis, space, increment) => {
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(increment || 1))));
  return splits.map(v => v == null ? "" : v.toLocaleString("en", { minimumFractionDigits: decimals, maximumFractionDigits: decimals }));
};
// Epoch numbers and other counters on x: no grouping, no decimals.
const wholeNumbers = (u, splits) => splits.map(v => v == null ? "" : Number.isInteger(v) ? String(v) : "");

document.querySelectorAll("[data-chart]").forEach(element => {
  const spec = JSON.parse(element.dataset.chart);
  if (spec.x.length > 0) drawChart(element, spec);
});

// Operator status: poll the snapshot every second, show totals, rates and lag, and draw the last few minutes.
const stages = document.querySelector("[data-snapshot]");
if (stages) {
  const history = { x: [], ingestAccepted: [], streamsProcessed: [], lakeRows: [] };
  const rejections = { x: [], reasons: {} };
  let previous = null, throughput = null, rejected = null;
  const number = v => v == null ? "—" : Math.round(v).toLocaleString("en");
  async function poll() {
    try {
      const response = await fetch(stages.dataset.snapshot, { cache: "no-store" });
      if (!response.ok) throw new Error(response.status);
      const now = await response.json();
      for (const cell of stages.querySelectorAll("[data-metric]")) {
        const value = now[cell.dataset.metric];
        cell.textContent = cell.dataset.unit === "s" ? (value == null ? "—" : value.toFixed(2) + " s")
          : cell.dataset.metric === "streamsLag" ? number(value) + " messages" : number(value);
      }
      const t = Date.parse(now.at) / 1000;
      if (previous) {
        const dt = Math.max(0.001, t - previous.t);
        const rate = key => Math.max(0, ((now[key] ?? 0) - (previous.now[key] ?? 0)) / dt);
        for (const cell of stages.querySelectorAll("[data-rate]")) cell.textContent = rate(cell.dataset.rate).toFixed(1);
        history.x.push(t);
        for (const key of ["ingestAccepted", "streamsProcessed", "lakeRows"]) history[key].push(rate(key));
        rejections.x.push(t);
        const reasons = now.rejectedByReason || {};
        for (const reason of Object.keys(reasons)) rejections.reasons[reason] ||= rejections.x.slice(0, -1).map(() => 0);
        for (const [reason, values] of Object.entries(rejections.reasons))
          values.push(Math.max(0, ((reasons[reason] ?? 0) - ((previous.now.rejectedByReason || {})[reason] ?? 0)) / dt));
        if (history.x.length > 300) { history.x.shift(); rejections.x.shift(); for (const k of ["ingestAccepted", "streamsProcessed", "lakeRows"]) history[k].shift(); for (const v of Object.values(rejections.reasons)) v.shift(); }
        const spec = { time: true, x: history.x, series: [
          { label: "ingest/s", values: history.ingestAccepted }, { label: "processed/s", values: history.streamsProcessed }, { label: "lake rows/s", values: history.lakeRows }] };
        if (throughput) throughput.setData([spec.x].concat(spec.series.map(s => s.values)));
        else if (history.x.length > 1) throughput = drawChart(document.getElementById("throughput-chart"), spec);
        const reasonNames = Object.keys(rejections.reasons);
        if (reasonNames.length > 0 && rejections.x.length > 1) {
          const rspec = { time: true, x: rejections.x, series: reasonNames.map(r => ({ label: r, values: rejections.reasons[r] })) };
          if (rejected && rejected.series.length === reasonNames.length + 1) rejected.setData([rspec.x].concat(rspec.series.map(s => s.values)));
          else { if (rejected) rejected.destroy(); rejected = drawChart(document.getElementById("rejection-chart"), rspec); }
        }
      }
      previous = { t, now };
    } catch (e) {
      // A missed poll is shown as stale numbers; the next one catches up.
    }
    setTimeout(poll, 1000);
  }
  poll();
}

// Buyer: the live feed of a grant, read as server-sent events through the web app (which adds the buyer's key).
document.querySelectorAll("[data-feed-start]").forEach(button => button.addEventListener("click", async () => {
  const url = document.querySelector(button.dataset.feedStart).value;
  const list = document.querySelector(button.dataset.feedInto);
  const state = document.getElementById("feed-state");
  state.textContent = "Connecting…";
  const response = await fetch(url, { headers: { Accept: "text/event-stream" } });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    state.textContent = response.status === 404 && problem.reason === "not_found"
      ? "The live feed is not served by this marketplace yet."
      : `The feed was refused: ${problem.reason || response.status} — ${problem.detail || ""}`;
    return;
  }
  state.textContent = "Watching: new rows appear at the top.";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) { state.textContent = "The feed ended."; return; }
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, end).split("\n");
      buffer = buffer.slice(end + 2);
      const event = (lines.find(l => l.startsWith("event:")) || "event: message").slice(6).trim();
      const data = lines.filter(l => l.startsWith("data:")).map(l => l.slice(5).trim()).join("\n");
      if (!data) continue;   // a keep-alive comment
      if (event === "end") {
        const reason = JSON.parse(data);
        state.textContent = `The feed ended: ${reason.reason} — ${reason.detail}`;
        continue;
      }
      // A "rows" event: a JSON array of rows, each shown as one line, newest on top.
      for (const row of JSON.parse(data)) {
        const item = document.createElement("li");
        item.dataset.readingId = row.reading_id;
        item.textContent = Object.entries(row).filter(([k, v]) => v != null && !["reading_id", "seq", "event_seq", "received_at", "date"].includes(k))
          .map(([k, v]) => `${k} ${v}`).join(" · ");
        list.prepend(item);
      }
      while (list.children.length > 50) list.lastChild.remove();
    }
  }
}));

// Contributor: sign the login challenge with the injected wallet, then post it with the page's form.
async function walletAccount() {
  if (!window.ethereum) throw new Error("No browser wallet found: install one, or sign with cast below.");
  const [account] = await window.ethereum.request({ method: "eth_requestAccounts" });
  return account.toLowerCase();
}

document.querySelectorAll("[data-wallet-sign-in]").forEach(button => button.addEventListener("click", async () => {
  const form = document.querySelector(button.dataset.walletSignIn);
  const state = document.getElementById("wallet-state");
  try {
    const account = await walletAccount();
    state.textContent = `Asking ${account} to sign the login message…`;
    const challenge = await fetch("/v1/contributors/challenge", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ address: account }) });
    const body = await challenge.json();
    if (!challenge.ok) throw new Error(`${body.reason}: ${body.detail}`);
    const signature = await window.ethereum.request({ method: "personal_sign", params: [toHex(body.message), account] });
    form.querySelector("[name='Login.Message']").value = body.message;
    form.querySelector("[name='Login.Signature']").value = signature;
    form.submit();
  } catch (e) {
    state.textContent = e.message || String(e);
  }
}));

// Contributor: send the claim the server built from the latest published proof, then show the chain's answer.
document.querySelectorAll("[data-claim]").forEach(button => button.addEventListener("click", async () => {
  const state = document.getElementById("claim-state");
  button.disabled = true;
  try {
    const account = await walletAccount();
    const response = await fetch(button.dataset.claim, { cache: "no-store" });
    const claim = await response.json();
    if (!response.ok) throw new Error(`${claim.reason}: ${claim.detail}`);
    if (account !== claim.from) throw new Error(`The wallet's account ${account} is not the signed-in ${claim.from}.`);
    state.textContent = "Waiting for the wallet to send the claim…";
    const hash = await window.ethereum.request({ method: "eth_sendTransaction", params: [{ from: claim.from, to: claim.to, data: claim.data, chainId: claim.chainId }] });
    state.textContent = `Claim sent in transaction ${hash}; reloading once it is mined…`;
    for (;;) {
      const receipt = await window.ethereum.request({ method: "eth_getTransactionReceipt", params: [hash] });
      if (receipt) {
        if (receipt.status !== "0x1") throw new Error(`The claim transaction ${hash} reverted.`);
        location.reload();
        return;
      }
      await new Promise(r => setTimeout(r, 500));
    }
  } catch (e) {
    state.textContent = e.message || String(e);
    button.disabled = false;
  }
}));

function toHex(text) {
  return "0x" + Array.from(new TextEncoder().encode(text), b => b.toString(16).padStart(2, "0")).join("");
}
