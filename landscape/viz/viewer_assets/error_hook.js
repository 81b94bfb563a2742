window.addEventListener("error", function (e) {
  var msg = String(e.message || e);
  document.documentElement.setAttribute("data-error", msg);
  var el = document.getElementById("error");
  if (el) { el.hidden = false; el.textContent = "The viewer failed: " + msg; }
});
