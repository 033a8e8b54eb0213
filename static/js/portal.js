/* Factory Portal: draws every plotly chart on the page. Plotly (served from this site, never a
   CDN) is loaded once, and only on pages that have a chart. */
(function () {
  "use strict";

  function drawAll() {
    document.querySelectorAll(".chart[data-figure]").forEach(function (element) {
      if (element.dataset.drawn) { return; }
      var data = document.getElementById(element.dataset.figure);
      if (!data) { return; }
      var figure = JSON.parse(data.textContent);
      window.Plotly.newPlot(element, figure.data, figure.layout, {displaylogo: false, responsive: true});
      element.dataset.drawn = "1";
    });
  }

  function start() {
    if (!document.querySelector(".chart[data-figure]")) { return; }
    if (window.Plotly) { drawAll(); return; }
    var script = document.createElement("script");
    script.src = document.body.dataset.plotlySrc;
    script.onload = drawAll;
    document.head.appendChild(script);
  }

  window.portalDrawCharts = start;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
