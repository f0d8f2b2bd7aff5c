// Log-in form: the server sets an HttpOnly session cookie, then the agent page (or the
// supervisor board) opens.
"use strict";
document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = document.getElementById("error");
  error.textContent = "";
  const response = await fetch("/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      name: document.getElementById("name").value,
      password: document.getElementById("password").value,
    }),
  });
  // Supervisors go to the board of live calls, agents to their page.
  if (response.ok) window.location.assign((await response.json()).role === "supervisor" ? "/board" : "/agent");
  else error.textContent = (await response.json()).error || "log-in failed";
});
