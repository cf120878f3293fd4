// Telegram opens the Mini App with its launch parameters in the URL fragment: the raw, signed
// initData (tgWebAppData) and the theme (tgWebAppThemeParams). No external script is needed.
(function () {
  const params = new URLSearchParams(location.hash.slice(1));
  const theme = params.get("tgWebAppThemeParams");
  if (theme) {
    try {
      for (const [key, value] of Object.entries(JSON.parse(theme))) {
        document.documentElement.style.setProperty("--tg-theme-" + key.replace(/_/g, "-"), value);
      }
    } catch (e) { /* a theme we cannot read leaves the defaults */ }
  }
  const signin = document.getElementById("signin");
  const initData = params.get("tgWebAppData");
  if (signin && initData) {
    signin.textContent = signin.dataset.signingIn;
    fetch("/app/auth", {
      method: "POST",
      headers: {"Content-Type": "application/x-www-form-urlencoded"},
      body: new URLSearchParams({init_data: initData}),
      credentials: "same-origin",
    }).then(async (response) => {
      if (response.ok) { location.reload(); return; }  // same URL: now with the session
      signin.textContent = await response.text();
    });
  }
  document.addEventListener("htmx:responseError", (event) => {
    const target = event.detail.elt.closest("li") || document.body;
    const note = document.createElement("p");
    note.className = "error";
    note.setAttribute("role", "alert");
    note.textContent = event.detail.xhr.responseText;
    target.append(note);
  });
})();
