// The catalog's search box filters the event types as you type: each entry carries the
// lower-cased words it is found by (data-search). Without this script the form asks the
// server, which filters the same way. An entry named in the address (#et-name) is opened.
(function () {
  var box = document.getElementById("catalog-q");
  if (!box) return;
  var entries = document.querySelectorAll("details.event-type");
  var groups = document.querySelectorAll("details[data-group]");
  var shown = document.getElementById("catalog-shown");
  var none = document.getElementById("catalog-none");

  function filter() {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    var count = 0;
    entries.forEach(function (entry) {
      var text = entry.dataset.search || "";
      var match = words.every(function (w) { return text.indexOf(w) !== -1; });
      entry.hidden = !match;
      if (match) count += 1;
    });
    groups.forEach(function (group) {
      group.hidden = !group.querySelector("details.event-type:not([hidden])");
    });
    shown.textContent = String(count);
    none.hidden = count !== 0 || entries.length === 0;
  }

  function openNamed() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var entry = id && document.getElementById(id);
    if (entry && entry.tagName === "DETAILS") entry.open = true;
  }

  box.addEventListener("input", filter);
  document.getElementById("catalog-search").addEventListener("submit", function (event) {
    event.preventDefault(); // already filtered; keep what is open
    filter();
  });
  window.addEventListener("hashchange", openNamed);
  openNamed();
})();
