// A portal framed by an embedding site (POSTBACK_EMBED_ORIGINS) tells that page how tall it
// is, in the message svix-react's <AppPortal fullSize> listens for:
//   {type: "svix.iframe-resizer-height", payload: {height: <CSS pixels>}}
// on load and whenever the page's height changes. Only the configured origins are told.
(function () {
  if (window.parent === window) return;
  var script = document.currentScript;
  var allowed = ((script && script.getAttribute("data-origins")) || "").split(" ").filter(Boolean);
  // Where the browser says who frames us (Chromium, Safari), tell only that origin;
  // elsewhere every configured origin (the others' copies are dropped by the browser).
  var ancestors = window.location.ancestorOrigins;
  var targets = ancestors && ancestors.length
    ? allowed.filter(function (origin) { return origin === ancestors[0]; })
    : allowed;
  var sent = -1;

  function height() {
    return Math.ceil(document.documentElement.getBoundingClientRect().height);
  }

  function tell() {
    var now = height();
    if (now === sent) return;
    sent = now;
    var message = { type: "svix.iframe-resizer-height", payload: { height: now } };
    targets.forEach(function (origin) { window.parent.postMessage(message, origin); });
  }

  window.addEventListener("load", tell);
  window.addEventListener("resize", tell);
  if (window.ResizeObserver) new ResizeObserver(tell).observe(document.documentElement);
  tell();
})();
