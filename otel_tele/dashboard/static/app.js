// otel-tele dashboard: draws every <figure data-chart> from its JSON block with uPlot, and keeps
// live tails (<ol data-tail="url">) fed from server-sent events. No other script runs on a page.
"use strict";
(function () {
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

  function bandsPlugin(spec) {
    return {
      hooks: {
        drawClear: [function (u) {
          const ctx = u.ctx;
          ctx.save();
          spec.bands.forEach(function (b, i) {
            const x0 = u.valToPos(b.from, "x", true), x1 = u.valToPos(b.to, "x", true);
            ctx.fillStyle = i % 2 ? "rgba(0,0,0,0.04)" : "rgba(31,119,180,0.07)";
            ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
          });
          ctx.restore();
        }],
        draw: [function (u) {
          const ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = "rgba(214,39,40,0.6)";
          ctx.setLineDash([4, 3]);
          spec.marks.forEach(function (m) {
            const x = u.valToPos(m.at, "x", true);
            ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
          });
          ctx.restore();
        }],
      },
    };
  }

  function draw(figure) {
    const block = figure.querySelector("script[type='application/json']");
    if (!block || typeof uPlot === "undefined") return;
    const spec = JSON.parse(block.textContent);
    const data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    const series = [{ label: spec.xLabel || "x" }].concat(spec.series.map(function (s, i) {
      return { label: s.label, stroke: palette[i % palette.length], width: 1.5, spanGaps: false };
    }));
    const width = Math.max(320, Math.min(1100, figure.clientWidth || 900));
    const opts = {
      width: width, height: 280, series: series,
      scales: { x: { time: !!spec.xTime }, y: spec.yLog ? { distr: 3 } : {} },
      axes: [{ label: spec.xLabel || undefined }, { label: spec.yLabel || undefined }],
      plugins: [bandsPlugin(spec)],
    };
    figure.uplot = new uPlot(opts, data, figure);
    figure.setAttribute("data-drawn", String(spec.x.length));
  }

  function tail(list) {
    const source = new EventSource(list.getAttribute("data-tail"));
    source.addEventListener("ready", function () { list.setAttribute("data-ready", "true"); });
    source.onmessage = function (event) {
      const item = document.createElement("li");
      item.textContent = event.data;
      list.insertBefore(item, list.firstChild);
      while (list.children.length > 200) list.removeChild(list.lastChild);
      list.setAttribute("data-count", String(Number(list.getAttribute("data-count") || 0) + 1));
    };
  }

  function heatmap(figure) {
    const block = figure.querySelector("script[type='application/json']");
    const spec = JSON.parse(block.textContent);
    const rows = spec.values.length, cols = rows ? spec.values[0].length : 0;
    let max = 0;
    spec.values.forEach(function (r) { r.forEach(function (v) { if (v !== null && v > max) max = v; }); });
    const cell = Math.max(2, Math.min(14, Math.floor(1000 / Math.max(1, cols)))), label = 120;
    const canvas = document.createElement("canvas");
    canvas.width = label + cols * cell; canvas.height = rows * 12 + 4;
    const ctx = canvas.getContext("2d");
    ctx.font = "10px sans-serif";
    spec.values.forEach(function (r, i) {
      ctx.fillStyle = "#333"; ctx.fillText(spec.rows[i].slice(0, 20), 2, i * 12 + 10);
      r.forEach(function (v, j) {
        if (v === null) { ctx.fillStyle = "#d62728"; }  // a gap: marked, never shown as zero
        else { const t = max ? v / max : 0; ctx.fillStyle = "rgba(31,119,180," + (0.08 + 0.92 * t).toFixed(3) + ")"; }
        ctx.fillRect(label + j * cell, i * 12 + 1, cell - (cell > 3 ? 1 : 0), 10);
      });
    });
    figure.appendChild(canvas);
    figure.setAttribute("data-drawn", String(rows));
  }

  function waterfall(figure) {
    const block = figure.querySelector("script[type='application/json']");
    const spec = JSON.parse(block.textContent);
    const rows = spec.spans.length, label = 260, width = 900, rowH = 16;
    let end = 0;
    spec.spans.forEach(function (s) { end = Math.max(end, s.start + s.duration); });
    const scale = end > 0 ? (width - label - 10) / end : 0;
    const canvas = document.createElement("canvas");
    canvas.width = width; canvas.height = rows * rowH + 4;
    const ctx = canvas.getContext("2d");
    ctx.font = "11px sans-serif";
    spec.spans.forEach(function (s, i) {
      const y = i * rowH + 2;
      ctx.fillStyle = "#333"; ctx.fillText(s.label.slice(0, 40), 2, y + 11);
      ctx.fillStyle = s.error ? "#d73a49" : "#1f77b4";
      ctx.fillRect(label + s.start * scale, y + 2, Math.max(1, s.duration * scale), rowH - 5);
    });
    figure.appendChild(canvas);
    figure.setAttribute("data-drawn", String(rows));
  }

  function generate(button) {
    const status = button.parentNode.querySelector("[data-generate-status]");
    function send(overwrite) {
      status.textContent = "generating…";
      fetch("/v1/telemetry/captures", {
        method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
        body: JSON.stringify({ source: { type: "run", runId: button.getAttribute("data-generate") }, output: { overwrite: overwrite } }),
      }).then(function (response) {
        status.setAttribute("data-status", String(response.status));
        if (response.status === 409 && !overwrite) {
          status.textContent = "telemetry already exists (409)";
          if (window.confirm("Telemetry already exists for this run. Overwrite it?")) send(true);
          return;
        }
        status.textContent = response.ok ? "generated (" + response.status + ")" : "failed (" + response.status + ")";
        if (response.ok) window.location.reload();
      }).catch(function () { status.textContent = "request failed"; });
    }
    button.addEventListener("click", function () { send(false); });
  }

  function login(form) {
    form.setAttribute("data-ready", "true");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const status = form.querySelector("[data-login-status]");
      fetch("/ui/session", {
        method: "POST", credentials: "same-origin", body: "{}",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + form.elements.token.value },
      }).then(function (response) {
        if (response.status === 204) { window.location.assign("/ui/health"); return; }
        status.textContent = response.status === 401 ? "wrong token (or this serve runs without one)" : "failed (" + response.status + ")";
      });
    });
  }

  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  window.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("figure[data-chart]").forEach(draw);
    document.querySelectorAll("figure[data-heatmap]").forEach(heatmap);
    document.querySelectorAll("figure[data-waterfall]").forEach(waterfall);
    document.querySelectorAll("button[data-generate]").forEach(generate);
    document.querySelectorAll("form[data-login]").forEach(login);
    document.querySelectorAll("ol[data-tail]").forEach(tail);
    confirmForms();
  });
})();
