// The API page: each operation of /openapi.json listed as plain text (no third-party bundle).
const spec = await (await fetch("/openapi.json")).json();

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function schemaName(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.type === "array") return `array of ${schemaName(schema.items)}`;
  return schema.type || "";
}

document.getElementById("title").textContent = `${spec.info.title} ${spec.info.version}: API`;
document.getElementById("description").textContent = spec.info.description || "";
const list = document.getElementById("operations");
for (const [path, operations] of Object.entries(spec.paths)) {
  for (const [method, operation] of Object.entries(operations)) {
    const section = element("section", undefined, "operation");
    section.dataset.path = path;
    section.dataset.method = method;
    const heading = element("h2");
    heading.append(element("span", method.toUpperCase(), "method"), " ", element("code", path));
    section.append(heading, element("p", operation.summary || ""));
    if (operation.description) section.append(element("p", operation.description, "description"));
    const rows = [];
    for (const parameter of operation.parameters || []) {
      rows.push([`${parameter.name} (${parameter.in}${parameter.required ? ", required" : ""})`,
                 schemaName(parameter.schema)]);
    }
    const body = operation.requestBody?.content?.["application/json"];
    if (body) rows.push(["body (JSON)", schemaName(body.schema)]);
    for (const [status, response] of Object.entries(operation.responses || {})) {
      rows.push([`answer ${status}`, response.description || ""]);
    }
    const table = element("table");
    for (const [name, value] of rows) {
      const row = element("tr");
      row.append(element("th", name), element("td", value));
      table.append(row);
    }
    section.append(table);
    list.append(section);
  }
}
document.body.dataset.operations = String(list.children.length);
