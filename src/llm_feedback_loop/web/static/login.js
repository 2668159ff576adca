// The sign-in form: POST /v1/auth/login, then on to ?next= (a path on this site only).
"use strict";

const params = new URLSearchParams(location.search);
document.getElementById("expired").hidden = !params.has("expired");

// A path on this site only: resolved as the browser will resolve it (which drops tabs and newlines, so
// "/\t/evil.example" would be //evil.example), and kept only if it stays on this origin.
function nextPath() {
  const next = params.get("next") || "/";
  if (!next.startsWith("/") || /[\u0000-\u0020\u007f\\]/.test(next)) return "/";
  try {
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
  } catch {
    return "/";
  }
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  const submit = document.getElementById("login-submit");
  error.textContent = "";
  submit.disabled = true;
  try {
    const response = await fetch("/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        name: document.getElementById("login-name").value.trim(),
        password: document.getElementById("login-password").value,
      }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      error.textContent = response.status === 401 ? "Wrong name or password." : body.message || `Sign-in failed (${response.status})`;
      document.getElementById("login-password").select();
      return;
    }
    const who = await response.json();
    const next = nextPath();
    location.assign(next === "/" && who.role === "viewer" ? "/dashboard" : next);
  } catch (failure) {
    error.textContent = `The service did not answer: ${failure.message}`;
  } finally {
    submit.disabled = false;
  }
});
