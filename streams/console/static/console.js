// The feed page: fetch /api/feed with the page's filters, draw it, and poll again every few seconds.
// Values from data are only ever set as text (textContent); the chart is SVG the server drew and escaped.
"use strict";

(function () {
  const status = document.getElementById("status");
  if (!status) return;
  const api = status.dataset.api;
  const pollMs = Number(status.dataset.pollSeconds || "3") * 1000;
  const tiers = ["notice", "attention", "warning"];
  let lastChart = null;
  let polls = 0;

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function alertRow(a) {
    const tr = document.createElement("tr");
    tr.className = "tier-" + a.tier;
    tr.dataset.alertId = a.alert_id;
    cell(tr, a.last_seen);
    cell(tr, a.tier_label + " " + a.tier, "tier");
    const link = document.createElement("a");
    link.href = a.customer_href;
    link.textContent = a.customer_id;
    cell(tr, "").appendChild(link);
    cell(tr, a.rule_id + " v" + a.rule_version);
    cell(tr, a.product || "—");
    cell(tr, a.score.toFixed(3), "number");
    cell(tr, a.top_reason);
    return tr;
  }

  function ruleRow(r) {
    const tr = document.createElement("tr");
    tr.dataset.rule = r.rule_id;
    cell(tr, r.rule_id);
    cell(tr, String(r.alerts), "number alerts");
    cell(tr, String(r.customers), "number");
    for (const t of tiers) cell(tr, String(r.by_tier[t] || 0), "number tier-count-" + t);
    return tr;
  }

  function draw(data) {
    document.querySelector("#alerts tbody").replaceChildren(...data.alerts.map(alertRow));
    document.querySelector("#top-rules tbody").replaceChildren(...data.top_rules.map(ruleRow));
    if (data.chart.svg !== lastChart) {
      lastChart = data.chart.svg;
      const box = document.getElementById("chart");
      if (lastChart) {
        box.innerHTML = lastChart;
      } else {
        const empty = document.createElement("p");
        empty.className = "empty";
        empty.textContent = "no alerts yet";
        box.replaceChildren(empty);
      }
    }
    polls += 1;
    document.body.dataset.polls = String(polls);
    status.className = "status";
    status.textContent = "updated " + new Date().toLocaleTimeString() + " · " + data.alerts.length +
      " alerts shown · refreshes every " + pollMs / 1000 + " s";
  }

  async function poll() {
    try {
      const response = await fetch(api, { headers: { Accept: "application/json" } });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || "HTTP " + response.status);
      draw(data);
    } catch (error) {
      status.className = "status failing";
      status.textContent = "not updated: " + error.message;
    } finally {
      setTimeout(poll, pollMs);
    }
  }

  poll();
})();
