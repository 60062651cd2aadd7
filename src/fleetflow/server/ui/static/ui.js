// fleetflow UI: the live parts htmx does not cover. The flow-run page tails its logs and state
// over Server-Sent Events (the browser's own EventSource: no extension needed) and keeps the
// log pane pinned to the newest line unless the reader scrolled up.
(function () {
  "use strict";
  function pinned(pane) { return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 40; }
  function toBottom(pane) { pane.scrollTop = pane.scrollHeight; }
  function lastId(pane) {
    var lines = pane.querySelectorAll(".log[data-id]");
    return lines.length ? lines[lines.length - 1].getAttribute("data-id") : (pane.getAttribute("data-last") || "0");
  }
  function filterQuery() {
    var level = document.getElementById("log-level"), q = document.getElementById("log-q");
    return "&level=" + encodeURIComponent(level ? level.value : "") + "&q=" + encodeURIComponent(q ? q.value : "");
  }
  function tail(root) {
    var runId = root.getAttribute("data-run"), pane = document.getElementById("log-lines");
    var live = document.getElementById("live"), source = null;
    function open() {
      if (source) source.close();
      source = new EventSource("/runs/" + runId + "/events?after=" + lastId(pane) + filterQuery());
      source.addEventListener("open", function () { if (live) live.hidden = false; });
      source.addEventListener("log", function (e) {
        var stay = pinned(pane), empty = pane.querySelector(".log.empty");
        if (empty) empty.remove();
        pane.insertAdjacentHTML("beforeend", e.data);
        if (stay) toBottom(pane);
      });
      source.addEventListener("state", function (e) {
        var head = document.getElementById("run-header");
        if (head && head.getAttribute("data-state") !== e.data && window.htmx) {
          document.querySelectorAll("[hx-trigger~='fleetflow:state']").forEach(function (el) { htmx.trigger(el, "fleetflow:state"); });
        }
      });
      source.addEventListener("end", function () { source.close(); if (live) live.hidden = true; });
      source.onerror = function () { if (live) live.hidden = true; };
    }
    // A new filter replaces the pane (htmx), then the tail restarts after its last line.
    document.body.addEventListener("htmx:afterSwap", function (e) { if (e.target === pane) { toBottom(pane); open(); } });
    var jump = document.getElementById("jump-latest");
    if (jump) jump.addEventListener("click", function () { toBottom(pane); });
    toBottom(pane);
    open();
  }
  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("run");
    if (root) tail(root);
  });
})();
