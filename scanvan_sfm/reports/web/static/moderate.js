// The moderation page: pending reports, each polygon over its panorama, accept or reject.
import { createViewer, getJSON, polygonCentre, showPolygon } from "./sphere.js";

const list = document.getElementById("reports");
const filter = document.getElementById("status-filter");
const decision = document.getElementById("decision");
const details = document.getElementById("report-details");
const message = document.getElementById("message");
const { viewer, markers } = createViewer(document.getElementById("viewer"));
let selected = null;
window.scanvan = { viewer };

async function show(report) {
  selected = report;
  details.textContent = `#${report.id} · viewpoint ${report.viewpoint_id} · ${report.category} · ${report.status}` +
    (report.comment ? ` · “${report.comment}”` : "");
  decision.hidden = false;
  await viewer.setPanorama(`/images/${report.viewpoint_id}`, { transition: false, position: polygonCentre(report.polygon) });
  showPolygon(markers, report.polygon);
  document.body.dataset.report = String(report.id);
}

async function load() {
  const status = filter.value;
  const reports = await getJSON(status ? `/api/reports?status=${encodeURIComponent(status)}` : "/api/reports");
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
  const response = await fetch(`/api/reports/${selected.id}/${verdict}`, {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ note: document.getElementById("note").value }),
  });
  const answer = await response.json();
  message.textContent = response.ok ? `Report #${answer.id} ${answer.status}.` : `Failed: ${answer.detail}`;
  decision.hidden = true;
  await load();
}

document.getElementById("accept").addEventListener("click", () => decide("accept"));
document.getElementById("reject").addEventListener("click", () => decide("reject"));
filter.addEventListener("change", load);
await load();
