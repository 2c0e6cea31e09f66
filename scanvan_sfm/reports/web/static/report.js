// The public page: pick a viewpoint, draw a polygon on the sphere (a panorama) or on the image (a
// photo), send the report. A panorama's corners are sent as angles, a photo's as pixels.
import { createPhotoViewer } from "./photo.js";
import { createViewer, getJSON, showPolygon, toReportAngles } from "./sphere.js";

const list = document.getElementById("viewpoints");
const map = document.getElementById("map");
const form = document.getElementById("report-form");
const submit = document.getElementById("submit");
const count = document.getElementById("vertex-count");
const confirmation = document.getElementById("confirmation");
const container = document.getElementById("viewer");
const photoContainer = document.getElementById("photo");
const { viewer, markers } = createViewer(container);
const photo = createPhotoViewer(photoContainer, { onCorner: addCorner });
let current = null;
let vertices = [];
window.scanvan = { viewer, photo, vertices: () => vertices };  // read by the browser test

const isPhoto = () => current?.kind === "photo";

function redraw() {
  if (isPhoto()) photo.showPolygon(vertices, { withCorners: true });
  else showPolygon(markers, vertices, { withCorners: true });
  count.textContent = `${vertices.length} corner${vertices.length === 1 ? "" : "s"}`;
  submit.disabled = vertices.length < 3 || vertices.length > 100;
}

async function open(viewpoint) {
  current = viewpoint;
  vertices = [];
  confirmation.textContent = "";
  for (const item of list.querySelectorAll("button")) item.setAttribute("aria-pressed", item.dataset.id === String(viewpoint.id));
  container.hidden = isPhoto();
  photoContainer.hidden = !isPhoto();
  if (isPhoto()) await photo.open(`/images/${viewpoint.id}`, viewpoint.width, viewpoint.height);
  else await viewer.setPanorama(`/images/${viewpoint.id}`, { showLoader: true, transition: false });
  form.hidden = false;
  document.body.dataset.viewpoint = String(viewpoint.id);
  redraw();
}

function addCorner(corner) {
  if (!current || vertices.length >= 100) return;
  if (!vertices.length) confirmation.textContent = "";  // a new report begins
  vertices.push(corner);
  redraw();
}

// A panorama's corners come from the page's own clicks: the viewer's click event drops a second
// click that follows within 300 ms (its double-click window), and quick visitors would lose
// corners. A press that moved is a drag of the view, not a corner.
let pressed = null;
container.addEventListener("pointerdown", (event) => { pressed = { x: event.clientX, y: event.clientY }; });
container.addEventListener("click", (event) => {
  const dragged = !pressed || Math.hypot(event.clientX - pressed.x, event.clientY - pressed.y) > 4;
  if (dragged || event.target.closest(".psv-navbar")) return;
  const box = container.getBoundingClientRect();
  addCorner(toReportAngles(viewer.dataHelper.viewerCoordsToSphericalCoords(
    { x: event.clientX - box.left, y: event.clientY - box.top })));
});

document.getElementById("undo").addEventListener("click", () => { vertices.pop(); redraw(); });
document.getElementById("clear").addEventListener("click", () => { vertices = []; redraw(); });

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  submit.disabled = true;
  const body = {
    viewpoint_id: current.id,
    category: new FormData(form).get("category"),
    [isPhoto() ? "pixels" : "polygon"]: vertices,
    comment: document.getElementById("comment").value,
  };
  const response = await fetch("/api/reports", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (response.ok) {
    confirmation.textContent = `Thank you. Your report number is ${answer.id}; it will be reviewed.`;
    vertices = [];
    document.getElementById("comment").value = "";
  } else {
    confirmation.textContent = `The report was not accepted: ${typeof answer.detail === "string" ? answer.detail : "invalid input"}.`;
  }
  redraw();
});

function drawMap(viewpoints) {
  // Top view of the camera centres on their two widest axes.
  const centres = viewpoints.filter((v) => v.center);
  if (centres.length < 2) { map.remove(); return; }
  const spread = [0, 1, 2].map((axis) => {
    const values = centres.map((v) => v.center[axis]);
    return { axis, min: Math.min(...values), range: Math.max(...values) - Math.min(...values) };
  }).sort((a, b) => b.range - a.range);
  const [u, v] = spread;
  const scale = 180 / Math.max(u.range, v.range, 1e-9);
  const margin = (range) => 10 + (180 - range * scale) / 2;  // centre the narrower axis
  for (const viewpoint of centres) {
    const dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    dot.setAttribute("cx", String(margin(u.range) + (viewpoint.center[u.axis] - u.min) * scale));
    dot.setAttribute("cy", String(margin(v.range) + (viewpoint.center[v.axis] - v.min) * scale));
    dot.setAttribute("r", "5");
    dot.setAttribute("class", "camera");
    const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
    title.textContent = `Viewpoint ${viewpoint.id}`;
    dot.append(title);
    dot.addEventListener("click", () => open(viewpoint));
    map.append(dot);
  }
}

const viewpoints = await getJSON("/api/viewpoints");
for (const viewpoint of viewpoints) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.id = String(viewpoint.id);
  button.textContent = `${viewpoint.id}: ${viewpoint.image}${viewpoint.kind === "photo" ? " (photo)" : ""}`;
  button.addEventListener("click", () => open(viewpoint));
  item.append(button);
  list.append(item);
}
drawMap(viewpoints);
