// The moderation page: pending reports, each polygon over its panorama or photo, accept or reject.
// Changes carry the session's CSRF token; the server refuses them without it.
import { createPhotoViewer } from "./photo.js";
import { createViewer, getJSON, polygonCentre, showPolygon } from "./sphere.js";

const session = await fetch("/api/moderator/session", { credentials: "same-origin" });
if (!session.ok) window.location.replace("/moderate/login");
const { csrf } = await session.json();

function change(method, url, body) {
  return fetch(url, {
    method, credentials: "same-origin", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
  });
}

const list = document.getElementById("reports");
const filter = document.getElementById("status-filter");
const decision = document.getElementById("decision");
const details = document.getElementById("report-details");
const message = document.getElementById("message");
const container = document.getElementById("viewer");
const photoContainer = document.getElementById("photo");
const { viewer, markers } = createViewer(container);
const photo = createPhotoViewer(photoContainer);
const viewpoints = new Map((await getJSON("/api/viewpoints")).map((v) => [v.id, v]));
let selected = null;
window.scanvan = { viewer, photo };

async function show(report) {
  selected = report;
  details.textContent = `#${report.id} · viewpoint ${report.viewpoint_id} · ${report.category} · ${report.status}` +
    (report.comment ? ` · “${report.comment}”` : "");
  decision.hidden = false;
  const viewpoint = viewpoints.get(report.viewpoint_id);
  const onPhoto = viewpoint?.kind === "photo";
  container.hidden = onPhoto;
  photoContainer.hidden = !onPhoto;
  if (onPhoto) {
    await photo.open(`/images/${report.viewpoint_id}`, viewpoint.width, viewpoint.height);
    photo.showPolygon((report.outline ?? []).map(([x, y]) => ({ x, y })));
  } else {
    await viewer.setPanorama(`/images/${report.viewpoint_id}`, { transition: false, position: polygonCentre(report.polygon) });
    showPolygon(markers, report.polygon);
  }
  document.body.dataset.report = String(report.id);
}

// Every report of a status, page after page (the server sends the next page's URL).
async function allReports(status) {
  const reports = [];
  let url = status ? `/api/reports?status=${encodeURIComponent(status)}` : "/api/reports";
  while (url) {
    const page = await getJSON(url);
    reports.push(...page.reports);
    url = page.next;
  }
  return reports;
}

async function load() {
  const reports = await allReports(filter.value);
  list.replaceChildren();
  for (const report of reports) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.id = String(report.id);
    button.textContent = `#${report.id} · view ${report.viewpoint_id} · ${report.category} · ${report.created_at.slice(0, 16)}`;
    button.addEventListener("click", () => show(report));
    item.append(button);
    list.append(item);
  }
  if (!reports.length) list.textContent = "No reports.";
}

async function decide(verdict) {
  const response = await change("POST", `/api/reports/${selected.id}/${verdict}`,
    { note: document.getElementById("note").value });
  const answer = await response.json();
  message.textContent = response.ok ? `Report #${answer.id} ${answer.status}.` : `Failed: ${answer.detail}`;
  decision.hidden = true;
  await load();
}

document.getElementById("accept").addEventListener("click", () => decide("accept"));
document.getElementById("reject").addEventListener("click", () => decide("reject"));
document.getElementById("sign-out").addEventListener("click", async () => {
  await change("DELETE", "/api/moderator/session", {});
  window.location.assign("/moderate/login");
});
filter.addEventListener("change", load);
await load();
