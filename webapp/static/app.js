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
  // MAX shows its loading screen until the app says it is ready.
  if (window.WebApp && typeof window.WebApp.ready === "function") window.WebApp.ready();
  const signin = document.getElementById("signin");
  // Telegram puts initData in the fragment; MAX's bridge script (loaded on /app?platform=max)
  // gives it as window.WebApp.initData.
  const fromMax = !params.get("tgWebAppData") && window.WebApp && window.WebApp.initData;
  const initData = params.get("tgWebAppData") || (fromMax ? window.WebApp.initData : null);
  if (signin && initData) {
    signin.textContent = signin.dataset.signingIn;
    fetch(fromMax ? "/app/auth/max" : "/app/auth", {
      method: "POST",
      headers: {"Content-Type": "application/x-www-form-urlencoded"},
      body: new URLSearchParams({init_data: initData}),
      credentials: "same-origin",
    }).then(async (response) => {
      // A startapp / startattach link ("event-<id>") opens that event; else the same URL again.
      const start = params.get("tgWebAppStartParam") || new URLSearchParams(initData).get("start_param");
      const event = /^event-([0-9a-f-]{36})$/.exec(start || "");
      if (response.ok && event) { location.href = "/app/events/" + event[1]; return; }
      if (response.ok) { location.reload(); return; }  // same URL: now with the session
      signin.textContent = await response.text();
    });
  }
  // A refusal (403, 404, an ended session) is shown next to what was clicked, as text.
  document.addEventListener("htmx:responseError", (event) => {
    const target = event.detail.elt.closest("li, form, fieldset") || document.body;
    const note = document.createElement("p");
    note.className = "error";
    note.setAttribute("role", "alert");
    const html = new DOMParser().parseFromString(event.detail.xhr.responseText, "text/html");
    note.textContent = html.body.textContent.trim() || event.detail.xhr.statusText;
    target.append(note);
  });

  // Parts of a form that only matter for some choices: the repeat options, the event's times,
  // the confirmation deadline. Without JavaScript everything simply stays visible.
  function refresh(root) {
    root.querySelectorAll("select[data-shows]").forEach((select) => {
      select.form.querySelectorAll("[data-show-for]").forEach((part) => {
        part.hidden = !part.dataset.showFor.split(" ").includes(select.value);
      });
    });
    root.querySelectorAll("input[data-toggles]").forEach((box) => {
      const part = document.getElementById(box.dataset.toggles);
      if (part) part.hidden = box.hasAttribute("data-hide-when-checked") ? box.checked : !box.checked;
    });
  }
  document.addEventListener("change", (event) => {
    const box = event.target;
    if (box.dataset && box.dataset.selectAll) {
      box.form.querySelectorAll(`input[name="${box.dataset.selectAll}"]`).forEach((other) => {
        other.checked = box.checked;
      });
    }
    // A person ticked in the search results stays picked when the search changes.
    const found = box.closest && box.closest(".found");
    if (found && box.checked) {
      document.querySelector(found.dataset.keep).append(box.closest("label"));
    }
    refresh(document);
  });
  document.addEventListener("click", (event) => {
    const dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) { dismiss.closest(".confirm").remove(); return; }
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const field = document.getElementById(button.dataset.copy);
    field.select();
    (navigator.clipboard ? navigator.clipboard.writeText(field.value) : Promise.reject())
      .catch(() => document.execCommand("copy"))
      .finally(() => { button.textContent = button.dataset.copied; });
  });
  document.addEventListener("htmx:load", (event) => refresh(event.detail.elt.ownerDocument || document));
  document.addEventListener("DOMContentLoaded", () => refresh(document));
})();
