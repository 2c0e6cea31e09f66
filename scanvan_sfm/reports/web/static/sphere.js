// The 360° viewer shared by the public and the moderation pages, and the angle convention.
//
// Reports use the original ScanVan feed's angles: pitch 0 at the top of the panorama to π at the
// bottom, yaw 0 at the left edge to 2π. Photo Sphere Viewer puts yaw 0 at the panorama's centre
// and pitch 0 on the horizon, positive upwards.
import { Viewer } from "@photo-sphere-viewer/core";
import { MarkersPlugin } from "@photo-sphere-viewer/markers-plugin";

const TWO_PI = 2 * Math.PI;

export function toReportAngles({ yaw, pitch }) {
  return { pitch: Math.PI / 2 - pitch, yaw: (((yaw + Math.PI) % TWO_PI) + TWO_PI) % TWO_PI };
}

export function toViewerAngles({ pitch, yaw }) {
  return { pitch: Math.PI / 2 - pitch, yaw: yaw - Math.PI };
}

const POLYGON_STYLE = { fill: "rgba(255, 40, 40, 0.30)", stroke: "rgb(255, 40, 40)", strokeWidth: "2px" };
const VERTEX_STYLE = { fill: "rgb(255, 40, 40)", stroke: "white", strokeWidth: "1px" };

export function createViewer(container) {
  const viewer = new Viewer({
    container,
    navbar: ["zoom", "move", "fullscreen"],
    defaultZoomLvl: 50,
    minFov: 30,
    maxFov: 90,
    mousewheelCtrlKey: false,
    plugins: [[MarkersPlugin, {}]],
  });
  const markers = viewer.getPlugin(MarkersPlugin);
  return { viewer, markers };
}

// Show a polygon given in report angles; the corners as dots while drawing.
export function showPolygon(markers, vertices, { withCorners = false } = {}) {
  markers.clearMarkers();
  const points = vertices.map(toViewerAngles);
  if (points.length >= 3) {
    markers.addMarker({ id: "polygon", polygon: points.map((p) => [p.yaw, p.pitch]), svgStyle: POLYGON_STYLE });
  } else if (points.length === 2) {
    markers.addMarker({ id: "polygon", polyline: points.map((p) => [p.yaw, p.pitch]), svgStyle: POLYGON_STYLE });
  }
  if (withCorners) {
    points.forEach((p, i) => markers.addMarker({ id: `corner-${i}`, circle: 5, position: p, svgStyle: VERTEX_STYLE }));
  }
}

// The direction to look at to see a polygon: the mean of its corners' unit vectors.
export function polygonCentre(vertices) {
  let x = 0, y = 0, z = 0;
  for (const v of vertices.map(toViewerAngles)) {
    x += Math.cos(v.pitch) * Math.sin(v.yaw);
    y += Math.sin(v.pitch);
    z += Math.cos(v.pitch) * Math.cos(v.yaw);
  }
  return { yaw: Math.atan2(x, z), pitch: Math.atan2(y, Math.hypot(x, z)) };
}

export async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}
