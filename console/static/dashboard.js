// The dashboard's charts, drawn by the vendored Chart.js from the page's JSON block
// (#dashboard-data). The same numbers are in the tables under the charts.
(function () {
  "use strict";
  var source = document.getElementById("dashboard-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var Chart = window.Chart;
  var styles = window.getComputedStyle(document.body);
  Chart.defaults.font.family = styles.fontFamily;
  Chart.defaults.color = "#5d6675";
  Chart.defaults.animation = false; // drawn once, at once

  function bars(id, datasets) {
    var canvas = document.getElementById(id);
    if (!canvas) {
      return;
    }
    return new Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: {
            display: datasets.length > 1,
            position: "bottom",
            labels: { boxWidth: 12, boxHeight: 12 },
          },
        },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 8 } },
          y: { beginAtZero: true, ticks: { precision: 0 }, grid: { color: "#eef0f3" } },
        },
      },
    });
  }

  function series(label, values, color) {
    return {
      label: label,
      data: values,
      backgroundColor: color,
      borderRadius: 3,
      maxBarThickness: 28,
    };
  }

  bars("points-chart", [
    series("Earned", data.earned, "#3b5bdb"),
    series("Redeemed", data.redeemed, "#0ca678"),
    series("Expired", data.expired, "#f08c00"),
  ]);
  bars("conversions-chart", [series("Referral conversions", data.conversions, "#7048e8")]);
})();
