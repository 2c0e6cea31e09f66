// The flat viewer for photos (pinhole views), shared by the public and the moderation pages: the
// image, zoomed with the wheel or the buttons and moved by dragging, under an SVG layer in the
// image's own pixels for the polygon. Corners are pixel positions (x, y) from the image's top-left
// corner; the server turns them into directions through the camera model.
const SVG = "http://www.w3.org/2000/svg";
const MAX_SCALE = 16;  // 16 screen pixels per image pixel

function button(label, title) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.title = title;
  element.setAttribute("aria-label", title);
  return element;
}

export function createPhotoViewer(container, { onCorner = null } = {}) {
  const stage = document.createElement("div");
  stage.className = "photo-stage";
  const image = document.createElement("img");
  image.alt = "The published photo";
  image.draggable = false;
  const overlay = document.createElementNS(SVG, "svg");
  overlay.setAttribute("class", "photo-overlay");
  stage.append(image, overlay);
  const zoomIn = button("+", "Zoom in");
  const zoomOut = button("−", "Zoom out");
  const fitButton = button("Fit", "Show the whole photo");
  const controls = document.createElement("div");
  controls.className = "photo-controls";
  controls.append(zoomIn, zoomOut, fitButton);
  container.append(stage, controls);

  const view = { scale: 1, x: 0, y: 0, width: 0, height: 0 };
  let shown = { points: [], withCorners: false };

  function place() {
    stage.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    draw();
  }

  function fitScale() {
    const box = container.getBoundingClientRect();
    return Math.min(box.width / view.width, box.height / view.height);
  }

  function fit() {
    const box = container.getBoundingClientRect();
    view.scale = fitScale();
    view.x = (box.width - view.width * view.scale) / 2;
    view.y = (box.height - view.height * view.scale) / 2;
    place();
  }

  // Zoom by ``factor`` keeping the image point under (cx, cy) (container pixels) in place.
  function zoom(factor, cx, cy) {
    const box = container.getBoundingClientRect();
    const [px, py] = [cx ?? box.width / 2, cy ?? box.height / 2];
    const scale = Math.min(Math.max(view.scale * factor, fitScale() / 2), MAX_SCALE);
    view.x = px - ((px - view.x) * scale) / view.scale;
    view.y = py - ((py - view.y) * scale) / view.scale;
    view.scale = scale;
    place();
  }

  // The image pixel under a point of the screen (null off the image).
  function toPixels(clientX, clientY) {
    const box = image.getBoundingClientRect();
    const x = ((clientX - box.left) * view.width) / box.width;
    const y = ((clientY - box.top) * view.height) / box.height;
    return x >= 0 && y >= 0 && x <= view.width && y <= view.height ? { x, y } : null;
  }

  function draw() {
    overlay.replaceChildren();
    const { points, withCorners } = shown;
    const line = points.map((p) => `${p.x},${p.y}`).join(" ");
    if (points.length >= 2) {
      const shape = document.createElementNS(SVG, points.length >= 3 ? "polygon" : "polyline");
      shape.setAttribute("points", line);
      shape.setAttribute("class", "photo-polygon");
      overlay.append(shape);
    }
    if (withCorners) {
      for (const p of points) {
        const dot = document.createElementNS(SVG, "circle");
        dot.setAttribute("cx", String(p.x));
        dot.setAttribute("cy", String(p.y));
        dot.setAttribute("r", String(5 / view.scale));  // 5 screen pixels at any zoom
        dot.setAttribute("class", "photo-corner");
        overlay.append(dot);
      }
    }
  }

  // A press that moves drags the photo; one that does not is a click (a corner).
  let pressed = null;
  container.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.target.closest(".photo-controls")) return;
    pressed = { x: event.clientX, y: event.clientY, viewX: view.x, viewY: view.y, moved: false };
    container.setPointerCapture(event.pointerId);
  });
  container.addEventListener("pointermove", (event) => {
    if (!pressed) return;
    const [dx, dy] = [event.clientX - pressed.x, event.clientY - pressed.y];
    if (Math.hypot(dx, dy) > 4) pressed.moved = true;
    if (!pressed.moved) return;
    view.x = pressed.viewX + dx;
    view.y = pressed.viewY + dy;
    place();
  });
  container.addEventListener("pointerup", (event) => {
    const click = pressed && !pressed.moved;
    pressed = null;
    const pixel = click && onCorner ? toPixels(event.clientX, event.clientY) : null;
    if (pixel) onCorner(pixel);
  });
  container.addEventListener("pointercancel", () => { pressed = null; });
  container.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = container.getBoundingClientRect();
    zoom(Math.exp(-event.deltaY * 0.002), event.clientX - box.left, event.clientY - box.top);
  }, { passive: false });
  zoomIn.addEventListener("click", () => zoom(1.5));
  zoomOut.addEventListener("click", () => zoom(1 / 1.5));
  fitButton.addEventListener("click", fit);

  return {
    // Show a photo of ``width`` × ``height`` pixels, whole.
    async open(url, width, height) {
      Object.assign(view, { width, height });
      shown = { points: [], withCorners: false };
      stage.style.width = `${width}px`;
      stage.style.height = `${height}px`;
      overlay.setAttribute("viewBox", `0 0 ${width} ${height}`);
      image.src = url;
      await image.decode();
      fit();
    },
    // Show a polygon given in image pixels; the corners as dots while drawing.
    showPolygon(points, { withCorners = false } = {}) {
      shown = { points, withCorners };
      draw();
    },
    fit,
    zoom,
    toPixels,
    state: () => ({ ...view }),
  };
}
