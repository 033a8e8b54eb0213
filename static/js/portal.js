/* Factory Portal: the only script of the pages (the Content-Security-Policy allows no inline
   script). It draws every plotly chart on the page (plotly, served from this site, never a CDN,
   is loaded once, and only on pages that have a chart), refreshes the parts of a page marked
   with data-refresh-url, asks before submitting a form marked with data-confirm, and follows a chart element's
   drill-down link. */
(function () {
  "use strict";

  function drawAll() {
    document.querySelectorAll(".chart[data-figure]").forEach(function (element) {
      if (element.dataset.drawn) { return; }
      var data = document.getElementById(element.dataset.figure);
      if (!data) { return; }
      var figure = JSON.parse(data.textContent);
      // The workspace's number format (decimal and thousands separators) on axes and hovers.
      if (document.body.dataset.separators) {
        figure.layout.separators = document.body.dataset.separators;
      }
      // No "share to Plotly Cloud" (it would upload the tenant's figures to a third party).
      window.Plotly.newPlot(element, figure.data, figure.layout, {
        displaylogo: false, responsive: true, showSendToCloud: false, showEditInChartStudio: false,
        modeBarButtonsToRemove: ["sendChartToCloud", "editInChartStudio"]
      });
      element.dataset.drawn = "1";
      element.on("plotly_click", follow);
    });
  }

  // Drill-down: a chart element whose customdata is a same-site path, or an object with one
  // as "href" (factory_portal.charts.linked), opens it: a day's bar opens run history for
  // that day. Arrays (hover text) are never followed.
  function follow(event) {
    var point = event && event.points && event.points[0];
    var href = point && point.customdata;
    if (href && typeof href === "object" && !Array.isArray(href)) { href = href.href; }
    if (typeof href !== "string" || href.charAt(0) !== "/") { return; }
    // Same site only: "//host", and "/\host" that browsers read as "//host", would leave it.
    var target = new URL(href, window.location.href);
    if (target.origin === window.location.origin) { window.location.assign(target.href); }
  }

  function start() {
    if (!document.querySelector(".chart[data-figure]")) { return; }
    if (window.Plotly) { drawAll(); return; }
    var script = document.createElement("script");
    script.src = document.body.dataset.plotlySrc;
    script.onload = drawAll;
    document.head.appendChild(script);
  }

  // A fragment that answers with a redirect (the session ended: the sign-in page) is not
  // swapped in: the refresh stops and says why.
  function refreshEvery(element) {
    var seconds = Number(element.dataset.refreshSeconds) || 5;
    var timer = setInterval(function () {
      fetch(element.dataset.refreshUrl, {credentials: "same-origin"})
        .then(function (r) {
          if (r.redirected) {
            clearInterval(timer);
            var note = document.createElement("p");
            note.className = "error";
            note.setAttribute("role", "alert");
            note.textContent = "Updates stopped: your session ended. Reload the page to sign in.";
            element.prepend(note);
            return null;
          }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (!html) { return; }
          // Keep the keyboard where it was: the link or control with focus is found again by
          // its address or name in the new rows.
          var active = document.activeElement;
          var key = active && element.contains(active) &&
            (active.getAttribute("href") || active.getAttribute("name"));
          element.innerHTML = html;
          if (key) {
            var again = Array.prototype.find.call(
              element.querySelectorAll("[href], [name]"),
              function (node) { return (node.getAttribute("href") || node.getAttribute("name")) === key; }
            );
            if (again) { again.focus(); }
          }
        });
    }, seconds * 1000);
  }

  document.addEventListener("submit", function (event) {
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });

  // Navigation menus: one open at a time; a click elsewhere or Escape closes them.
  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (menu !== except) { menu.removeAttribute("open"); }
    });
  }
  document.addEventListener("click", function (event) {
    closeMenus(event.target.closest ? event.target.closest("details.menu") : null);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      // The keyboard stays on the menu that was open (its summary), not at the top of the page.
      var open = event.target.closest ? event.target.closest("details.menu[open]") : null;
      closeMenus(null);
      if (open) { open.querySelector("summary").focus(); }
    }
  });
  // A menu opened near the right edge (a phone) shifts left to stay on the screen.
  document.addEventListener("toggle", function (event) {
    var menu = event.target;
    if (!menu.matches || !menu.matches("details.menu[open]")) { return; }
    var panel = menu.querySelector(".menu-panel");
    panel.style.left = "";
    var over = panel.getBoundingClientRect().right - document.documentElement.clientWidth + 8;
    if (over > 0) { panel.style.left = (panel.offsetLeft - over) + "px"; }
  }, true);

  function ready() {
    start();
    document.querySelectorAll("[data-refresh-url]").forEach(refreshEvery);
  }

  window.portalDrawCharts = start;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
