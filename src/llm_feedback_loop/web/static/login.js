// The sign-in form: POST /v1/auth/login, then on to ?next= (a path on this site only).
"use strict";

const params = new URLSearchParams(location.search);
document.getElementById("expired").hidden = !params.has("expired");

function nextPath() {
  const next = params.get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.includes("\\") ? next : "/";
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const response = await fetch("/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      name: document.getElementById("login-name").value,
      password: document.getElementById("login-password").value,
    }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    error.textContent = body.message || `Sign-in failed (${response.status})`;
    return;
  }
  const who = await response.json();
  const next = nextPath();
  location.assign(next === "/" && who.role === "viewer" ? "/dashboard" : next);
});
