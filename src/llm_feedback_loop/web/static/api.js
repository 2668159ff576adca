// What every page shares: calls to the API (the CSRF header; 401 → the sign-in page; an error's
// message as an Error), who is signed in (`api.ready`, from GET /v1/auth/me) and the header bar built from
// that user's permissions. Included by every page before its own script.
"use strict";

const api = (() => {

  function cookie(name) {
    const found = document.cookie.split("; ").find((part) => part.startsWith(`${name}=`));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }

  function signIn() {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  }

  class ApiError extends Error {
    constructor(message, status) { super(message); this.status = status; }
  }

  async function errorOf(response) {
    const data = await response.json().catch(() => ({}));
    if (response.status === 401) return new ApiError("Your session has ended: sign in again.", 401);
    return new ApiError(data.message || `${response.status} ${response.statusText}`, response.status);
  }

  // fetch() with the CSRF header (needed on writes, and on the reads that make something: the queue's next
  // task); a 401 (the session ended) goes to the sign-in page.
  async function send(url, { method = "GET", json, body, headers = {} } = {}) {
    const options = { method, headers: { ...headers }, credentials: "same-origin" };
    if (json !== undefined) { options.headers["Content-Type"] = "application/json"; options.body = JSON.stringify(json); }
    else if (body !== undefined) options.body = body;
    options.headers["X-CSRF-Token"] = cookie("llmfl_csrf");
    const response = await fetch(url, options);
    if (response.status === 401) signIn();
    return response;
  }

  // The JSON answer (null for 204); an answer that is not ok becomes an ApiError with the server's message.
  async function call(url, options) {
    const response = await send(url, options);
    if (!response.ok) throw await errorOf(response);
    return response.status === 204 ? null : response.json();
  }

  const PAGES = [
    { href: "/", label: "Annotate", needs: "annotate" },
    { href: "/queue", label: "Queue", needs: "annotate" },
    { href: "/arena", label: "Arena", needs: "annotate" },
    { href: "/dashboard", label: "Dashboard", needs: "read" },
    { href: "/docs", label: "API", needs: "manage" },
  ];

  function link(page) {
    const anchor = document.createElement("a");
    anchor.href = page.href;
    anchor.textContent = page.label;
    if (page.href === location.pathname) anchor.setAttribute("aria-current", "page");
    return anchor;
  }

  async function signOut() {
    try { await call("/v1/auth/logout", { method: "POST" }); } catch (error) { if (error.status !== 401) throw error; }
    location.assign("/login");
  }

  // The header bar: the pages this role may use, who is signed in, and the sign-out button.
  function header(me) {
    const bar = document.querySelector("header.bar");
    if (!bar) return;
    const nav = bar.querySelector("nav") || bar.appendChild(document.createElement("nav"));
    nav.replaceChildren(...PAGES.filter((page) => me.permissions.includes(page.needs)).map(link));
    const who = bar.querySelector(".who") || bar.appendChild(document.createElement("div"));
    who.className = "who";
    who.replaceChildren();
    if (me.via === "open") {  // authentication is off: anyone may do anything, and names themselves
      const label = document.createElement("label");
      label.append("You are ");
      const input = Object.assign(document.createElement("input"), { id: "annotator", placeholder: "your name", autocomplete: "name" });
      input.value = localStorage.getItem("llmfl.annotator") || "";
      input.addEventListener("change", () => localStorage.setItem("llmfl.annotator", input.value.trim()));
      label.append(input);
      who.append(label);
      return;
    }
    const name = Object.assign(document.createElement("span"), { id: "who-name", textContent: me.name });
    const role = Object.assign(document.createElement("span"), { id: "who-role", className: `badge role ${me.role}`, textContent: me.role });
    const out = Object.assign(document.createElement("button"), { id: "sign-out", type: "button", textContent: "Sign out" });
    out.addEventListener("click", () => signOut().catch((error) => { out.title = error.message; }));
    who.append(name, role, out);
  }

  // Shows the elements marked data-needs="permission" that this user holds the permission for (they start
  // hidden, so a page shows nothing it should not while /v1/auth/me is on its way).
  function reveal(me, root = document) {
    for (const element of root.querySelectorAll("[data-needs]")) element.hidden = !me.permissions.includes(element.dataset.needs);
  }

  const ready = call("/v1/auth/me").then((me) => {
    header(me);
    reveal(me);
    return me;
  });
  ready.catch(() => {});  // a page without a script of its own (the 403 page): a 401 has sent it to sign in

  // The annotator name to send: none when signed in (the server records the user), the typed name when open.
  async function annotator() {
    const me = await ready;
    if (me.via !== "open") return undefined;
    const input = document.getElementById("annotator");
    const name = input ? input.value.trim() : "";
    if (!name) { if (input) input.focus(); throw new Error("Enter your name first (top right): every submission carries it."); }
    localStorage.setItem("llmfl.annotator", name);
    return name;
  }

  return {
    send,
    call,
    get: (url) => call(url),
    post: (url, json) => call(url, { method: "POST", json }),
    patch: (url, json) => call(url, { method: "PATCH", json }),
    remove: (url) => call(url, { method: "DELETE" }),
    errorOf,
    ready,
    reveal,
    annotator,
    may: async (permission) => (await ready).permissions.includes(permission),
  };
})();

window.api = api;
