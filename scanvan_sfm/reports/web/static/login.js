// Exchange the moderator token for a session cookie, then open the moderation page.
const form = document.getElementById("login");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/api/moderator/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: document.getElementById("token").value }),
  });
  if (response.ok) {
    window.location.assign("/moderate");
  } else {
    document.getElementById("message").textContent =
      response.status === 429 ? "Too many wrong tokens; try again later." : "Wrong token.";
  }
});
