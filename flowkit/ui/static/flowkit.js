// flowkit ui: a little vanilla JS, no build step, no network beyond this server.
// 1. Live updates: a page whose body has data-live="<run id>" polls the run's status JSON
//    every 2 s and updates #run-status, [data-summary] counts, svg g.node[data-node] and
//    tr.task[data-node]; when the run is no longer running it reloads once, to show the
//    finished page (timeline, outputs).
// 2. Toggles: a click on an element with data-toggle="<id>" shows or hides element <id>
//    (works on SVG groups too, for map nodes that expand into their items).
// The report (a file opened from disk) has no data-live, so it never fetches anything.
(function () {
  "use strict";

  var POLL_MS = 2000;

  function setStatus(el, status) {
    if (!el) { return; }
    el.textContent = status;
    el.className = el.className.replace(/\bstatus-[a-z]+\b/g, "").trim() + " status-" + status;
  }

  function applyNodes(nodes) {
    document.querySelectorAll("svg g.node[data-node]").forEach(function (g) {
      var status = nodes[g.getAttribute("data-node")];
      if (status) { g.setAttribute("data-status", status); }
    });
    document.querySelectorAll("tr.task[data-node]").forEach(function (tr) {
      var status = nodes[tr.getAttribute("data-node")];
      if (!status) { return; }
      tr.setAttribute("data-status", status);
      setStatus(tr.querySelector(".status"), status);
    });
  }

  function apply(doc) {
    setStatus(document.getElementById("run-status"), doc.status);
    var summary = doc.summary || {};
    document.querySelectorAll("[data-summary]").forEach(function (el) {
      var n = summary[el.getAttribute("data-summary")];
      if (typeof n === "number") { el.textContent = String(n); }
    });
    applyNodes(doc.nodes || {});
  }

  function poll(runId) {
    var url = "/api/runs/" + encodeURIComponent(runId) + "/status";
    var timer = null;
    function tick() {
      fetch(url, { cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (doc) {
          if (!doc) { return; }
          apply(doc);
          if (doc.status !== "running") {
            window.clearInterval(timer);
            window.setTimeout(function () { window.location.reload(); }, 500);
          }
        })
        .catch(function () { /* the server went away: try again on the next tick */ });
    }
    timer = window.setInterval(tick, POLL_MS);
  }

  function toggle(event) {
    var el = event.target.closest ? event.target.closest("[data-toggle]") : null;
    if (!el) { return; }
    var target = document.getElementById(el.getAttribute("data-toggle"));
    if (!target) { return; }
    var open;
    if (target.tagName === "DETAILS") {
      open = target.open = !target.open;
    } else {
      target.hidden = !target.hidden;
      open = !target.hidden;
    }
    el.setAttribute("aria-expanded", String(open));
    event.preventDefault();
  }

  document.addEventListener("click", toggle);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.closest && event.target.closest("[data-toggle]")) {
      toggle(event);
    }
  });
  var live = document.body.getAttribute("data-live");
  if (live) { poll(live); }
})();
