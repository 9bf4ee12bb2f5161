// The portal link carries its token in the URL fragment, which browsers never send to a
// server. Move it into the login form, wipe it from the address bar and history, and post.
(function () {
  var form = document.getElementById("enter");
  if (!form) return;
  var params = new URLSearchParams(window.location.hash.slice(1));
  var token = params.get("token");
  if (token) {
    history.replaceState(null, "", window.location.pathname);
    form.elements.token.value = token;
    form.elements.next.value = params.get("next") || "";
    form.submit();
  } else if (form.dataset.auto === "1") {
    // No token in the link: an open session may still be there.
    window.location.replace("/portal/endpoints");
  }
})();
