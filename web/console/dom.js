// Small DOM helpers. Every text from the hub goes in through textContent or attributes, never
// through innerHTML, so a customer's message can never become markup in the console.

/** Creates an element: h("button", {class: "x", onclick: f}, "text", child, …). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : value);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Folds case and accents away, keeping a map back to the original string's offsets. */
function fold(text) {
  let folded = "";
  const origin = [];
  for (let i = 0; i < text.length; i++) {
    const base = text[i].normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
    for (const ch of base) {
      folded += ch;
      origin.push(i);
    }
  }
  origin.push(text.length);
  return { folded, origin };
}

/**
 * The text with every occurrence of the query's words wrapped in <mark>, matched the way the
 * search index matches: ignoring case and accents ("cancion" marks "Canción").
 */
export function highlight(text, query) {
  const words = query
    .replace(/["*()]/g, " ")
    .split(/\s+/)
    .filter((w) => w && !/^(AND|OR|NOT)$/.test(w) && !w.includes(":"))
    .map((w) => fold(w).folded)
    .filter((w) => w.length > 1);
  if (!text || words.length === 0) return [text ?? ""];
  const { folded, origin } = fold(text);
  const ranges = [];
  for (const word of words) {
    let at = folded.indexOf(word);
    while (at !== -1) {
      ranges.push([origin[at], origin[at + word.length]]);
      at = folded.indexOf(word, at + word.length);
    }
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const out = [];
  let pos = 0;
  for (const [start, end] of ranges) {
    if (start < pos) continue;
    out.push(text.slice(pos, start), h("mark", {}, text.slice(start, end)));
    pos = end;
  }
  out.push(text.slice(pos));
  return out;
}
