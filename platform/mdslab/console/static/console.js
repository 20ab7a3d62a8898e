// The lab console's own script (no library, no CDN). Everything works without it; it only
// (1) answers the SQL and ask boxes in place instead of on a page of their own, and
// (2) lights a lineage node's upstream and downstream on hover or keyboard focus.
"use strict";

function answerInPlace(form) {
  const target = document.getElementById(form.dataset.target);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const url = form.action + "?" + new URLSearchParams(new FormData(form)).toString();
    target.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(url, { headers: { "X-Console-Fragment": "1" } });
      target.innerHTML = await response.text();
    } catch (error) {
      target.innerHTML = "";
      const line = document.createElement("p");
      line.className = "error";
      line.textContent = "the console did not answer: " + error.message;
      target.appendChild(line);
    } finally {
      target.removeAttribute("aria-busy");
    }
  });
  form.querySelectorAll("textarea").forEach((area) => {
    area.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
  });
}

function reach(start, step) {
  const seen = new Set([start]);
  const todo = [start];
  while (todo.length) {
    for (const next of step.get(todo.pop()) || []) {
      if (!seen.has(next)) {
        seen.add(next);
        todo.push(next);
      }
    }
  }
  return seen;
}

function traceable(svg) {
  const edges = Array.from(svg.querySelectorAll("path.edge"));
  const nodes = Array.from(svg.querySelectorAll("g.node"));
  const up = new Map();
  const down = new Map();
  for (const edge of edges) {
    const from = edge.dataset.from;
    const to = edge.dataset.to;
    up.set(to, (up.get(to) || []).concat(from));
    down.set(from, (down.get(from) || []).concat(to));
  }
  const light = (name) => {
    const upstream = reach(name, up);
    const downstream = reach(name, down);
    svg.classList.add("tracing");
    for (const node of nodes) {
      const seen = upstream.has(node.dataset.name) || downstream.has(node.dataset.name);
      node.classList.toggle("lit", seen);
    }
    for (const edge of edges) {
      const from = edge.dataset.from;
      const to = edge.dataset.to;
      const lit = (upstream.has(from) && upstream.has(to)) || (downstream.has(from) && downstream.has(to));
      edge.classList.toggle("lit", lit);
    }
  };
  const dark = () => svg.classList.remove("tracing");
  for (const node of nodes) {
    node.addEventListener("mouseenter", () => light(node.dataset.name));
    node.addEventListener("focus", () => light(node.dataset.name));
    node.addEventListener("mouseleave", dark);
    node.addEventListener("blur", dark);
  }
}

document.querySelectorAll("form[data-target]").forEach(answerInPlace);
document.querySelectorAll("svg.lineage").forEach(traceable);
