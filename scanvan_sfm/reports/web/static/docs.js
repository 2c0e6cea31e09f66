// The OpenAPI page, from the swagger-ui-dist npm package (no inline script, no CDN).
window.addEventListener("DOMContentLoaded", () => {
  window.SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });
});
